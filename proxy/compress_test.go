package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"
)

// plainClient sends Accept-Encoding only when a test sets it and never
// decodes: the test sees the bytes the proxy sent.
var plainClient = &http.Client{Timeout: 15 * time.Second,
	Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}}

func compressionOn() CompressionOptions {
	return CompressionOptions{
		Enabled:    true,
		Algorithms: []string{"zstd", "br", "gzip"},
		Types:      []string{"text/*", "application/json", "application/javascript", "image/svg+xml"},
		MinBytes:   1024,
		Level:      "default",
	}
}

// jsonBody is n bytes of JSON-like text that compresses well.
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n-2; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"coupon %d","valid":true},`, i, i)
	}
	out := b.Bytes()[:n-2]
	return append(out, "]}"...)
}

// compressProxy serves routes over an upstream h with [compression] as
// given; "/" forwards, "/fixed" answers a fixed body, "/off" forwards with
// compress = false.
func compressProxy(t *testing.T, co CompressionOptions, h http.HandlerFunc) string {
	t.Helper()
	up := upstreamServer(t, h)
	o := testOptions()
	o.Compression = co
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Routes = []RouteOptions{
		{PathPrefix: "/", Upstream: "up", Compress: true},
		{PathPrefix: "/fixed", Return: 200, Body: string(jsonBody(4096)), ContentType: "application/json", Compress: true},
		{PathPrefix: "/off", Upstream: "up", Compress: false},
	}
	addr, _ := startProxy(t, o)
	return "http://" + addr
}

func do(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// decode undoes a content coding with the libraries' own decoders.
func decode(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	case "":
		return b
	default:
		t.Fatalf("unexpected coding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", enc, err)
	}
	return out
}

func TestCompressionCodingsDecodeToTheOriginal(t *testing.T) {
	body := jsonBody(8 << 10)
	big := jsonBody(300 << 10) // several upstream reads, several flushes
	base := compressProxy(t, compressionOn(), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		b := body
		if r.URL.Query().Get("big") != "" {
			b = big
		}
		if r.URL.Query().Get("chunked") != "" {
			w.Write(b[:100])
			w.(http.Flusher).Flush()
			w.Write(b[100:])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
	for _, enc := range []string{"gzip", "br", "zstd"} {
		for _, path := range []string{"/a", "/a?chunked=1", "/a?big=1", "/a?big=1&chunked=1", "/fixed"} {
			t.Run(enc+path, func(t *testing.T) {
				resp, got := do(t, "GET", base+path, "Accept-Encoding", enc)
				if ce := resp.Header.Get("Content-Encoding"); ce != enc {
					t.Fatalf("Content-Encoding %q, want %q", ce, enc)
				}
				want := body
				switch {
				case strings.Contains(path, "big"):
					want = big
				case path == "/fixed":
					want = jsonBody(4096)
				}
				if dec := decode(t, enc, got); !bytes.Equal(dec, want) {
					t.Fatalf("decoded %d bytes, want the %d sent", len(dec), len(want))
				}
				if len(got) >= len(want)/2 {
					t.Errorf("%d compressed bytes for %d: not compressed", len(got), len(want))
				}
				if v := resp.Header.Values("Vary"); len(v) != 1 || v[0] != "Accept-Encoding" {
					t.Errorf("Vary %q", v)
				}
				if path == "/fixed" {
					if resp.ContentLength != int64(len(got)) {
						t.Errorf("Content-Length %d, body %d", resp.ContentLength, len(got))
					}
				} else if resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 {
					t.Errorf("streamed answer: Content-Length %d, Transfer-Encoding %q; want chunked", resp.ContentLength, resp.TransferEncoding)
				}
			})
		}
	}
}

func TestCompressionNegotiation(t *testing.T) {
	def := []coding{codingZstd, codingBr, codingGzip}
	for _, tc := range []struct {
		name   string
		fields []string // Accept-Encoding fields; nil: none
		order  []coding
		want   coding
	}{
		{"absent", nil, def, codingIdentity},
		{"empty", []string{""}, def, codingIdentity},
		{"gzip", []string{"gzip"}, def, codingGzip},
		{"tie by algorithms order", []string{"gzip, br, zstd"}, def, codingZstd},
		{"tie by order, two", []string{"gzip, br"}, def, codingBr},
		{"tie at equal q", []string{"gzip;q=0.8, br;q=0.8"}, def, codingBr},
		{"highest q wins", []string{"zstd;q=0.5, br;q=0.7, gzip"}, def, codingGzip},
		{"q=0 refuses", []string{"zstd;q=0, br;q=0, gzip;q=0.001"}, def, codingGzip},
		{"all refused", []string{"zstd;q=0, br;q=0.000, gzip;q=0"}, def, codingIdentity},
		{"star", []string{"*"}, def, codingZstd},
		{"star below a named one", []string{"*;q=0.5, gzip"}, def, codingGzip},
		{"star with a refusal", []string{"*, zstd;q=0"}, def, codingBr},
		{"star refused", []string{"*;q=0"}, def, codingIdentity},
		{"case and whitespace", []string{" GZip ;\tQ=0.9 , BR ; q=0.3"}, def, codingGzip},
		{"x-gzip", []string{"x-gzip"}, def, codingGzip},
		{"unknown codings", []string{"deflate, compress"}, def, codingIdentity},
		{"identity preferred", []string{"gzip;q=0.5, identity"}, def, codingIdentity},
		{"identity at equal q", []string{"gzip, identity"}, def, codingGzip},
		{"bad q refuses", []string{"br;q=1.5, gzip;q=abc, zstd;q="}, def, codingIdentity},
		{"two fields", []string{"gzip", "br"}, def, codingBr},
		{"refusal is not undone", []string{"br;q=0", "br, gzip;q=0.1"}, def, codingGzip},
		{"other parameters", []string{"gzip;level=1;q=0.4, br;foo=bar;q=0.2"}, def, codingGzip},
		{"only configured codings", []string{"zstd, br"}, []coding{codingGzip}, codingIdentity},
		{"configured order", []string{"zstd, br, gzip"}, []coding{codingGzip, codingBr}, codingGzip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a acceptEncoding
			a.reset()
			for _, f := range tc.fields {
				a.parse([]byte(f))
			}
			got := codingIdentity
			if a.seen {
				got = a.choose(tc.order)
			}
			if got != tc.want {
				t.Errorf("%q: got %s, want %s", tc.fields, codingTokens[got], codingTokens[tc.want])
			}
		})
	}
}

// The same negotiation end to end: the request's fields, whatever their
// case, decide the coding the client gets.
func TestCompressionNegotiationThroughTheProxy(t *testing.T) {
	body := jsonBody(4096)
	base := compressProxy(t, compressionOn(), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	for _, tc := range []struct {
		hdr  []string
		want string
	}{
		{nil, ""},
		{[]string{"Accept-Encoding", "gzip, deflate, br"}, "br"},
		{[]string{"accept-encoding", "gzip;q=1.0, zstd;q=0.5"}, "gzip"},
		{[]string{"ACCEPT-ENCODING", "zstd;q=0, br;q=0, gzip;q=0"}, ""},
		{[]string{"Accept-Encoding", "*"}, "zstd"},
		{[]string{"Accept-Encoding", "identity"}, ""},
		{[]string{"Accept-Encoding", "gzip", "cache-control", "max-age=0, No-Transform"}, ""},
	} {
		resp, got := do(t, "GET", base+"/x", tc.hdr...)
		if ce := resp.Header.Get("Content-Encoding"); ce != tc.want {
			t.Errorf("%q: Content-Encoding %q, want %q", tc.hdr, ce, tc.want)
			continue
		}
		if dec := decode(t, tc.want, got); !bytes.Equal(dec, body) {
			t.Errorf("%q: body differs", tc.hdr)
		}
		if tc.want == "" && resp.Header.Get("Vary") != "" {
			t.Errorf("%q: uncompressed answer got Vary %q", tc.hdr, resp.Header.Get("Vary"))
		}
	}
}

// Every answer compression must leave alone reaches the client as the
// upstream sent it.
func TestCompressionExclusions(t *testing.T) {
	body := jsonBody(4096)
	base := compressProxy(t, compressionOn(), func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "application/json")
		if ct := q.Get("type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		if q.Has("notype") {
			w.Header()["Content-Type"] = nil // and no sniffing
		}
		if cc := q.Get("cc"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if ce := q.Get("ce"); ce != "" {
			w.Header().Set("Content-Encoding", ce)
		}
		if q.Get("range") != "" {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(body)-1, len(body)*2))
		}
		b := body
		if n := q.Get("len"); n != "" {
			l, _ := strconv.Atoi(n)
			b = body[:l]
		}
		status, _ := strconv.Atoi(q.Get("status"))
		if status == 0 {
			status = 200
		}
		if status != 204 && status != 304 {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		}
		w.WriteHeader(status)
		w.Write(b)
	})
	for _, tc := range []struct {
		name, query string
		compressed  bool
	}{
		{"plain json", "", true},
		{"type with parameters", "type=text/html;+charset=utf-8", true},
		{"type in another case", "type=Application/JSON", true},
		{"error answer", "status=500", true},
		{"type not listed", "type=image/png", false},
		{"type listed only as a prefix", "type=application/json-seq", false},
		{"no type", "notype=1", false},
		{"already encoded", "ce=br", false},
		{"no-transform", "cc=public,+no-transform", false},
		{"no-transform in another case", "cc=No-Transform", false},
		{"206", "status=206&range=1", false},
		{"Content-Range on a 200", "range=1", false},
		{"204", "status=204", false},
		{"304", "status=304", false},
		{"shorter than min_bytes", "len=1023", false},
		{"exactly min_bytes", "len=1024", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := do(t, "GET", base+"/x?"+tc.query, "Accept-Encoding", "gzip")
			ce := resp.Header.Get("Content-Encoding")
			if tc.compressed {
				if ce != "gzip" {
					t.Fatalf("Content-Encoding %q, want gzip", ce)
				}
				got = decode(t, "gzip", got)
			} else if ce == "gzip" {
				t.Fatalf("compressed: Content-Encoding %q", ce)
			} else if resp.Header.Get("Vary") != "" {
				t.Errorf("Vary %q on an answer left alone", resp.Header.Get("Vary"))
			}
			if resp.StatusCode == 204 || resp.StatusCode == 304 {
				if len(got) != 0 {
					t.Fatalf("%d with a body", resp.StatusCode)
				}
				return
			}
			if want := body; !bytes.HasPrefix(want, got) || len(got) < 1023 {
				t.Fatalf("body of %d bytes is not the upstream's", len(got))
			}
		})
	}
}

// A streamed answer of unknown length is compressed whatever its size:
// min_bytes applies only when the length is known.
func TestCompressionMinBytesOnlyWhenLengthKnown(t *testing.T) {
	base := compressProxy(t, compressionOn(), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "short")
		w.(http.Flusher).Flush() // no Content-Length: chunked
	})
	resp, got := do(t, "GET", base+"/x", "Accept-Encoding", "br")
	if ce := resp.Header.Get("Content-Encoding"); ce != "br" {
		t.Fatalf("Content-Encoding %q", ce)
	}
	if dec := decode(t, "br", got); string(dec) != "short" {
		t.Fatalf("decoded %q", dec)
	}
	// Known and short: a fixed answer under min_bytes stays as it is.
	o := compressionOn()
	o.MinBytes = 5000
	base = compressProxy(t, o, func(w http.ResponseWriter, r *http.Request) {})
	resp, got = do(t, "GET", base+"/fixed", "Accept-Encoding", "br")
	if ce := resp.Header.Get("Content-Encoding"); ce != "" || len(got) != 4096 {
		t.Fatalf("Content-Encoding %q, %d bytes", ce, len(got))
	}
}

func TestCompressionHeadGetsTheHeadOfGet(t *testing.T) {
	body := jsonBody(4096)
	base := compressProxy(t, compressionOn(), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		if r.URL.Query().Get("short") != "" {
			w.Header().Set("Content-Length", "100")
			if r.Method != "HEAD" {
				w.Write(body[:100])
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method != "HEAD" {
			w.Write(body)
		}
	})
	for _, path := range []string{"/x", "/fixed"} {
		get, getBody := do(t, "GET", base+path, "Accept-Encoding", "gzip")
		head, headBody := do(t, "HEAD", base+path, "Accept-Encoding", "gzip")
		if len(headBody) != 0 {
			t.Fatalf("%s: HEAD got %d body bytes", path, len(headBody))
		}
		for _, k := range []string{"Content-Encoding", "Vary", "Content-Type", "Etag"} {
			if g, h := get.Header.Get(k), head.Header.Get(k); g != h {
				t.Errorf("%s: %s: GET %q, HEAD %q", path, k, g, h)
			}
		}
		if head.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: HEAD Content-Encoding %q", path, head.Header.Get("Content-Encoding"))
		}
		switch path {
		case "/fixed": // in memory: both carry the compressed length
			if head.ContentLength != int64(len(getBody)) || get.ContentLength != int64(len(getBody)) {
				t.Errorf("fixed: Content-Length GET %d HEAD %d, compressed %d", get.ContentLength, head.ContentLength, len(getBody))
			}
		default: // streamed: no length, whatever the upstream said
			if head.ContentLength != -1 || get.ContentLength != -1 {
				t.Errorf("streamed: Content-Length GET %d HEAD %d, want none", get.ContentLength, head.ContentLength)
			}
		}
	}
	// Under min_bytes, HEAD is left alone as GET is.
	head, _ := do(t, "HEAD", base+"/x?short=1", "Accept-Encoding", "gzip")
	if head.Header.Get("Content-Encoding") != "" || head.ContentLength != 100 {
		t.Errorf("short HEAD: Content-Encoding %q, Content-Length %d", head.Header.Get("Content-Encoding"), head.ContentLength)
	}
}

func TestCompressionVaryAndETag(t *testing.T) {
	body := jsonBody(4096)
	base := compressProxy(t, compressionOn(), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for _, v := range r.URL.Query()["vary"] {
			w.Header()["vary"] = append(w.Header()["vary"], v) // as an upstream may spell it
		}
		if e := r.URL.Query().Get("etag"); e != "" {
			w.Header()["ETag"] = []string{e}
		}
		w.Header().Set("Accept-Ranges", "bytes")
		w.Write(body)
	})
	for _, tc := range []struct {
		name     string
		vary     []string
		etag     string
		wantVary []string
		wantETag string
	}{
		{"no Vary", nil, "", []string{"Accept-Encoding"}, ""},
		{"merged", []string{"Origin"}, `"abc"`, []string{"Origin, Accept-Encoding"}, `W/"abc"`},
		{"already named", []string{"Origin, accept-encoding"}, `W/"weak"`, []string{"Origin, accept-encoding"}, `W/"weak"`},
		{"star", []string{"*"}, "", []string{"*"}, ""},
		{"several fields", []string{"Origin", "Cookie"}, "", []string{"Origin", "Cookie", "Accept-Encoding"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := "?"
			for _, v := range tc.vary {
				q += "vary=" + urlEscape(v) + "&"
			}
			if tc.etag != "" {
				q += "etag=" + urlEscape(tc.etag)
			}
			resp, _ := do(t, "GET", base+"/x"+q, "Accept-Encoding", "gzip")
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("not compressed")
			}
			if got := resp.Header.Values("Vary"); strings.Join(got, "|") != strings.Join(tc.wantVary, "|") {
				t.Errorf("Vary %q, want %q", got, tc.wantVary)
			}
			if got := resp.Header.Get("Etag"); got != tc.wantETag {
				t.Errorf("ETag %q, want %q", got, tc.wantETag)
			}
			if got := resp.Header.Get("Accept-Ranges"); got != "bytes" {
				t.Errorf("Accept-Ranges %q: the upstream's field is kept", got)
			}
		})
	}
	// Uncompressed, the ETag stays strong.
	resp, _ := do(t, "GET", base+"/x?etag=%22abc%22")
	if got := resp.Header.Get("Etag"); got != `"abc"` {
		t.Errorf("identity answer's ETag %q", got)
	}
}

func urlEscape(s string) string {
	r := strings.NewReplacer(`"`, "%22", " ", "%20", ",", "%2C", "*", "%2A", "/", "%2F")
	return r.Replace(s)
}

func TestCompressionOff(t *testing.T) {
	body := jsonBody(4096)
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
	t.Run("route compress = false", func(t *testing.T) {
		base := compressProxy(t, compressionOn(), h)
		resp, got := do(t, "GET", base+"/off", "Accept-Encoding", "gzip, br, zstd")
		if ce := resp.Header.Get("Content-Encoding"); ce != "" || !bytes.Equal(got, body) || resp.Header.Get("Vary") != "" {
			t.Fatalf("Content-Encoding %q Vary %q, %d bytes", ce, resp.Header.Get("Vary"), len(got))
		}
	})
	t.Run("[compression] enabled = false", func(t *testing.T) {
		o := compressionOn()
		o.Enabled = false
		base := compressProxy(t, o, h)
		for _, p := range []string{"/x", "/fixed"} {
			resp, _ := do(t, "GET", base+p, "Accept-Encoding", "gzip, br, zstd")
			if ce := resp.Header.Get("Content-Encoding"); ce != "" {
				t.Fatalf("%s: Content-Encoding %q", p, ce)
			}
		}
	})
}

// An SSE stream is compressed and every event reaches the client on its
// own: the upstream writes the next event only after the client decoded
// the previous one, so a proxy that buffered would hang here.
func TestCompressionFlushesEventByEvent(t *testing.T) {
	const events = 5
	for _, enc := range []string{"gzip", "br", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			received := make(chan struct{})
			base := compressProxy(t, compressionOn(), func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Cache-Control", "no-cache")
				for i := 0; i < events; i++ {
					fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
					w.(http.Flusher).Flush()
					select {
					case <-received:
					case <-r.Context().Done():
						return
					case <-time.After(10 * time.Second):
						return // the client never got it: the test fails below
					}
				}
			})
			req, _ := http.NewRequest("GET", base+"/events", nil)
			req.Header.Set("Accept-Encoding", enc)
			resp, err := plainClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ce := resp.Header.Get("Content-Encoding"); ce != enc {
				t.Fatalf("Content-Encoding %q", ce)
			}
			var r io.Reader
			switch enc {
			case "gzip":
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				r = zr
			case "br":
				r = brotli.NewReader(resp.Body)
			case "zstd":
				zr, err := zstd.NewReader(resp.Body, zstd.WithDecoderConcurrency(1))
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				r = zr
			}
			br := bufio.NewReader(r)
			for i := 0; i < events; i++ {
				var ev strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("event %d: %v after %q", i, err, ev.String())
					}
					ev.WriteString(line)
					if line == "\n" {
						break
					}
				}
				if want := fmt.Sprintf("id: %d\ndata: event %d\n\n", i, i); ev.String() != want {
					t.Fatalf("event %d: %q", i, ev.String())
				}
				received <- struct{}{}
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Fatalf("after the events: %q, %v", rest, err)
			}
		})
	}
}

// A client that goes away in the middle of a compressed stream: the
// exchange is still finished once and the upstream connection released,
// so the proxy keeps serving.
func TestCompressionClientGoneMidStream(t *testing.T) {
	body := jsonBody(4096)
	stop := make(chan struct{})
	base := compressProxy(t, compressionOn(), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/endless" {
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-stop:
					return
				default:
				}
			}
		}
		w.Write(body)
	})
	defer close(stop)
	addr := strings.TrimPrefix(base, "http://")
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /endless HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n")
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for i := 0; i < 5; i++ {
		resp, got := do(t, "GET", base+"/x", "Accept-Encoding", "gzip")
		if resp.StatusCode != 200 || !bytes.Equal(decode(t, resp.Header.Get("Content-Encoding"), got), body) {
			t.Fatalf("after aborted streams: %d", resp.StatusCode)
		}
	}
}

// A route handler's answer (the coupon answers) is compressed like a fixed
// one; a stream of the handler's own is left as it is, and still closed.
func TestCompressionOfHandlerAnswers(t *testing.T) {
	body := jsonBody(4096)
	closed := make(chan struct{}, 1)
	o := testOptions()
	o.Compression = compressionOn()
	o.Routes = []RouteOptions{{PathPrefix: "/", Compress: true, Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		if string(ctx.Path()) == "/stream" {
			ctx.SetBodyStream(&closeNotifier{Reader: bytes.NewReader(body), closed: closed}, -1)
			return
		}
		ctx.SetBody(body)
	}}}
	addr, _ := startProxy(t, o)
	resp, got := do(t, "GET", "http://"+addr+"/a", "Accept-Encoding", "zstd")
	if ce := resp.Header.Get("Content-Encoding"); ce != "zstd" || !bytes.Equal(decode(t, ce, got), body) {
		t.Fatalf("handler answer: Content-Encoding %q", ce)
	}
	resp, got = do(t, "GET", "http://"+addr+"/stream", "Accept-Encoding", "zstd")
	if ce := resp.Header.Get("Content-Encoding"); ce != "" || !bytes.Equal(got, body) {
		t.Fatalf("handler stream: Content-Encoding %q, %d bytes", ce, len(got))
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's stream was never closed")
	}
}

type closeNotifier struct {
	io.Reader
	closed chan struct{}
}

func (c *closeNotifier) Close() error {
	c.closed <- struct{}{}
	return nil
}

// A compressed stream finishes its exchange exactly once: one access-log
// line per request, counting the compressed bytes the client was sent.
func TestCompressionStreamsFinishTheExchangeOnce(t *testing.T) {
	body := jsonBody(8192)
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	path := filepath.Join(t.TempDir(), "access.log")
	al, err := NewAccessLog(AccessLogOptions{Path: path, BufferSize: 64 << 10, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	o := testOptions()
	o.AccessLog = al
	o.Compression = compressionOn()
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", Compress: true}}
	addr, _ := startProxy(t, o)
	const n = 20
	sizes := map[float64]bool{}
	for i := 0; i < n; i++ {
		resp, got := do(t, "GET", "http://"+addr+"/x", "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatal("not compressed")
		}
		sizes[float64(len(got))] = true
	}
	lines := readLogLines(t, al, path)
	if len(lines) != n {
		t.Fatalf("%d access-log lines for %d requests", len(lines), n)
	}
	for _, l := range lines {
		if !sizes[l["bytes_out"].(float64)] {
			t.Fatalf("bytes_out %v, the client got %v", l["bytes_out"], sizes)
		}
	}
}
