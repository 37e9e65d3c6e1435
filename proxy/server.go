package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Server is the public listener and its live routing state. It is safe for
// concurrent use; Reload swaps the state whole.
type Server struct {
	fixed  Options // the start-time options; only the fixed fields are read
	state  atomic.Pointer[state]
	srv    *fasthttp.Server
	log    *zap.Logger
	access *AccessLog
	now    func() time.Time

	exchanges    sync.Pool
	relayBuffers relayPool // while a streamed body is copied (exchange.go)

	requestIDPrefix [16]byte // hex of 8 random bytes, unique per process
	requestIDSeq    atomic.Uint64

	reloadMu sync.Mutex // serialises Reload

	noRoute routeMetrics // requests that matched no route or did not parse

	tunnels tunnelSet  // upgraded connections (upgrade_tunnel.go)
	conns   *connTable // client connections (park.go)

	// limiters are the live state's rate limiters by route and options,
	// kept across reloads; written by build (under reloadMu or in New).
	limiters map[string]RateLimiter
}

// state is everything a request reads, built whole and never changed.
type state struct {
	router          *router
	named           map[string]*route // by name, for "@name" targets
	compress        *compressStep     // nil: [compression] off
	caches          []*cacheTarget    // routes with a response cache, for purges
	upstreams       map[string]*upstream
	trustedProxies  []netip.Prefix
	maxBodyBytes    int64
	bufferBodyBytes int64
	opts            Options
	limiters        map[string]RateLimiter
}

func (st *state) trusted(a netip.Addr) bool {
	for _, p := range st.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// New builds a Server; Serve starts it.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{fixed: o, log: o.Logger, access: o.AccessLog, now: o.Now}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	hex.Encode(s.requestIDPrefix[:], seed[:])
	s.exchanges.New = func() any { return &exchange{srv: s} }
	s.noRoute = o.Metrics.forRoute("(none)")

	st, err := s.build(o, nil)
	if err != nil {
		return nil, err
	}
	s.state.Store(st)

	s.srv = &fasthttp.Server{
		Handler:                       s.handle,
		ErrorHandler:                  s.handleParseError,
		Name:                          "edgeproxy",
		Concurrency:                   o.MaxConns,
		ReadBufferSize:                o.MaxHeaderBytes,
		WriteBufferSize:               16 << 10,
		ReadTimeout:                   o.ReadTimeout,
		WriteTimeout:                  o.WriteTimeout,
		IdleTimeout:                   o.IdleTimeout,
		MaxRequestBodySize:            int(min(o.BufferBodyBytes, o.MaxBodyBytes)),
		StreamRequestBody:             true,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		ReduceMemoryUsage:             true,
		LazyRequestTime:               true, // ctx.Time() is never read: one clock read less per request
		Logger:                        zapPrintf{o.Logger},
	}
	every := o.ParkIdleAfter
	if every == 0 {
		every = DefaultParkIdleAfter
	}
	atOnce := o.ParkAtOnceAbove
	if atOnce == 0 {
		atOnce = DefaultParkAtOnceAbove
	}
	s.conns = newConnTable(o.MaxConns, max(every, 0), atOnce, s.srv.ServeConn, o.Logger)
	if every > 0 {
		s.srv.ConnState = connStateHook
	}
	return s, nil
}

// build turns options into a new state, reusing the upstreams of prev whose
// options are unchanged so their pools stay warm.
func (s *Server) build(o Options, prev *state) (*state, error) {
	st := &state{
		upstreams:       make(map[string]*upstream, len(o.Upstreams)),
		trustedProxies:  o.TrustedProxies,
		maxBodyBytes:    o.MaxBodyBytes,
		bufferBodyBytes: o.BufferBodyBytes,
		opts:            o,
		limiters:        map[string]RateLimiter{},
	}
	for name, uo := range o.Upstreams {
		if prev != nil && o.Resolver != prev.opts.Resolver {
			prev = nil // every upstream resolves anew through the new resolver
		}
		if len(uo.Servers) == 0 {
			return nil, fmt.Errorf("upstream %s: no servers", name)
		}
		if prev != nil {
			if old, ok := prev.upstreams[name]; ok && reflect.DeepEqual(old.opts, uo) {
				st.upstreams[name] = old
				continue
			}
		}
		up, err := newUpstream(name, uo, s.now, s.log, o.Metrics, lookupWith(o.Resolver))
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", name, err)
		}
		st.upstreams[name] = up
	}
	var err error
	if st.compress, err = newCompressStep(o.Compression); err != nil {
		return nil, fmt.Errorf("compression: %w", err)
	}
	routes := make([]*route, 0, len(o.Routes))
	st.named = map[string]*route{}
	for _, ro := range o.Routes {
		r, err := s.compileRoute(ro, st)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", routeLabel(ro), err)
		}
		r.metrics = o.Metrics.forRoute(r.name)
		if ro.Name != "" {
			st.named[ro.Name] = r
		}
		if ro.PathPrefix != "" || ro.PathExact != "" || ro.PathRegex != "" {
			routes = append(routes, r)
		}
	}
	st.router = newRouter(routes)
	s.limiters = st.limiters
	return st, nil
}

func routeLabel(ro RouteOptions) string {
	switch {
	case ro.Name != "":
		return ro.Name
	case ro.PathExact != "":
		return ro.Host + "=" + ro.PathExact
	case ro.PathRegex != "":
		return ro.Host + "~" + ro.PathRegex
	}
	return ro.Host + ro.PathPrefix
}

// Reload swaps in a state built from o. Requests in flight finish on the
// old state; upstreams that are gone are closed once swapped out.
func (s *Server) Reload(o Options) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.state.Load()
	st, err := s.build(o, old)
	if err != nil {
		return err
	}
	var fixed []string
	if o.Listen != s.fixed.Listen {
		fixed = append(fixed, "server.listen")
	}
	if o.MaxConns != s.fixed.MaxConns {
		fixed = append(fixed, "server.max_conns")
	}
	if o.MaxHeaderBytes != s.fixed.MaxHeaderBytes {
		fixed = append(fixed, "server.max_header_bytes")
	}
	if o.ReadTimeout != s.fixed.ReadTimeout || o.WriteTimeout != s.fixed.WriteTimeout || o.IdleTimeout != s.fixed.IdleTimeout {
		fixed = append(fixed, "server timeouts")
	}
	if o.TLSCertFile != s.fixed.TLSCertFile || o.TLSKeyFile != s.fixed.TLSKeyFile {
		fixed = append(fixed, "server.tls_*")
	}
	if len(fixed) > 0 {
		s.log.Warn("reload: these settings take effect only after a restart", zap.String("keys", strings.Join(fixed, ", ")))
	}
	for _, up := range st.upstreams {
		if prevUp, ok := old.upstreams[up.name]; !ok || prevUp != up {
			up.startHealthChecks()
		}
	}
	s.state.Store(st)
	for name, up := range old.upstreams {
		if st.upstreams[name] != up {
			up.close()
		}
	}
	return nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	for _, up := range s.state.Load().upstreams {
		up.startHealthChecks()
	}
	pl := &lazyListener{Listener: ln, slack: deadlineSlack(s.fixed.ReadTimeout, s.fixed.WriteTimeout, s.fixed.IdleTimeout), table: s.conns}
	s.conns.start()
	if s.fixed.TLSCertFile != "" {
		// TLS here rather than by ServeTLS, so that request heads are
		// guarded in plain text (headguard.go).
		cert, err := tls.LoadX509KeyPair(s.fixed.TLSCertFile, s.fixed.TLSKeyFile)
		if err != nil {
			return err
		}
		return s.srv.Serve(guardedListener{tls.NewListener(pl, &tls.Config{Certificates: []tls.Certificate{cert}})})
	}
	pl.guard = true
	return s.srv.Serve(pl)
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// closes idle connections and open tunnels, then closes the upstream pools.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.finishRequests(ctx)
	s.tunnels.closeAll()
	for _, up := range s.state.Load().upstreams {
		up.close()
	}
	return err
}

// Handover is Shutdown for a binary upgrade (SIGUSR2): the new process
// takes every new connection, so the tunnels still open here are left to
// end by themselves until ctx ends, as nginx's old workers keep their
// WebSocket connections; those still open then are closed.
// drained, when set, is told how many tunnels are open once the requests
// in flight are done.
func (s *Server) Handover(ctx context.Context, drained func(tunnels int64)) error {
	err := s.finishRequests(ctx)
	if drained != nil {
		drained(s.tunnels.open.Load())
	}
	s.tunnels.waitEmpty(ctx)
	s.tunnels.closeAll()
	for _, up := range s.state.Load().upstreams {
		up.close()
	}
	return err
}

// finishRequests stops accepting and parking, closes parked and idle
// connections, and lets requests in flight finish until ctx ends, those
// of connections resumed just before included.
func (s *Server) finishRequests(ctx context.Context) error {
	s.conns.stop()
	err := s.srv.ShutdownWithContext(ctx)
	s.conns.waitResumed(ctx)
	return err
}

// Handler is the request handler, for serving on a listener of one's own.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// UpstreamHandler forwards a request to the named upstream of whatever
// state is live when it runs; a route handler uses it for its fallback.
func (s *Server) UpstreamHandler(name string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		st := s.state.Load()
		ex, _ := ctx.UserValue(exchangeKey{}).(*exchange)
		up := st.upstreams[name]
		if ex == nil || up == nil {
			writeError(ctx, fasthttp.StatusBadGateway)
			return
		}
		ctx.Response.Reset()
		s.forward(ctx, ex, up)
	}
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	st := s.state.Load()
	ex := s.exchanges.Get().(*exchange)
	ex.begin(ctx, s.now())
	ex.st = st
	ex.requestID = s.appendRequestID(ex.requestID[:0])

	var rt *route
	status, headErr := checkRequestHead(&ctx.Request.Header)
	if status == 0 {
		raw, _ := splitTarget(ctx.Request.Header.RequestURI())
		var err error
		if ex.matchPath, ex.normPath, err = matchPath(ex.normPath, raw); err != nil {
			status, headErr = fasthttp.StatusBadRequest, err
		} else {
			rt = st.router.match(ctx.Request.Header.Host(), ex.matchPath, ex)
		}
	}
	ex.metrics = &s.noRoute
	switch {
	case status != 0:
		ex.cause = headErr.Error()
		writeError(ctx, status)
	case rt == nil:
		ex.cause = "no route"
		writeError(ctx, fasthttp.StatusNotFound)
	case rt.internal:
		// An internal route asked for from outside: 404, as nginx's
		// internal location answers (it does not fall through).
		ex.route = rt.name
		ex.metrics = &rt.metrics
		ex.cause = "internal route asked for directly"
		writeError(ctx, fasthttp.StatusNotFound)
	default:
		ex.route = rt.name
		ex.metrics = &rt.metrics
		ex.rt = rt
		ex.noLog = rt.noAccessLog
		s.serveRoute(ctx, ex, rt)
	}
	ex.ctx = nil // nothing of the request is read after the handler
	ex.status = ctx.Response.StatusCode()
	if !ex.streaming {
		if ctx.Response.IsBodyStream() {
			ex.bytesOut = ex.bodySize // Body() would read the stream into memory
		} else {
			ex.bytesOut = int64(len(ctx.Response.Body()))
		}
		s.finish(ex)
	}
	// A streaming exchange is finished by its body's CloseWithError.
}

// finish logs the exchange and returns it to the pool.
func (s *Server) finish(ex *exchange) {
	ex.end = s.now()
	if ex.metrics != nil {
		ex.metrics.observe(ex.status, ex.end.Sub(ex.start).Seconds())
	}
	if s.access != nil && !ex.noLog {
		s.access.write(ex)
	}
	ex.reset()
	s.exchanges.Put(ex)
}

// handleParseError answers requests fasthttp could not parse.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	status := parseErrorStatus(err)
	writeError(ctx, status)
	ex := s.exchanges.Get().(*exchange)
	ex.begin(ctx, s.now())
	ex.requestID = s.appendRequestID(ex.requestID[:0])
	ex.status = status
	ex.cause = err.Error()
	ex.metrics = &s.noRoute
	ex.bytesOut = int64(len(ctx.Response.Body()))
	s.finish(ex)
}

// appendRequestID appends a new id: the process prefix and a counter.
func (s *Server) appendRequestID(dst []byte) []byte {
	dst = append(dst, s.requestIDPrefix[:]...)
	n := s.requestIDSeq.Add(1)
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(n>>uint(shift))&0xf])
	}
	return dst
}

// connStateHook tells a plain client connection when fasthttp waits for
// its next request and when that request begins (park.go).
func connStateHook(c net.Conn, st fasthttp.ConnState) {
	cc, ok := c.(*clientConn)
	if !ok || !cc.parkable {
		return
	}
	switch st {
	case fasthttp.StateIdle:
		cc.waiting()
	case fasthttp.StateActive:
		cc.activated()
	}
}

// zapPrintf adapts zap to fasthttp's Logger.
type zapPrintf struct{ l *zap.Logger }

func (z zapPrintf) Printf(format string, args ...any) {
	if ce := z.l.Check(zap.DebugLevel, ""); ce != nil {
		ce.Message = fmt.Sprintf(format, args...)
		ce.Write()
	}
}
