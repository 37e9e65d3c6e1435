package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/cache"
	"github.com/edgeproxy/edgeproxy/config"
	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/proxy"
)

// couponService is the coupon handler with the store behind it.
type couponService struct {
	cfg     config.Config // the coupon, redis and cache tables it was built from
	handler *coupon.Handler
	redis   *cache.Store // nil when source = "file"
	file    *coupon.FileStore
	proxy   *proxy.Server
}

func cacheOptions(cfg *config.Config, log *zap.Logger) cache.Options {
	r := cfg.Redis
	return cache.Options{
		Addrs:          r.Addrs,
		Username:       r.Username,
		Password:       r.Password,
		DB:             r.DB,
		KeyPrefix:      r.KeyPrefix,
		CommandTimeout: r.CommandTimeout.Duration,
		DialTimeout:    r.DialTimeout.Duration,
		MaxBytes:       int64(cfg.Cache.MaxBytes) - cfg.ResponseCacheBytes(), // the rest is the response cache's
		TTL:            cfg.Cache.TTL.Duration,
		StaleIfError:   cfg.Cache.StaleIfError.Duration,
		Precision:      cfg.Coupon.GeohashPrecision,
		Logger:         log,

		SentinelMaster:   r.SentinelMaster,
		SentinelUsername: r.SentinelUsername,
		SentinelPassword: r.SentinelPassword,
		TLS:              r.TLS,
		TLSCAFile:        r.TLSCAFile,
		TLSServerName:    r.TLSServerName,
		Instance:         instanceName(),
		ProbeInterval:    cfg.Cache.ProbeInterval.Duration,
		ProbeTimeout:     cfg.Cache.ProbeTimeout.Duration,
		OnStreamLoss:     streamLoss(cfg.Cache.OnStreamLoss),
		DegradedTTL:      cfg.Cache.DegradedTTL.Duration,
		VerifySample:     cfg.Cache.VerifySample,
	}
}

func newCouponService(_ context.Context, cfg *config.Config, log *zap.Logger) (*couponService, error) {
	c := &couponService{cfg: *cfg}
	var store coupon.Store
	switch cfg.Coupon.Source {
	case "file":
		fs, err := coupon.LoadFile(cfg.Coupon.File, cfg.Coupon.GeohashPrecision)
		if err != nil {
			return nil, err
		}
		log.Info("coupons loaded from file", zap.String("file", cfg.Coupon.File), zap.Int("coupons", fs.Count))
		c.file, store = fs, fs
	default:
		rs, err := cache.New(cacheOptions(cfg, log))
		if err != nil {
			return nil, err
		}
		c.redis, store = rs, rs
	}
	c.handler = coupon.NewHandler(store, c.handlerOptions(cfg))
	return c, nil
}

func (c *couponService) handlerOptions(cfg *config.Config) coupon.Options {
	o := coupon.Options{
		PathPrefix: cfg.Coupon.PathPrefix,
		Precision:  cfg.Coupon.GeohashPrecision,
		Limits: coupon.Limits{
			DefaultRadiusM: cfg.Coupon.DefaultRadiusM,
			MaxRadiusM:     cfg.Coupon.MaxRadiusM,
			DefaultLimit:   cfg.Coupon.DefaultLimit,
			MaxLimit:       cfg.Coupon.MaxLimit,
		},
	}
	if cfg.Coupon.FallbackUpstream != "" && c.proxy != nil {
		o.Fallback = c.proxy.UpstreamHandler(cfg.Coupon.FallbackUpstream)
	}
	return o
}

// setFallback wires the fallback upstream once the proxy exists.
func (c *couponService) setFallback(p *proxy.Server) {
	c.proxy = p
	c.handler.Reconfigure(c.handlerOptions(&c.cfg))
}

func (c *couponService) handle(ctx *fasthttp.RequestCtx) { c.handler.Serve(ctx) }

// reload applies what can change live (limits, prefix, fallback); the
// store's settings need a restart.
func (c *couponService) reload(cfg *config.Config) error {
	fixed := func(a, b *config.Config) bool {
		return a.Coupon.Source == b.Coupon.Source && a.Coupon.File == b.Coupon.File &&
			a.Coupon.GeohashPrecision == b.Coupon.GeohashPrecision &&
			reflect.DeepEqual(a.Redis, b.Redis) && a.Cache == b.Cache
	}
	if !fixed(&c.cfg, cfg) {
		return errors.New("coupon source, file, geohash_precision, [redis] and [cache] take effect only after a restart")
	}
	c.cfg = *cfg
	c.handler.Reconfigure(c.handlerOptions(cfg))
	return nil
}

func (c *couponService) Close() {
	if c.redis != nil {
		c.redis.Close()
	}
}

// maxHotKeys bounds the coupon keys handed to a new binary for warming.
const maxHotKeys = 10000

// hotKeys returns the cache keys worth reading before a new process serves;
// none for the file store, which loads everything anyway.
func (c *couponService) hotKeys() []string {
	if c.redis == nil {
		return nil
	}
	return c.redis.HotKeys(maxHotKeys)
}

// warm reads keys from Redis into the cache; see cache.Store.Warm.
func (c *couponService) warm(ctx context.Context, keys []string) (int, error) {
	if c.redis == nil || len(keys) == 0 {
		return 0, nil
	}
	return c.redis.Warm(ctx, keys)
}

// ready reports whether the store can answer: the file is loaded, or Redis
// answers.
func (c *couponService) ready() bool { return c.redis == nil || c.redis.Connected() }

func (c *couponService) storeState() string {
	switch {
	case c.file != nil:
		return fmt.Sprintf("file (%d coupons)", c.file.Count)
	case c.redis.Connected():
		return "redis connected"
	default:
		return "redis unreachable"
	}
}

// checkDeep is what -t checks beyond the file itself: the coupon file's
// lines, and Redis's geohash precision when Redis answers.
func checkDeep(cfg *config.Config) error {
	if cfg.Coupon == nil {
		return nil
	}
	if cfg.Coupon.Source == "file" {
		_, err := coupon.LoadFile(cfg.Coupon.File, cfg.Coupon.GeohashPrecision)
		return err
	}
	w, err := cache.NewWriter(cacheOptions(cfg, zap.NewNop()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: warning: redis not reachable, geohash precision not checked: %v\n", cfg.Path, err)
		return nil
	}
	defer w.Close()
	return w.CheckPrecision(context.Background())
}

// couponsCommand runs `edgeproxy coupons import|delete|check`.
func couponsCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "import" && args[0] != "delete" && args[0] != "check") {
		fmt.Fprintln(stderr, "usage: edgeproxy coupons import -config FILE COUPONS.jsonl\n       edgeproxy coupons delete -config FILE ID...\n       edgeproxy coupons check [-repair] -config FILE")
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("edgeproxy coupons "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.toml", "configuration `FILE`")
	var repair *bool
	if verb == "check" {
		repair = fs.Bool("repair", false, "make the cell side agree with the id key")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	if cfg.Coupon == nil {
		fmt.Fprintf(stderr, "%s: no [coupon] table: nothing to write coupons for\n", cfg.Path)
		return 1
	}
	w, err := cache.NewWriter(cacheOptions(cfg, zap.NewNop()))
	if err != nil {
		fmt.Fprintf(stderr, "connecting to redis %v: %v\n", cfg.Redis.Addrs, err)
		return 1
	}
	defer w.Close()
	ctx := context.Background()
	if verb == "check" {
		if fs.NArg() != 0 {
			fmt.Fprintln(stderr, "usage: edgeproxy coupons check [-repair] -config FILE")
			return 2
		}
		return checkCoupons(ctx, w, *repair, stdout, stderr)
	}
	if verb == "delete" {
		return deleteCoupons(ctx, w, fs.Args(), stdout, stderr)
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: edgeproxy coupons import -config FILE COUPONS.jsonl")
		return 2
	}
	return importCoupons(ctx, w, fs.Arg(0), stdout, stderr)
}

func importCoupons(ctx context.Context, w *cache.Writer, path string, stdout, stderr io.Writer) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer f.Close()
	if err := w.EnsureMeta(ctx); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	start := time.Now()
	written, bad := 0, 0
	err = coupon.ReadJSONL(f, func(line int, c coupon.Coupon, err error) error {
		if err != nil {
			bad++
			fmt.Fprintf(stderr, "%s:%d: %v (line skipped)\n", path, line, err)
			return nil
		}
		if err := w.Put(ctx, c); err != nil {
			return fmt.Errorf("%s:%d: writing coupon %s: %w", path, line, c.ID, err)
		}
		written++
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d coupons in %v; %d bad lines skipped\n", written, time.Since(start).Round(time.Millisecond), bad)
	if bad > 0 {
		return 1
	}
	return 0
}

func deleteCoupons(ctx context.Context, w *cache.Writer, ids []string, stdout, stderr io.Writer) int {
	if len(ids) == 0 {
		fmt.Fprintln(stderr, "usage: edgeproxy coupons delete -config FILE ID...")
		return 2
	}
	code := 0
	for _, id := range ids {
		if !coupon.ValidID(id) {
			fmt.Fprintf(stderr, "%q is not a coupon id\n", id)
			code = 1
			continue
		}
		existed, err := w.Delete(ctx, id)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "deleting %s: %v\n", id, err)
			code = 1
		case existed:
			fmt.Fprintf(stdout, "deleted %s\n", id)
		default:
			fmt.Fprintf(stdout, "%s: no such coupon\n", id)
		}
	}
	return code
}
