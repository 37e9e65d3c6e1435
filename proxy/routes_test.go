package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// routeProxy serves the given routes with one upstream "up" at upAddr.
func routeProxy(t testing.TB, upAddr string, routes ...RouteOptions) string {
	t.Helper()
	o := testOptions()
	if upAddr != "" {
		o.Upstreams["up"] = testUpstreamOptions(upAddr)
	}
	o.Routes = routes
	addr, _ := startProxy(t, o)
	return addr
}

func TestRequestHeadersReachTheUpstreamEdited(t *testing.T) {
	rec := &recorder{}
	up := upstreamServer(t, rec.handler(nil))
	addr := routeProxy(t, addrOf(up), RouteOptions{PathPrefix: "/", Upstream: "up", RequestHeaders: HeaderOps{
		Set:    map[string]string{"X-Real-IP": "$remote_addr", "Authorization": "", "X-Const": "v1", "Host": "$host.internal"},
		Add:    map[string]string{"X-Path": "$uri?$args"},
		Remove: []string{"x-drop-me"},
	}})
	_, _ = get(t, "http://"+addr+"/a/b?q=1", "Host", "Example.COM:8080", "authorization", "Bearer secret",
		"X-Drop-Me", "1", "x-const", "from-client", "X-Keep", "k")
	r := rec.last(t)
	checks := map[string]string{
		"X-Real-Ip":     "127.0.0.1",
		"Authorization": "",
		"X-Const":       "v1",
		"X-Path":        "/a/b?q=1",
		"X-Drop-Me":     "",
		"X-Keep":        "k",
	}
	for name, want := range checks {
		if got := strings.Join(r.header.Values(name), ","); got != want {
			t.Errorf("upstream %s = %q, want %q", name, got, want)
		}
	}
	if r.host != "example.com.internal" {
		t.Errorf("upstream Host = %q, want example.com.internal", r.host)
	}
}

func TestSetOverridesTheProxysOwnForwardedHeaders(t *testing.T) {
	rec := &recorder{}
	up := upstreamServer(t, rec.handler(nil))
	addr := routeProxy(t, addrOf(up), RouteOptions{PathPrefix: "/", Upstream: "up", RequestHeaders: HeaderOps{
		Set: map[string]string{"X-Forwarded-Proto": "https", "x-request-id": ""},
	}})
	_, _ = get(t, "http://"+addr+"/")
	r := rec.last(t)
	if got := r.header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want [https]", got)
	}
	if got := r.header.Values("X-Request-Id"); len(got) != 0 {
		t.Errorf("X-Request-Id = %q, want removed", got)
	}
}

func TestResponseHeadersByStatusAndAlways(t *testing.T) {
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Powered-By", "php")
		w.Header().Set("x-frame-options", "ALLOWALL")
		if strings.HasSuffix(r.URL.Path, "/missing") {
			w.WriteHeader(404)
		}
		io.WriteString(w, "body")
	})
	headers := HeaderOps{
		Set:    map[string]string{"X-Frame-Options": "DENY", "X-Upstream": "$upstream_addr $upstream_status"},
		Add:    map[string]string{"Strict-Transport-Security": "max-age=63072000"},
		Remove: []string{"X-Powered-By"},
	}
	addr := routeProxy(t, addrOf(up),
		RouteOptions{PathPrefix: "/", Upstream: "up", ResponseHeaders: headers},
		RouteOptions{PathPrefix: "/always/", Upstream: "up", ResponseHeaders: headers, ResponseHeadersAlways: true},
		RouteOptions{PathPrefix: "/denied/", Return: 403, ResponseHeaders: headers, ResponseHeadersAlways: true},
	)
	tests := []struct {
		name, path  string
		status      int
		frame, hsts string
	}{
		{"200 gets them", "/x", 200, "DENY", "max-age=63072000"},
		{"404 does not without always", "/missing", 404, "ALLOWALL", ""},
		{"always covers 404", "/always/missing", 404, "DENY", "max-age=63072000"},
		{"always covers edgeproxy's own 403", "/denied/", 403, "DENY", "max-age=63072000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := get(t, "http://"+addr+tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := strings.Join(resp.Header.Values("X-Frame-Options"), ","); got != tc.frame {
				t.Errorf("X-Frame-Options = %q, want %q", got, tc.frame)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != tc.hsts {
				t.Errorf("HSTS = %q, want %q", got, tc.hsts)
			}
			if got := resp.Header.Get("X-Powered-By"); got != "" {
				t.Errorf("X-Powered-By = %q, want hidden for every status", got)
			}
		})
	}
	resp, _ := get(t, "http://"+addr+"/x")
	if got, want := resp.Header.Get("X-Upstream"), addrOf(up)+" 200"; got != want {
		t.Errorf("X-Upstream = %q, want %q", got, want)
	}
}

func TestReturnAnswers(t *testing.T) {
	addr := routeProxy(t, "",
		RouteOptions{PathPrefix: "/", Return: 301, Location: "https://$host$request_uri"},
		RouteOptions{PathPrefix: "/healthz", Return: 200, Body: "ok\n"},
		RouteOptions{PathPrefix: "/hello", Return: 200, Body: `{"hi":"$arg_name"}`, ContentType: "application/json"},
		RouteOptions{PathPrefix: "/preflight", Return: 204},
		RouteOptions{PathPrefix: "/gone", Return: 410},
	)
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name, path, host string
		status           int
		location, body   string
		contentType      string
	}{
		{"redirect keeps the target byte for byte", "/a%20b/?x=1&y", "Example.com:8080", 301, "https://example.com/a%20b/?x=1&y", "", ""},
		{"fixed body", "/healthz", "h", 200, "", "ok\n", "text/plain; charset=utf-8"},
		{"body with a variable", "/hello?name=ann", "h", 200, "", `{"hi":"ann"}`, "application/json"},
		{"preflight", "/preflight", "h", 204, "", "", ""},
		{"bodiless error", "/gone", "h", 410, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+addr+tc.path, nil)
			req.Host = tc.host
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
				t.Fatalf("got %d Location %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
			}
			if tc.body != "" && (string(b) != tc.body || resp.Header.Get("Content-Type") != tc.contentType) {
				t.Fatalf("body %q (%s), want %q (%s)", b, resp.Header.Get("Content-Type"), tc.body, tc.contentType)
			}
			if resp.Header.Get("Server") != "edgeproxy" {
				t.Errorf("Server = %q", resp.Header.Get("Server"))
			}
		})
	}
}

func TestReturn444ClosesWithoutAnswering(t *testing.T) {
	addr := routeProxy(t, "", RouteOptions{PathPrefix: "/", Return: 444})
	for _, raw := range []string{
		"GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	} {
		if got := rawExchange(t, addr, raw); got != "" {
			t.Fatalf("444 answered %q, want the connection closed with nothing sent", got)
		}
	}
}

func TestAccessRulesJudgeTheAddressAfterTrustedProxies(t *testing.T) {
	rec := &recorder{}
	up := upstreamServer(t, rec.handler(nil))
	o := testOptions()
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", Access: []AccessRule{
		{Allow: false, Prefix: netip.MustParsePrefix("10.1.2.3/32")},
		{Allow: true, Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		{Allow: false, All: true},
	}}}
	addr, _ := startProxy(t, o)
	tests := []struct {
		xff    string
		status int
	}{
		{"10.9.9.9", 200},
		{"10.1.2.3", 403},
		{"192.0.2.1", 403},
		{"192.0.2.1, 10.9.9.9", 200}, // the nearest untrusted hop decides
		{"10.9.9.9, 127.0.0.5", 200}, // trusted hops are skipped
		{"", 403},                    // the peer itself: 127.0.0.1, not allowed
	}
	for _, tc := range tests {
		var hdr []string
		if tc.xff != "" {
			hdr = []string{"X-Forwarded-For", tc.xff}
		}
		resp, _ := get(t, "http://"+addr+"/", hdr...)
		if resp.StatusCode != tc.status {
			t.Errorf("X-Forwarded-For %q: status %d, want %d", tc.xff, resp.StatusCode, tc.status)
		}
	}
}

func TestMethodsAnswer405WithAllow(t *testing.T) {
	rec := &recorder{}
	up := upstreamServer(t, rec.handler(nil))
	addr := routeProxy(t, addrOf(up), RouteOptions{PathPrefix: "/", Upstream: "up", Methods: []string{"GET", "POST"}})
	for _, m := range []string{"GET", "HEAD", "POST"} {
		req, _ := http.NewRequest(m, "http://"+addr+"/", nil)
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d, want 200", m, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("DELETE", "http://"+addr+"/", nil)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST, HEAD" {
		t.Fatalf("DELETE: %d Allow %q, want 405 \"GET, POST, HEAD\"", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if n := rec.count(); n != 3 {
		t.Fatalf("upstream saw %d requests, want 3", n)
	}
}

func TestErrorPages(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "50x.html")
	os.WriteFile(page, []byte("<h1>sorry</h1>"), 0o644)
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fallback":
			w.WriteHeader(200)
			io.WriteString(w, "from fallback")
		default:
			w.WriteHeader(502)
			io.WriteString(w, "upstream's own 502 page")
		}
	})
	dead := closedPort(t)
	o := testOptions()
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Upstreams["dead"] = testUpstreamOptions(dead)
	o.Routes = []RouteOptions{
		{PathPrefix: "/own/", Upstream: "dead", ErrorPages: map[int]string{502: page}},
		{PathPrefix: "/relayed/", Upstream: "up", ErrorPages: map[int]string{502: page}},
		{PathPrefix: "/intercepted/", Upstream: "up", ErrorPages: map[int]string{502: page}, InterceptErrors: true},
		{PathPrefix: "/named/", Upstream: "dead", ErrorPages: map[int]string{502: "@fallback"}},
		{Name: "fallback", Return: 200, Body: "named answer"},
		{PathPrefix: "/denied/", Access: []AccessRule{{All: true}}, Upstream: "up", ErrorPages: map[int]string{403: page}},
	}
	addr, _ := startProxy(t, o)
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/own/x", 502, "<h1>sorry</h1>"},
		{"/relayed/x", 502, "upstream's own 502 page"},
		{"/intercepted/x", 502, "<h1>sorry</h1>"},
		{"/named/x", 200, "named answer"},
		{"/denied/x", 403, "<h1>sorry</h1>"},
	}
	for _, tc := range tests {
		resp, body := get(t, "http://"+addr+tc.path)
		if resp.StatusCode != tc.status || body != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
		// nginx's mime.types, as file routes use: no charset added.
		if tc.body == "<h1>sorry</h1>" && resp.Header.Get("Content-Type") != "text/html" {
			t.Errorf("%s: Content-Type %q", tc.path, resp.Header.Get("Content-Type"))
		}
	}
	// The intercepted upstream connection is not left half read: the
	// next request on the route still works.
	resp, body := get(t, "http://"+addr+"/intercepted/y")
	if resp.StatusCode != 502 || body != "<h1>sorry</h1>" {
		t.Fatalf("second intercepted request: %d %q", resp.StatusCode, body)
	}
}

func TestRouteBodyLimits(t *testing.T) {
	rec := &recorder{}
	up := upstreamServer(t, rec.handler(nil))
	o := testOptions()
	o.MaxBodyBytes = 1 << 10
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Routes = []RouteOptions{
		{PathPrefix: "/", Upstream: "up"},
		{PathPrefix: "/big/", Upstream: "up", MaxBodyBytes: 64 << 10},
		{PathPrefix: "/any/", Upstream: "up", MaxBodyBytes: Unlimited},
	}
	addr, _ := startProxy(t, o)
	post := func(path string, n int) int {
		resp, err := testClient.Post("http://"+addr+path, "application/octet-stream", strings.NewReader(strings.Repeat("x", n)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		path   string
		n      int
		status int
	}{
		{"/", 1 << 10, 200}, {"/", 1<<10 + 1, 413},
		{"/big/", 64 << 10, 200}, {"/big/", 64<<10 + 1, 413},
		{"/any/", 4 << 20, 200}, // 4,096 times the server's limit; huge bodies: TestHugeBodiesStreamWithBoundedMemory
	}
	for _, c := range cases {
		if got := post(c.path, c.n); got != c.status {
			t.Errorf("POST %s with %d bytes: %d, want %d", c.path, c.n, got, c.status)
		}
	}
}

// With buffer_request = false the upstream gets the first chunk of a body
// while the client still holds the rest (with buffering, a small chunked
// body is read whole first).
func TestStreamRequestBodyForwardsBeforeTheClientIsDone(t *testing.T) {
	firstBytes := make(chan string, 1)
	upAddr := rawUpstream(t, func(c net.Conn) {
		req, br, err := readRequestHead(c)
		if err != nil {
			return
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(req.Body, buf); err != nil {
			return
		}
		firstBytes <- string(buf)
		io.Copy(io.Discard, req.Body)
		_ = br
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	addr := routeProxy(t, upAddr, RouteOptions{PathPrefix: "/", Upstream: "up", StreamRequestBody: true})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	select {
	case got := <-firstBytes:
		if got != "hello" {
			t.Fatalf("upstream read %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("upstream saw nothing while the client held the rest of the body")
	}
	io.WriteString(c, "5\r\nworld\r\n0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("response %v %v", resp, err)
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
