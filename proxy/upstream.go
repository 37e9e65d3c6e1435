package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// upstream is one group of servers with its balancing and health state.
// It is safe for concurrent use; its options never change after creation
// (a reload with other options builds a new upstream). Its set of servers
// may: host names are re-resolved every resolve_interval, and the new set
// is swapped in whole.
type upstream struct {
	name    string
	opts    UpstreamOptions
	specs   []serverSpec
	set     atomic.Pointer[serverSet]
	tls     *tls.Config // https:// servers; nil if none
	hashKey *vars.Template
	next    atomic.Uint64 // round-robin cursor
	now     func() time.Time
	log     *zap.Logger
	metrics *Metrics

	// resolveFailed is set while the last resolution of a name failed
	// and its last good addresses are kept.
	resolveFailed atomic.Bool
	lookup        func(ctx context.Context, host string) ([]netip.Addr, error)

	stop context.CancelFunc // ends health checks and re-resolution
	done sync.WaitGroup
}

// serverSet is the servers of an upstream at one moment.
type serverSet struct {
	servers []*server
}

// server is one upstream address with its connection pool.
type server struct {
	addr       string // what is dialled: "ip:port", "host:port" or a socket path
	spec       int    // index of the servers entry it comes from
	hostHeader string // Host for host = "upstream": the name as configured
	hc         *fasthttp.HostClient
	dialer     *dialer
	inflight   atomic.Int64
	maxConns   int64
	id         uint64 // hash of addr, for balance = "hash"

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

func newUpstream(name string, o UpstreamOptions, now func() time.Time, log *zap.Logger, m *Metrics, lookup func(context.Context, string) ([]netip.Addr, error)) (*upstream, error) {
	u := &upstream{name: name, opts: o, now: now, log: log, metrics: m, lookup: lookup}
	needTLS := false
	for _, s := range o.Servers {
		spec, err := parseServerSpec(s)
		if err != nil {
			return nil, err
		}
		needTLS = needTLS || spec.tls
		u.specs = append(u.specs, spec)
	}
	if needTLS {
		var err error
		if u.tls, err = clientTLS(o.TLS); err != nil {
			return nil, err
		}
	}
	if o.Balance == Hash {
		key := o.HashKey
		if key == "" {
			key = "$remote_addr"
		}
		var err error
		if u.hashKey, err = vars.Parse(key); err != nil {
			return nil, fmt.Errorf("hash_key: %w", err)
		}
	}
	addrs := make([][]string, len(u.specs))
	for i, spec := range u.specs {
		addrs[i] = u.addressesOf(spec, nil)
	}
	u.set.Store(u.buildSet(addrs, nil))
	return u, nil
}

// addressesOf is what a servers entry dials: its resolved addresses when
// it is a name and re-resolution is on, else itself. prev is kept when
// a resolution fails.
func (u *upstream) addressesOf(spec serverSpec, prev []string) []string {
	if !spec.isName() || u.opts.ResolveInterval <= 0 {
		if spec.network == "unix" {
			return []string{spec.host}
		}
		return []string{net.JoinHostPort(spec.host, spec.port)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ips, err := u.lookup(ctx, spec.host)
	if err == nil && len(ips) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		u.resolveFailed.Store(true)
		u.metrics.resolveFailure(u.name)
		u.log.Warn("upstream host name did not resolve; keeping its last addresses",
			zap.String("upstream", u.name), zap.String("host", spec.host), zap.Int("kept", len(prev)), zap.Error(err))
		return prev
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.Unmap().String(), spec.port))
	}
	sort.Strings(out)
	return out
}

const resolveTimeout = 5 * time.Second

// buildSet makes the servers for addrs (per servers entry), reusing the
// servers of prev that have the same entry and address, so their pools,
// health and counters survive a re-resolution.
func (u *upstream) buildSet(addrs [][]string, prev *serverSet) *serverSet {
	old := map[string]*server{}
	if prev != nil {
		for _, s := range prev.servers {
			old[strconv.Itoa(s.spec)+" "+s.addr] = s
		}
	}
	set := &serverSet{}
	for i, list := range addrs {
		for _, addr := range list {
			if s := old[strconv.Itoa(i)+" "+addr]; s != nil {
				set.servers = append(set.servers, s)
				continue
			}
			set.servers = append(set.servers, u.newServer(i, addr))
		}
	}
	return set
}

func (u *upstream) newServer(spec int, addr string) *server {
	o := u.opts
	sp := u.specs[spec]
	d := &dialer{network: sp.network, connectTimeout: o.ConnectTimeout, ioTimeout: o.ResponseTimeout, slack: deadlineSlack(o.ResponseTimeout)}
	if sp.tls {
		d.tls = u.tls
		d.tlsName = o.TLS.ServerName
		if d.tlsName == "" {
			d.tlsName = sp.host
		}
	}
	label := addr
	if sp.network == "unix" {
		label = "unix:" + addr
	}
	h := fnv.New64a()
	h.Write([]byte(label))
	return &server{
		addr:       label,
		spec:       spec,
		hostHeader: sp.hostPort(),
		maxConns:   int64(o.MaxConnsPerServer),
		metrics:    u.metrics.forServer(u.name, label),
		id:         h.Sum64(),
		dialer:     d,
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
	}
}

// resolveAgain re-resolves the host names and swaps in the new set when
// the addresses changed; servers that are gone have their idle
// connections closed (busy ones finish their requests).
func (u *upstream) resolveAgain() {
	cur := u.set.Load()
	prev := make([][]string, len(u.specs))
	for _, s := range cur.servers {
		prev[s.spec] = append(prev[s.spec], strings.TrimPrefix(s.addr, "unix:"))
	}
	failed := false
	next := make([][]string, len(u.specs))
	for i, spec := range u.specs {
		before := u.resolveFailed.Swap(false)
		next[i] = u.addressesOf(spec, prev[i])
		failed = failed || u.resolveFailed.Load()
		u.resolveFailed.Store(before || u.resolveFailed.Load())
	}
	u.resolveFailed.Store(failed)
	if reflect.DeepEqual(prev, next) {
		return
	}
	set := u.buildSet(next, cur)
	u.set.Store(set)
	kept := map[*server]bool{}
	for _, s := range set.servers {
		kept[s] = true
	}
	for _, s := range cur.servers {
		if !kept[s] {
			s.hc.CloseIdleConnections()
		}
	}
	u.log.Info("upstream servers changed after resolving", zap.String("upstream", u.name), zap.Int("servers", len(set.servers)))
}

func retryStaleConn(req *fasthttp.Request, _ int, err error) (bool, bool) {
	// A kept connection the upstream has closed answers the next request
	// with EOF, or, closed with a reset (or a FIN the request then drew
	// one from), ECONNRESET or EPIPE.
	stale := errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
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

// pick chooses a server of set that is available and not yet tried for
// this request (tried is a bit set over set.servers) by the upstream's
// balance; key is the request's hash for balance = "hash". It returns -1
// when none is.
func (u *upstream) pick(set *serverSet, now time.Time, tried uint64, key uint64) int {
	n := len(set.servers)
	if n == 0 {
		return -1
	}
	usable := func(i int) bool {
		return (i >= 64 || tried&(1<<uint(i)) == 0) && set.servers[i].available(now)
	}
	switch u.opts.Balance {
	case Hash:
		return pickRendezvous(set, key, usable)
	case RandomTwo:
		return pickRandomTwo(set, usable)
	}
	start := int(u.next.Add(1) % uint64(n))
	best := -1
	var bestLoad int64
	for k := 0; k < n; k++ {
		i := (start + k) % n
		if !usable(i) {
			continue
		}
		if u.opts.Balance == RoundRobin {
			return i
		}
		if load := set.servers[i].inflight.Load(); best < 0 || load < bestLoad {
			best, bestLoad = i, load
		}
	}
	return best
}

// startHealthChecks runs active checks until close when a health path is set.
// startHealthChecks runs active checks (when a health path is set) and
// re-resolution (when a server is a host name) until close.
func (u *upstream) startHealthChecks() {
	ctx, cancel := context.WithCancel(context.Background())
	u.stop = cancel
	if u.opts.HealthPath != "" {
		u.every(ctx, u.opts.HealthInterval, true, u.checkAll)
	}
	if u.opts.ResolveInterval > 0 && slices.ContainsFunc(u.specs, serverSpec.isName) {
		u.every(ctx, u.opts.ResolveInterval, false, u.resolveAgain)
	}
}

// every runs f every d (first at once when now is set) until ctx ends.
func (u *upstream) every(ctx context.Context, d time.Duration, now bool, f func()) {
	u.done.Add(1)
	go func() {
		defer u.done.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		if now {
			f()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	}()
}

func (u *upstream) checkAll() {
	var wg sync.WaitGroup
	for _, s := range u.set.Load().servers {
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
	req.Header.SetHost(s.hostHeader)
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
	if u.stop != nil {
		u.stop()
		u.done.Wait()
	}
	for _, s := range u.set.Load().servers {
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
func (s *server) do(out *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, attempt int) error {
	s.count(attempt)
	if s.inflight.Add(1) > s.maxConns {
		s.metrics.poolWaits.Inc()
	}
	err := s.hc.DoDeadline(out, resp, deadline)
	s.inflight.Add(-1)
	return err
}
