package proxy

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// upstream is one group of servers with its balancing and health state.
// It is safe for concurrent use; its options never change after creation
// (a reload with other options builds a new upstream).
type upstream struct {
	name    string
	opts    UpstreamOptions
	servers []*server
	next    atomic.Uint64 // round-robin cursor
	now     func() time.Time
	log     *zap.Logger

	stopHealth context.CancelFunc
	healthDone chan struct{}
}

// server is one upstream address with its connection pool.
type server struct {
	addr     string
	hc       *fasthttp.HostClient
	inflight atomic.Int64
	maxConns int64

	// Passive health (max_fails within fail_timeout).
	mu          sync.Mutex // guards fails, windowStart
	fails       int
	windowStart time.Time
	downUntil   atomic.Int64 // unix nanoseconds; 0 = never taken out
	checkFailed atomic.Bool  // the last active health check failed

	// Counters for the status page; metrics has the Prometheus series.
	requests atomic.Uint64
	failures atomic.Uint64
	metrics  serverMetrics
}

func newUpstream(name string, o UpstreamOptions, now func() time.Time, log *zap.Logger, m *Metrics) *upstream {
	u := &upstream{name: name, opts: o, now: now, log: log}
	for _, addr := range o.Servers {
		d := &dialer{connectTimeout: o.ConnectTimeout, ioTimeout: o.ResponseTimeout, slack: deadlineSlack(o.ResponseTimeout)}
		u.servers = append(u.servers, &server{
			addr:     addr,
			maxConns: int64(o.MaxConnsPerServer),
			metrics:  m.forServer(name, addr),
			hc: &fasthttp.HostClient{
				Addr:                          addr,
				Dial:                          d.dial,
				MaxConns:                      o.MaxConnsPerServer,
				MaxConnWaitTimeout:            o.ConnWaitTimeout,
				MaxIdleConnDuration:           o.MaxIdleTime,
				ReadBufferSize:                16 << 10,
				WriteBufferSize:               16 << 10,
				StreamResponseBody:            true,
				DisableHeaderNamesNormalizing: true,
				DisablePathNormalizing:        true,
				NoDefaultUserAgentHeader:      true,
				ConnPoolStrategy:              fasthttp.LIFO,
				// One attempt per Do, except a request that found a pooled
				// connection closed by the server before any response byte:
				// that one is replayed on a fresh connection when it is
				// idempotent. Every other retry is ours, on another server.
				MaxIdemponentCallAttempts: 2,
				RetryIfErr:                retryStaleConn,
			},
		})
	}
	return u
}

func retryStaleConn(req *fasthttp.Request, _ int, err error) (bool, bool) {
	stale := errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF)
	return false, stale && !req.IsBodyStream() && isIdempotent(req.Header.Method())
}

// available reports whether the server may take requests now.
func (s *server) available(now time.Time) bool {
	return !s.checkFailed.Load() && now.UnixNano() >= s.downUntil.Load()
}

// fail records one passive-health failure.
func (s *server) fail(now time.Time, maxFails int, window time.Duration) (tookOut bool) {
	s.failures.Add(1)
	s.metrics.failures.Inc()
	if maxFails <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.windowStart) > window {
		s.windowStart, s.fails = now, 0
	}
	s.fails++
	if s.fails >= maxFails {
		s.fails = 0
		s.downUntil.Store(now.Add(window).UnixNano())
		return true
	}
	return false
}

// pick chooses a server that is available and not yet tried for this
// request (tried is a bit set over u.servers). It returns -1 when none is.
func (u *upstream) pick(now time.Time, tried uint64) int {
	n := len(u.servers)
	start := int(u.next.Add(1) % uint64(n))
	best := -1
	var bestLoad int64
	for k := 0; k < n; k++ {
		i := (start + k) % n
		if i < 64 && tried&(1<<uint(i)) != 0 {
			continue
		}
		s := u.servers[i]
		if !s.available(now) {
			continue
		}
		if u.opts.Balance == RoundRobin {
			return i
		}
		if load := s.inflight.Load(); best < 0 || load < bestLoad {
			best, bestLoad = i, load
		}
	}
	return best
}

// startHealthChecks runs active checks until close when a health path is set.
func (u *upstream) startHealthChecks() {
	if u.opts.HealthPath == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	u.stopHealth = cancel
	u.healthDone = make(chan struct{})
	go func() {
		defer close(u.healthDone)
		t := time.NewTicker(u.opts.HealthInterval)
		defer t.Stop()
		for {
			u.checkAll()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (u *upstream) checkAll() {
	var wg sync.WaitGroup
	for _, s := range u.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := u.check(s)
			was := s.available(u.now())
			if ok {
				s.checkFailed.Store(false)
				s.downUntil.Store(0)
			} else {
				s.checkFailed.Store(true)
			}
			if ok != was {
				u.log.Info("upstream server health changed", zap.String("upstream", u.name),
					zap.String("server", s.addr), zap.Bool("up", ok))
			}
		}()
	}
	wg.Wait()
}

func (u *upstream) check(s *server) bool {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(u.opts.HealthPath)
	req.Header.SetHost(s.addr)
	req.Header.Set("User-Agent", "edgeproxy-health")
	resp.SkipBody = false
	err := s.hc.DoTimeout(req, resp, u.opts.HealthTimeout)
	if resp.IsBodyStream() {
		_ = resp.CloseBodyStream()
	}
	return err == nil && resp.StatusCode() >= 200 && resp.StatusCode() < 300
}

// close stops health checks and closes idle pooled connections; requests
// still running on this upstream finish on their connections.
func (u *upstream) close() {
	if u.stopHealth != nil {
		u.stopHealth()
		<-u.healthDone
	}
	for _, s := range u.servers {
		s.hc.CloseIdleConnections()
	}
}

func isIdempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}

// do sends one attempt to this server, counting it.
func (s *server) do(out *fasthttp.Request, resp *fasthttp.Response, now, deadline time.Time, attempt int) error {
	s.requests.Add(1)
	s.metrics.attempts.Inc()
	if attempt > 0 {
		s.metrics.retries.Inc()
	}
	if s.inflight.Add(1) > int64(s.maxConns) {
		s.metrics.poolWaits.Inc()
	}
	err := s.hc.DoDeadline(out, resp, deadline)
	s.inflight.Add(-1)
	return err
}
