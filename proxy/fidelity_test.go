package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// headRecorder is an upstream on a raw socket that hands each request
// head it reads, byte for byte, to heads, reads the body Content-Length
// announces, and answers 200.
func headRecorder(t *testing.T) (addr string, heads chan string) {
	heads = make(chan string, 16)
	addr = rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			var head bytes.Buffer
			cl := 0
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
					cl, _ = strconv.Atoi(strings.TrimSpace(v))
				}
				if line == "\r\n" {
					break
				}
			}
			if _, err := io.CopyN(io.Discard, br, int64(cl)); err != nil {
				return
			}
			heads <- head.String()
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	return addr, heads
}

func nextHead(t *testing.T, heads chan string) string {
	t.Helper()
	select {
	case h := <-heads:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("upstream received no request")
		return ""
	}
}

// sentHead is what the upstream must receive for a request head: the
// client's lines, then the fields the proxy adds.
func fieldsBeforeForwarded(head string) string {
	i := strings.Index(head, "X-Forwarded-For: ")
	if i < 0 {
		return head
	}
	return head[:i]
}

// TestRequestReachesUpstreamByteForByte: SPEC §8 byte fidelity, checked on
// the wire: target, field order, name case and repetitions as received.
func TestRequestReachesUpstreamByteForByte(t *testing.T) {
	up, heads := headRecorder(t)
	addr, _ := oneRoute(t, testUpstreamOptions(up))
	tests := []struct{ name, req, want string }{
		{"empty query", "GET /a? HTTP/1.1\r\nHost: h\r\n\r\n",
			"GET /a? HTTP/1.1\r\nHost: h\r\n"},
		{"empty query after a path with odd bytes", "GET /x/%2F/..//y?#frag HTTP/1.1\r\nHost: h\r\n\r\n",
			"GET /x/%2F/..//y?#frag HTTP/1.1\r\nHost: h\r\n"},
		{"query kept", "GET /a?b=1&&c=%zz HTTP/1.1\r\nHost: h\r\n\r\n",
			"GET /a?b=1&&c=%zz HTTP/1.1\r\nHost: h\r\n"},
		{"odd-case names, Host not first", "GET / HTTP/1.1\r\nx-one: 1\r\nhOsT: h\r\nX-TWO: 2\r\n\r\n",
			"GET / HTTP/1.1\r\nx-one: 1\r\nhOsT: h\r\nX-TWO: 2\r\n"},
		{"special fields in the middle", "GET /q HTTP/1.1\r\nX-A: a\r\nuser-AGENT: ua/1\r\nX-B: b\r\nHost: h\r\ncontent-TYPE: text/plain\r\nCookie: a=1\r\nX-C: c\r\n\r\n",
			"GET /q HTTP/1.1\r\nX-A: a\r\nuser-AGENT: ua/1\r\nX-B: b\r\nHost: h\r\ncontent-TYPE: text/plain\r\nCookie: a=1\r\nX-C: c\r\n"},
		{"two Cookie fields apart", "GET / HTTP/1.1\r\nCookie: a=1; b=2\r\nHost: h\r\ncookie: c=3\r\nX-Z: z\r\n\r\n",
			"GET / HTTP/1.1\r\nCookie: a=1; b=2\r\nHost: h\r\ncookie: c=3\r\nX-Z: z\r\n"},
		{"repeated custom fields", "GET / HTTP/1.1\r\nHost: h\r\nX-Rep: 1\r\nx-other: o\r\nX-Rep: 2\r\nx-rep: 3\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: h\r\nX-Rep: 1\r\nx-other: o\r\nX-Rep: 2\r\nx-rep: 3\r\n"},
		{"body with Content-Length in place", "POST /p HTTP/1.1\r\nX-A: 1\r\nContent-Type: application/json\r\ncontent-length: 2\r\nHost: h\r\nUser-Agent: u\r\n\r\n{}",
			"POST /p HTTP/1.1\r\nX-A: 1\r\nContent-Type: application/json\r\ncontent-length: 2\r\nHost: h\r\nUser-Agent: u\r\n"},
	}
	for _, tt := range tests {
		resp, _ := rawResponse(t, addr, tt.req, "GET")
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", tt.name, resp.StatusCode)
			continue
		}
		if got := fieldsBeforeForwarded(nextHead(t, heads)); got != tt.want {
			t.Errorf("%s: upstream received\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
}

// TestHostRulesKeepTheFieldInPlace: whatever names the upstream Host, the
// field stays where the client put it, its name as sent.
func TestHostRulesKeepTheFieldInPlace(t *testing.T) {
	up, heads := headRecorder(t)
	for _, tt := range []struct {
		host string
		req  string
		want string
	}{
		{"app.internal", "GET / HTTP/1.1\r\nX-A: 1\r\nhost: edge.example\r\nX-B: 2\r\n\r\n", "X-A: 1\r\nhost: app.internal\r\nX-B: 2\r\n"},
		{HostUpstream, "GET / HTTP/1.1\r\nX-A: 1\r\nHOST: edge.example\r\nX-B: 2\r\n\r\n", "X-A: 1\r\nHOST: " + up + "\r\nX-B: 2\r\n"},
		{HostPreserve, "GET / HTTP/1.0\r\nX-A: 1\r\n\r\n", "X-A: 1\r\nHost: " + up + "\r\n"},
	} {
		uo := testUpstreamOptions(up)
		uo.Host = tt.host
		addr, _ := oneRoute(t, uo)
		if resp, _ := rawResponse(t, addr, tt.req, "GET"); resp.StatusCode != 200 {
			t.Fatalf("host %q: status %d", tt.host, resp.StatusCode)
		}
		head := fieldsBeforeForwarded(nextHead(t, heads))
		if _, fields, _ := strings.Cut(head, "\r\n"); fields != tt.want {
			t.Errorf("host %q: fields\n%q\nwant\n%q", tt.host, fields, tt.want)
		}
	}
}

// TestBareLFInTheHeadIsRefusedAtOnce: a head with any line ending in a bare
// LF gets 400 without waiting for the read timeout (SPEC §8), on a new
// connection and on a kept-alive one; CRLF requests, and bare LFs in a
// body, pass.
func TestBareLFInTheHeadIsRefusedAtOnce(t *testing.T) {
	up, heads := headRecorder(t)
	o := testOptions()
	o.ReadTimeout = 10 * time.Second // a wait for it would show
	o.Upstreams["up"] = testUpstreamOptions(up)
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)
	bad := []string{
		"GET / HTTP/1.1\nHost: h\r\n\r\n",           // request line
		"GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", // a field line
		"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\n\r\n", // the last field line
		"GET / HTTP/1.1\r\nHost: h\r\n\n",           // the empty line
		"GET / HTTP/1.1\nHost: h\n\n",               // every line
		"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",       // an empty line before the request line
	}
	ok := "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n"
	for _, req := range bad {
		for _, keptAlive := range []bool{false, true} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			if keptAlive {
				if _, err := io.WriteString(c, ok); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("first request: %v %v", resp, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				nextHead(t, heads)
			}
			start := time.Now()
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			took := time.Since(start)
			c.Close()
			if err != nil || resp.StatusCode != 400 {
				t.Errorf("%q (kept alive %v): %v %v, want 400", req, keptAlive, resp, err)
				continue
			}
			if took > 2*time.Second {
				t.Errorf("%q: 400 after %v, not at once", req, took)
			}
		}
	}
	select {
	case h := <-heads:
		t.Fatalf("upstream received %q", h)
	default:
	}

	// CRLF heads pass, also with bare LFs in their bodies, on one
	// connection, and an empty CRLF line before a request line is skipped.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i, req := range []string{
		"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\na\n\nb",
		"\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\n\n\n\r\n0\r\n\r\n",
		ok,
	} {
		// The head and the body in separate writes, as a slow client sends them.
		head, body, _ := strings.Cut(req, "\r\n\r\n")
		if _, err := io.WriteString(c, head+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			time.Sleep(10 * time.Millisecond) // lets the head arrive in a read of its own
			if _, err := io.WriteString(c, body); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		nextHead(t, heads)
	}
}

// TestHeadGuardScansEverySplit feeds heads to the guard cut at every
// point, as reads may deliver them.
func TestHeadGuardScansEverySplit(t *testing.T) {
	for _, tt := range []struct {
		head string
		bad  int // bytes handed on before the bare LF; -1: none
	}{
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\nbody\n\n", -1},
		{"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n\n", -1},
		{"GET / HTTP/1.1\nHost: h\r\n\r\n", 14},
		{"GET / HTTP/1.1\r\nHost: h\r\n\n", 25},
		{"GET / HTTP/1.1\r\nHost: h\r\r\n\n", 26},
		{"\n", 0},
		{"\r\n\n", 2},
	} {
		for cut := 0; cut <= len(tt.head); cut++ {
			g := newHeadGuard()
			passed, bad := 0, false
			for _, part := range []string{tt.head[:cut], tt.head[cut:]} {
				if part == "" || bad {
					continue
				}
				n, b := g.scan([]byte(part))
				passed += n
				bad = b
			}
			if tt.bad < 0 && bad || tt.bad >= 0 && (!bad || passed != tt.bad) {
				t.Errorf("%q cut at %d: bad %v after %d bytes, want %d", tt.head, cut, bad, passed, tt.bad)
			}
		}
	}
}

// TestBareLFRefusedOverTLS: under TLS the guard reads plain text above
// the TLS layer; X-Forwarded-Proto still says https.
func TestBareLFRefusedOverTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	up, heads := headRecorder(t)
	o := testOptions()
	o.ReadTimeout = 10 * time.Second
	o.TLSCertFile, o.TLSKeyFile = certFile, keyFile
	o.Upstreams["up"] = testUpstreamOptions(up)
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)
	for _, tt := range []struct {
		req    string
		status int
	}{
		{"GET /ok? HTTP/1.1\r\nhost: h\r\n\r\n", 200},
		{"GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
	} {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if _, err := io.WriteString(c, tt.req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil || resp.StatusCode != tt.status || time.Since(start) > 2*time.Second {
			t.Fatalf("%q: %v %v after %v, want %d at once", tt.req, resp, err, time.Since(start), tt.status)
		}
		if tt.status == 200 {
			head := nextHead(t, heads)
			if !strings.HasPrefix(head, "GET /ok? HTTP/1.1\r\nhost: h\r\n") || !strings.Contains(head, "X-Forwarded-Proto: https\r\n") {
				t.Errorf("upstream received %q", head)
			}
		}
	}
}

// FuzzHeadGuard checks the guard against a plain reading of the rule: in
// the head (up to the first empty CRLF line after a non-empty one), every
// LF follows a CR. The input arrives in two reads cut anywhere.
func FuzzHeadGuard(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\nbody\n"), 3)
	f.Add([]byte("\r\nGET / HTTP/1.1\nHost: h\r\n\r\n"), 17)
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\r\n\n"), 26)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if cut < 0 || cut > len(data) {
			return
		}
		want := -1 // offset of the first bare LF in the head, -1 none
		seen := false
		lineStart := 0
		for i, c := range data {
			if c != '\n' {
				continue
			}
			if i == lineStart || data[i-1] != '\r' {
				want = i
				break
			}
			empty := i == lineStart+1
			lineStart = i + 1
			if empty && seen {
				break
			}
			if !empty {
				seen = true
			}
		}
		g := newHeadGuard()
		passed, bad := 0, false
		for _, part := range [][]byte{data[:cut], data[cut:]} {
			if len(part) == 0 || bad || !g.inHead {
				continue
			}
			n, b := g.scan(append([]byte(nil), part...))
			passed += n
			bad = b
		}
		if (want >= 0) != bad || bad && passed != want {
			t.Fatalf("%q cut at %d: guard bad=%v at %d, reference %d", data, cut, bad, passed, want)
		}
	})
}

// BenchmarkHeadGuard is what the guard adds to reading a typical head.
func BenchmarkHeadGuard(b *testing.B) {
	head := []byte("GET /news/item?id=1 HTTP/1.1\r\nHost: edge.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Cookie: session=0123456789abcdef\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		g := newHeadGuard()
		if _, bad := g.scan(head); bad || g.inHead {
			b.Fatal("head not read")
		}
	}
}
