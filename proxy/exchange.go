package proxy

import (
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
)

// exchange is one request's record, from arrival until its response body is
// written: what the access log prints, and scratch space reused so that the
// forwarding path allocates nothing. Pooled by Server.
type exchange struct {
	srv *Server

	// The request being served and the state and route serving it; set
	// for the handler's duration only.
	ctx *fasthttp.RequestCtx
	st  *state
	rt  *route

	// remoteAddr is $remote_addr, computed when first read (vars.go).
	remoteAddr netip.Addr
	remoteSet  bool
	// matchPath is the cleaned path routes match (matchpath.go), in the
	// request's storage or in normPath; captures are path_regex submatch
	// offsets into it.
	matchPath      []byte
	normPath       []byte
	redirectPath   []byte // the path of an internal redirect
	redirectTarget []byte // an upstream's X-Accel-Redirect, copied
	captures       []int
	hostKey        []byte        // lower-case host without port, for the router
	nodes          []*prefixNode // the router's scratch
	// internalRedirect: the request was sent here by error_pages,
	// try_files or X-Accel-Redirect, so internal routes take it.
	internalRedirect bool

	// authCopy and authValues are auth_request's copy_headers and the
	// auth answer's values (nil: absent), set on the request sent upstream.
	authCopy   [][]byte
	authValues [][]byte

	answeredBy     answeredBy
	upstreamStatus int  // the upstream's status, 0 when none answered
	intercepted    bool // the upstream's error answer is replaced by a page
	inErrorPage    bool
	noLog          bool
	redirects      int   // internal redirects so far; nginx allows 10
	bodySize       int64 // length of a response body stream that is not an upstream's

	start, end time.Time
	clientAddr netip.Addr

	requestID []byte
	client    []byte
	method    []byte
	host      []byte
	target    []byte
	cache     []byte

	// The response cache's key and variant key, and the validators it
	// sends upstream in place of the client's when cacheValidators is set
	// (cache.go).
	ckey, vkey      []byte
	valINM, valIMS  []byte
	cacheValidators bool

	route            string
	metrics          *routeMetrics
	upstreamAddr     string
	upstreamDuration time.Duration
	status           int
	bytesIn          int64
	bytesOut         int64
	cause            string

	// streaming is set once the response body is a stream that owns this
	// exchange: the server finishes it when the stream is closed.
	streaming bool
	reqBody   requestBody
	respBody  responseBody

	line      []byte // the access-log line
	hfields   []headerField
	tokens    [][]byte
	uri       []byte
	hostField []byte // the name of the Host field sent upstream (forward.go)
	xff       []byte
	body      []byte
	scratch   []byte // variable values being built
	names     []byte // header names being deleted
}

// answeredBy tells who produced the response, for the error pages step:
// edgeproxy's own errors get pages; upstream answers only when
// intercepted; fixed answers with a body and handlers' answers never.
type answeredBy uint8

const (
	answeredByOwnError answeredBy = iota
	answeredByUpstream
	answeredByReturn
	answeredByHandler
)

type exchangeKey struct{}

func (ex *exchange) reset() {
	srv := ex.srv
	*ex = exchange{
		srv:            srv,
		requestID:      ex.requestID[:0],
		client:         ex.client[:0],
		method:         ex.method[:0],
		host:           ex.host[:0],
		target:         ex.target[:0],
		cache:          ex.cache[:0],
		ckey:           ex.ckey[:0],
		vkey:           ex.vkey[:0],
		valINM:         ex.valINM[:0],
		valIMS:         ex.valIMS[:0],
		line:           ex.line[:0],
		hfields:        ex.hfields[:0],
		tokens:         ex.tokens[:0],
		uri:            ex.uri[:0],
		xff:            ex.xff[:0],
		body:           ex.body[:0],
		scratch:        ex.scratch[:0],
		names:          ex.names[:0],
		captures:       ex.captures[:0],
		normPath:       ex.normPath[:0],
		redirectPath:   ex.redirectPath[:0],
		redirectTarget: ex.redirectTarget[:0],
		hostKey:        ex.hostKey[:0],
		nodes:          ex.nodes[:0],
	}
}

// begin records what the access log needs from the request, by copy: the
// line may be written after the handler returned.
func (ex *exchange) begin(ctx *fasthttp.RequestCtx, now time.Time) {
	ex.start = now
	ex.ctx = ctx
	h := &ctx.Request.Header
	ex.method = append(ex.method, h.Method()...)
	ex.host = append(ex.host, h.Host()...)
	ex.target = append(ex.target, h.RequestURI()...)
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		ex.clientAddr = ap.Addr().Unmap()
		ex.client = ex.clientAddr.AppendTo(ex.client)
	}
	if cl := h.ContentLength(); cl > 0 {
		ex.bytesIn = int64(cl)
	}
}

// requestBody reads the client's body for the upstream, enforcing
// max_body_bytes on bodies of unknown length and telling client read
// failures apart from upstream ones.
type requestBody struct {
	prefix []byte // already read from r, sent first
	r      io.Reader
	limit  int64
	n      int64
	err    error      // the client-side error, if any
	relay  *relayPool // the Server's
}

// SupportsBodyWriteTo and WriteTo make fasthttp's client hand the copy of
// a streamed upload to relay: in 64 KiB reads and writes, not in 4 KiB
// chunks each flushed (chunked) or 16 KiB writes (fixed length).
func (b *requestBody) SupportsBodyWriteTo() bool { return true }

func (b *requestBody) WriteTo(w io.Writer) (int64, error) { return relay(w, b, b.relay) }

func (b *requestBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n+int64(len(b.prefix)) > b.limit {
		b.err = errBodyTooLarge
		return 0, b.err
	}
	if err != nil && err != io.EOF {
		b.err = &clientBodyError{err: err}
		return n, b.err
	}
	return n, err
}

// responseBody streams the upstream's body to the client and, when the
// server closes it after writing, releases the upstream response and
// finishes the exchange.
type responseBody struct {
	ex   *exchange
	resp *fasthttp.Response
	n    int64
	// rate caps the body at so many bytes a second from started (the
	// route's limit_rate, limitrate.go); 0: none.
	rate    int64
	started time.Time
	fill    *cacheFill // nil unless the response cache keeps a copy
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.rate > 0 {
		p = b.pace(p)
	}
	n, err := b.resp.BodyStream().Read(p)
	b.n += int64(n)
	if b.fill != nil {
		b.fill.write(p[:n])
		if err == io.EOF {
			b.fill.end()
		}
	}
	return n, err
}

// relayBufferSize is how much of a streamed body one read takes and one
// write passes on, as nginx's proxy buffers of 64k. Without a WriteTo,
// fasthttp copies a fixed-length body one write buffer (16 KiB) at a time
// (bufio.Writer.ReadFrom) and a chunked one in 4 KiB chunks, each flushed:
// a 1 MiB answer took 66 reads and 66 writes, nginx's 16 and 4.6.
const relayBufferSize = 64 << 10

type relayPool = bufferPool[[relayBufferSize]byte]

// relay copies r to w through a buffer from pool, passing on each read as
// it comes. A write that finds the server's or
// client's write buffer empty goes to the socket whole, and a chunked body
// gets a chunk (flushed) per read; small bodies pay one copy more than a
// read into the write buffer would.
func relay(w io.Writer, r io.Reader, pool *relayPool) (int64, error) {
	buf := pool.get()
	defer pool.put(buf)
	var total int64
	for {
		n, err := r.Read(buf[:])
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// SupportsBodyWriteTo and WriteTo make fasthttp hand the copy of the
// answer's body to relay (fasthttp.BodyWriterTo).
func (b *responseBody) SupportsBodyWriteTo() bool { return true }

func (b *responseBody) WriteTo(w io.Writer) (int64, error) {
	return relay(w, b, &b.ex.srv.relayBuffers)
}

// CloseWithError implements fasthttp.ReadCloserWithError; err is the error
// of writing the response, if any.
func (b *responseBody) CloseWithError(err error) error {
	ex := b.ex
	if ex == nil {
		return nil // handed over to a stream that closes it (compress_stream.go)
	}
	b.fill.abort()                   // no-op once stored
	fasthttp.ReleaseResponse(b.resp) // closes the stream: the connection goes back to the pool or is closed
	b.resp = nil
	ex.bytesOut = b.n
	if err != nil && ex.cause == "" {
		ex.cause = "writing response: " + err.Error()
	}
	ex.srv.finish(ex)
	return nil
}
