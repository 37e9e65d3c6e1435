package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/edgeproxy/edgeproxy/admin"
	"github.com/edgeproxy/edgeproxy/config"
	"github.com/edgeproxy/edgeproxy/proxy"
	"github.com/edgeproxy/edgeproxy/ratelimit"
)

// app is one running edgeproxy: the proxy, its coupon service, the admin
// listener, and what the last reload did.
type app struct {
	path    string
	log     *zap.Logger
	access  *proxy.AccessLog
	proxy   *proxy.Server
	coupons *couponService // nil without [coupon]
	limits  *ratelimit.Limiters
	// respCache is the routes' response store; nil when its share is 0.
	respCache *responseCache

	metrics *proxy.Metrics
	reloads *prometheus.CounterVec
	started time.Time

	cfg        atomic.Pointer[config.Config]
	lastReload atomic.Pointer[admin.Reload]
}

func newLogger(level string, w io.Writer) *zap.Logger {
	var lvl zapcore.Level
	_ = lvl.Set(level)
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey: "time", LevelKey: "level", MessageKey: "msg", StacktraceKey: "stack",
		EncodeTime: zapcore.ISO8601TimeEncoder, EncodeLevel: zapcore.LowercaseLevelEncoder,
		EncodeDuration: zapcore.StringDurationEncoder, LineEnding: zapcore.DefaultLineEnding,
	})
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl))
}

func openAccessLog(c *config.Config) (*proxy.AccessLog, error) {
	if c.Log.AccessLog == "off" {
		return nil, nil
	}
	return proxy.NewAccessLog(proxy.AccessLogOptions{
		Path:          c.Log.AccessLog,
		BufferSize:    int(c.Log.AccessLogBuffer),
		FlushInterval: c.Log.AccessLogFlush.Duration,
	})
}

// serve runs until SIGTERM or SIGINT, or until a new binary has taken
// over after SIGUSR2, and returns the exit code.
func serve(cfg *config.Config, stderr io.Writer) int {
	log := newLogger(cfg.Log.Level, stderr).With(zap.Int("pid", os.Getpid()))
	defer log.Sync()
	fail := func(msg string, err error) int {
		log.Error(msg, zap.Error(err))
		return 1
	}

	// Signals are taken over first: a SIGHUP during start-up must not
	// kill the process with the default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	ho, err := newHandover(cfg.Server.PIDFile, log)
	if err != nil {
		return fail("starting", err)
	}
	handedOver := false
	defer func() {
		if !handedOver {
			ho.stop()
		}
	}()
	sd := notifier{log: log}

	access, err := openAccessLog(cfg)
	if err != nil {
		return fail("opening access log", err)
	}
	reg := prometheus.NewRegistry()
	a := &app{path: cfg.Path, log: log, access: access, metrics: proxy.NewMetrics(reg), reloads: newReloadCounter(), started: time.Now()}
	a.cfg.Store(cfg)

	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	if cfg.Coupon != nil {
		a.coupons, err = newCouponService(baseCtx, cfg, log)
		if err != nil {
			return fail("starting coupon service", err)
		}
		defer a.coupons.Close()
	}

	// Shared and exact rate limits use [redis]; it is dialled only when
	// a route asks for one of them.
	a.limits = ratelimit.New(rateLimitOptions(cfg, log))
	defer a.limits.Close()
	if a.respCache, err = newResponseCache(cfg); err != nil {
		return fail("response cache", err)
	}
	defer a.respCache.Close()
	opts := a.options(cfg)
	a.proxy, err = proxy.New(opts)
	if err != nil {
		return fail("building proxy", err)
	}
	a.respCache.subscribe(cfg, a.proxy, log)
	if a.coupons != nil {
		a.coupons.setFallback(a.proxy)
	}

	ln, err := ho.listen("public", cfg.Server.Listen)
	if err != nil {
		return fail("listening", err)
	}
	adminLn, err := ho.listen("admin", cfg.Admin.Listen)
	if err != nil {
		ln.Close()
		return fail("admin listener", err)
	}
	a.registerMetrics(reg)
	adm := admin.New(admin.Options{
		Readiness: admin.ReadinessFunc(a.ready),
		Metrics:   promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Status:    admin.NewStatusPage(a.status, reg),
	})

	if ho.upgraded() && a.coupons != nil {
		// The old process keeps serving until this one is ready, so a new
		// one answers coupons from Redis, never from the fallback. It gives
		// up before the old one would kill it, to say why.
		ctx, cancel := context.WithTimeout(baseCtx, upgradeTimeout-2*time.Second)
		defer cancel()
		if err := pollUntil(ctx, 20*time.Millisecond, a.coupons.ready); err != nil {
			return fail("binary upgrade: coupon store not ready; the old process keeps serving", fmt.Errorf("%s: %w", a.coupons.storeState(), err))
		}
		// The old process's hot keys are read now, in batches, rather than
		// missed one by one by the first requests after the switch. A key
		// that cannot be read in time is left to its first request.
		if keys := ho.hotKeys(); len(keys) > 0 {
			start := time.Now()
			n, err := a.coupons.warm(ctx, keys)
			log.Info("coupon cache warmed from Redis", zap.Int("keys", len(keys)), zap.Int("warmed", n),
				zap.Duration("took", time.Since(start)), zap.Error(err))
		}
		cancel()
	}

	serveErr := make(chan error, 2)
	go func() { serveErr <- a.proxy.Serve(ln) }()
	go func() { serveErr <- adm.Serve(adminLn) }()
	// systemd hears of the new main PID before the old process can exit:
	// a main process gone with no successor would fail the service.
	sd.ready()
	if err := ho.ready(); err != nil {
		if ho.upgraded() {
			sd.send(fmt.Sprintf("MAINPID=%d", os.Getppid())) // the old process keeps serving
		}
		return fail("starting", err)
	}
	log.Info("edgeproxy started", zap.String("version", version), zap.String("listen", ln.Addr().String()),
		zap.String("admin", adminLn.Addr().String()), zap.String("config", cfg.Path), zap.Bool("upgraded", ho.upgraded()))

	for {
		select {
		case err := <-serveErr:
			if err != nil {
				return fail("listener stopped", err)
			}
		case <-ho.replaced():
			handedOver = true
			return a.shutdown(adm, "binary upgrade")
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				sd.reloading()
				a.reload()
				sd.ready()
			case syscall.SIGUSR1:
				if err := a.access.Reopen(); err != nil {
					log.Error("reopening access log", zap.Error(err))
				} else {
					log.Info("access log reopened")
				}
			case syscall.SIGUSR2:
				if a.coupons != nil {
					if err := ho.passHotKeys(a.coupons.hotKeys()); err != nil {
						log.Warn("binary upgrade: the new process will start with a cold coupon cache", zap.Error(err))
					}
				}
				go ho.upgrade()
			default:
				sd.stopping()
				return a.shutdown(adm, sig.String())
			}
		}
	}
}

// options builds the proxy's options, the coupon route included.
func (a *app) options(cfg *config.Config) proxy.Options {
	o := proxyOptions(cfg)
	o.Logger = a.log
	o.AccessLog = a.access
	o.Metrics = a.metrics
	if a.limits != nil {
		o.RateLimiters = a.limits
	}
	if a.respCache != nil {
		o.ResponseCache = a.respCache.store
	}
	if a.coupons != nil {
		o.Routes = append(o.Routes, proxy.RouteOptions{
			Name:       "coupon",
			Host:       cfg.Coupon.Host,
			PathPrefix: cfg.Coupon.PathPrefix,
			Handler:    a.coupons.handle,
			Compress:   true, // [compression] applies to coupon answers too
		})
	}
	return o
}

// reload re-reads the config file; a bad one is refused and logged with
// every error, and the running config keeps serving.
func (a *app) reload() {
	start := time.Now()
	cfg, err := config.Load(a.path)
	if err == nil && cfg.Coupon != nil && a.coupons != nil {
		err = a.coupons.reload(cfg)
	} else if err == nil && (cfg.Coupon == nil) != (a.coupons == nil) {
		err = errors.New("adding or removing [coupon] needs a restart")
	}
	if err == nil {
		err = a.proxy.Reload(a.options(cfg))
	}
	if err != nil {
		a.lastReload.Store(&admin.Reload{At: start, Err: err.Error()})
		a.reloads.WithLabelValues("error").Inc()
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				a.log.Error("reload refused", zap.String("error", e.Error()))
			}
		} else {
			a.log.Error("reload refused", zap.Error(err))
		}
		return
	}
	a.cfg.Store(cfg)
	a.lastReload.Store(&admin.Reload{At: start})
	a.reloads.WithLabelValues("ok").Inc()
	a.log.Info("configuration reloaded", zap.String("config", a.path), zap.Duration("took", time.Since(start)))
}

// shutdown stops accepting and drains; why is the signal or the upgrade.
func (a *app) shutdown(adm *admin.Server, why string) int {
	cfg := a.cfg.Load()
	a.log.Info("shutting down", zap.String("signal", why), zap.Duration("timeout", cfg.Server.ShutdownTimeout.Duration))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.Duration)
	defer cancel()
	code := 0
	drain := a.proxy.Shutdown
	if why == "binary upgrade" {
		// The new process serves; tunnels here may finish.
		drain = func(ctx context.Context) error {
			return a.proxy.Handover(ctx, func(tunnels int64) {
				a.log.Info("requests drained; open tunnels may finish", zap.Int64("tunnels", tunnels))
			})
		}
	}
	if err := drain(ctx); err != nil {
		a.log.Warn("requests still running at the shutdown timeout were cut", zap.Error(err))
	}
	adminCtx, cancelAdmin := context.WithTimeout(context.Background(), time.Second)
	defer cancelAdmin()
	_ = adm.Shutdown(adminCtx)
	if err := a.access.Close(); err != nil {
		a.log.Error("flushing access log", zap.Error(err))
	}
	a.log.Info("stopped")
	return code
}

func (a *app) ready() (bool, map[string]string) {
	detail := map[string]string{"config": a.path}
	if r := a.lastReload.Load(); r != nil {
		detail["last_reload"] = r.At.Format(time.RFC3339)
		if r.Err != "" {
			detail["last_reload_error"] = r.Err
		}
	}
	if a.coupons != nil {
		detail["coupon_store"] = a.coupons.storeState()
		a.coupons.freshnessDetail(detail)
	}
	return true, detail
}

func (a *app) status() admin.StatusData {
	d := admin.StatusData{Version: version, ConfigPath: a.path, Started: a.started, LastReload: a.lastReload.Load(), Proxy: a.proxy.Snapshot(),
		ResponseCache: a.respCache.status()}
	if c := a.coupons; c != nil {
		n := c.handler.Counts()
		cs := &admin.CouponStatus{Store: c.storeState(), Hit: n.Hit.Load(), Miss: n.Miss.Load(), Stale: n.Stale.Load(),
			Unavailable: n.Unavailable.Load(), Fallback: n.Fallback.Load()}
		if r := c.redis; r != nil {
			cs.L1Hits, cs.L2Hits, cs.RedisReads = r.Stats.L0Hits.Load()+r.Stats.L1Hits.Load(), r.Stats.L2Hits.Load(), r.Stats.Misses.Load()
			cs.Invalidations, cs.InvalidationsAll = r.Stats.Invalidations.Load(), r.Stats.InvalidateAll.Load()
			c.freshnessStatus(cs)
		} else {
			cs.L1Hits = n.Hit.Load() // the file store answers from memory
		}
		d.Coupons = cs
	}
	return d
}
