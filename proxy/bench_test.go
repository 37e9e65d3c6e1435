package proxy

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// benchProxy is a proxy handler forwarding to a fasthttp upstream that
// answers 128 bytes, and a client connection to drive it in memory.
func benchProxy(b *testing.B, withLog bool) (*fasthttp.Client, func()) {
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 128)
	upSrv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	go upSrv.Serve(upLn)

	o := testOptions()
	o.Logger = zap.NewNop()
	o.Upstreams["up"] = testUpstreamOptions(upLn.Addr().String())
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	if withLog {
		al, err := NewAccessLog(AccessLogOptions{Path: "/dev/null", BufferSize: 256 << 10, FlushInterval: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		o.AccessLog = al
	}
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	go s.Serve(ln)
	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	return c, func() {
		ln.Close()
		upSrv.Shutdown()
		if o.AccessLog != nil {
			o.AccessLog.Close()
		}
	}
}

func benchmarkProxied(b *testing.B, withLog bool) {
	c, stop := benchProxy(b, withLog)
	defer stop()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.SetRequestURI("http://edge.test/news/item?id=1")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("%v %d", err, resp.StatusCode())
		}
	}
}

// BenchmarkProxiedRequest measures one request through the whole proxy
// (client → edgeproxy → upstream on loopback); allocations counted are
// the process's, the client's and upstream's included.
func BenchmarkProxiedRequest(b *testing.B)       { benchmarkProxied(b, false) }
func BenchmarkProxiedRequestLogged(b *testing.B) { benchmarkProxied(b, true) }

// handlerHarness drives the proxy's handler directly, as the server does,
// against a fasthttp upstream on loopback: what it allocates is the
// forwarding path's alone.
func handlerHarness(t testing.TB) (serve func(), stop func()) {
	return routeHarness(t, RouteOptions{PathPrefix: "/", Upstream: "up"})
}

// headersRoute is the route of the §8 performance budget: one request
// header and two response headers set, with variables.
var headersRoute = RouteOptions{PathPrefix: "/", Upstream: "up",
	RequestHeaders: HeaderOps{Set: map[string]string{"X-Real-IP": "$remote_addr"}},
	ResponseHeaders: HeaderOps{Set: map[string]string{
		"X-Frame-Options": "DENY", "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	}},
}

// routeHarness is handlerHarness for one route of the caller's.
func routeHarness(t testing.TB, ro RouteOptions) (serve func(), stop func()) {
	al, _ := NewAccessLog(AccessLogOptions{Path: "/dev/null", BufferSize: 256 << 10, FlushInterval: time.Second})
	o := testOptions()
	o.Routes = []RouteOptions{ro}
	o.AccessLog = al
	o.Metrics = NewMetrics(prometheus.NewRegistry())
	drive, stopDirect := directHandler(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("0123456789") },
		o, nil, "/news/item?id=1", "X-Forwarded-For", "10.0.0.1")
	serve = func() {
		if status, _ := drive(); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	return serve, func() { stopDirect(); al.Close() }
}

// directHandler drives the handler of a Server built from o, as the
// server does, with one request for uri and the given header fields
// (name, value, ...), against upstream "up": a fasthttp server on
// loopback answering with upstream. serve returns the status and the
// bytes of the body, read as the server would write them; inspect, when
// set, sees each response first.
func directHandler(t testing.TB, upstream fasthttp.RequestHandler, o Options, inspect func(*fasthttp.Response), uri string, fields ...string) (serve func() (status, bodyBytes int), stop func()) {
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upSrv := &fasthttp.Server{Handler: upstream}
	go upSrv.Serve(upLn)
	o.Upstreams["up"] = testUpstreamOptions(upLn.Addr().String())
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.DisableNormalizing()
	req.SetRequestURI(uri)
	req.Header.SetHost("edge.test")
	for i := 0; i+1 < len(fields); i += 2 {
		req.Header.Set(fields[i], fields[i+1])
	}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	serve = func() (int, int) {
		s.handle(&ctx)
		if inspect != nil {
			inspect(&ctx.Response)
		}
		status, n := ctx.Response.StatusCode(), len(ctx.Response.Body())
		// What the server does after the handler: write and close the body.
		if ctx.Response.IsBodyStream() {
			m, _ := io.Copy(io.Discard, ctx.Response.BodyStream())
			n = int(m)
		}
		ctx.Response.Reset()
		return status, n
	}
	return serve, func() { upSrv.Shutdown() }
}

// TestForwardingPathAllocations pins the allocations of the proxy's own
// handler per forwarded request.
// A route with header steps allocates no more than a plain one.
func TestForwardingPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	for name, ro := range map[string]RouteOptions{"plain": {PathPrefix: "/", Upstream: "up"}, "headers": headersRoute} {
		serve, stop := routeHarness(t, ro)
		for i := 0; i < 100; i++ {
			serve()
		}
		allocs := testing.AllocsPerRun(1000, serve)
		stop()
		t.Logf("forwarding path, %s route: %.1f allocs per request", name, allocs)
		if allocs > maxForwardAllocs {
			t.Errorf("%s route: forwarding path allocates %.1f times per request; budget %d", name, allocs, maxForwardAllocs)
		}
	}
}

func BenchmarkForwardingPath(b *testing.B) {
	serve, stop := handlerHarness(b)
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve()
	}
}

// BenchmarkForwardingPathHeaders is BenchmarkForwardingPath on
// headersRoute: the cost of three header edits.
func BenchmarkForwardingPathHeaders(b *testing.B) {
	serve, stop := routeHarness(b, headersRoute)
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve()
	}
}

// maxForwardAllocs is the budget pinned by TestForwardingPathAllocations.
const maxForwardAllocs = 10

// BenchmarkMetricsObservation is what recording one request costs: a
// status-class counter and a latency histogram, resolved in advance.
func BenchmarkMetricsObservation(b *testing.B) {
	rm := NewMetrics(prometheus.NewRegistry()).forRoute("r")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rm.observe(200, 0.0042)
		}
	})
}

// BenchmarkAccessLogLine is what one access-log line costs, encoded and
// buffered (written to /dev/null when the buffer fills).
func BenchmarkAccessLogLine(b *testing.B) {
	al, err := NewAccessLog(AccessLogOptions{Path: "/dev/null", BufferSize: 256 << 10, FlushInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer al.Close()
	ex := &exchange{start: time.Now(), end: time.Now().Add(1234 * time.Microsecond), status: 200, bytesOut: 128,
		route: "/news/", upstreamAddr: "127.0.0.1:9001", upstreamDuration: time.Millisecond}
	ex.requestID = []byte("c93266cb475fbb430000000000000001")
	ex.client, ex.method, ex.host = []byte("10.1.2.3"), []byte("GET"), []byte("news.example.com")
	ex.target = []byte("/news/item?id=12345&lang=en")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		al.write(ex)
	}
}

// BenchmarkVariables evaluates the variables a redirect and a header
// typically use, against a request in memory.
func BenchmarkVariables(b *testing.B) {
	tpl := vars.MustParse("https://$host$request_uri $remote_addr $http_user_agent $cookie_session $arg_id")
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.DisableNormalizing()
	req.SetRequestURI("/news/item?id=1")
	req.Header.SetHost("Edge.Test:8080")
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Cookie", "session=abc; other=1")
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	ex := &exchange{st: &state{}}
	ex.begin(&ctx, time.Now())
	want := "https://edge.test/news/item?id=1 127.0.0.1 bench abc 1"
	if got := string(tpl.Append(nil, ex)); got != want {
		b.Fatalf("got %q, want %q", got, want)
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = tpl.Append(buf[:0], ex)
	}
}

// BenchmarkHeaderSteps is what headersRoute's three edits add to a
// request, measured apart from the I/O that dominates the whole path
// (compare with the pass-through CPU per request of make bench).
func BenchmarkHeaderSteps(b *testing.B) {
	req := compileOrFail(b, headersRoute.RequestHeaders)
	resp := &responseHeadersStep{edit: compileOrFail(b, headersRoute.ResponseHeaders)}
	var ctx fasthttp.RequestCtx
	var in fasthttp.Request
	in.Header.DisableNormalizing()
	in.SetRequestURI("/news/item?id=1")
	in.Header.SetHost("edge.test")
	ctx.Init(&in, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	ex := &exchange{st: &state{}}
	ex.begin(&ctx, time.Now())
	var out fasthttp.Request
	out.Header.DisableNormalizing()
	ctx.Response.Header.DisableNormalizing() // as the server runs it
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out.Header.Reset()
		ctx.Response.Header.Reset()
		ctx.Response.Header.SetStatusCode(200)
		ex.remoteSet = false
		req.applyRequest(&out.Header, ex)
		resp.onResponse(&ctx, ex)
	}
}

func compileOrFail(b *testing.B, o HeaderOps) *headerEdit {
	e, err := compileHeaderOps(o)
	if err != nil {
		b.Fatal(err)
	}
	return e
}
