package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// routerFor compiles routes (file order) into a router the way build does.
func routerFor(t testing.TB, ros ...RouteOptions) *router {
	t.Helper()
	s := &Server{}
	st := &state{upstreams: map[string]*upstream{"up": {name: "up"}}}
	var routes []*route
	for _, ro := range ros {
		if ro.Upstream == "" && ro.Return == 0 {
			ro.Return = 200
		}
		r, err := s.compileRoute(ro, st)
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, r)
	}
	return newRouter(routes)
}

// requestFor is an exchange for a request with these host, target and
// header lines, from client.
func requestFor(host, target, client string, headers ...string) (*exchange, *fasthttp.RequestCtx) {
	var req fasthttp.Request
	req.Header.DisableNormalizing()
	req.SetRequestURI(target)
	req.Header.SetHost(host)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(client), Port: 1}, nil)
	ex := &exchange{st: &state{}}
	ex.begin(ctx, ctx.Time())
	return ex, ctx
}

func selectRoute(rt *router, ex *exchange, ctx *fasthttp.RequestCtx) (string, error) {
	raw, _ := splitTarget(ctx.Request.Header.RequestURI())
	var err error
	ex.matchPath, ex.normPath, err = matchPath(ex.normPath, raw)
	if err != nil {
		return "", err
	}
	r := rt.match(ctx.Request.Header.Host(), ex.matchPath, ex)
	if r == nil {
		return "(none)", nil
	}
	return r.name, nil
}

func TestRouterFollowsNginxOrder(t *testing.T) {
	rt := routerFor(t,
		RouteOptions{Name: "root", PathPrefix: "/"},
		RouteOptions{Name: "exact", PathExact: "/app/login"},
		RouteOptions{Name: "app", PathPrefix: "/app/"},
		RouteOptions{Name: "static-stops", PathPrefix: "/app/static/", RegexStops: true},
		RouteOptions{Name: "images", PathRegex: `\.(png|jpg)$`, CaseInsensitive: true},
		RouteOptions{Name: "api-v", PathRegex: `^/api/v([0-9]+)/(.*)$`},
		RouteOptions{Name: "api-any", PathRegex: `^/api/`},
		RouteOptions{Name: "api-host", Host: "api.example.com", PathPrefix: "/app/"},
		RouteOptions{Name: "wild", Host: "*.example.com", PathPrefix: "/app/"},
		RouteOptions{Name: "beta", PathPrefix: "/app/", Match: MatchOptions{Headers: map[string]string{"X-Beta": "^on$"}}},
		RouteOptions{Name: "hidden", PathPrefix: "/hidden/", Internal: true},
		RouteOptions{Name: "admin", PathPrefix: "/admin/"},
	)
	tests := []struct {
		host, target string
		headers      []string
		want         string
	}{
		{"a", "/app/login", nil, "exact"},
		{"a", "/app/login/", nil, "app"},
		{"a", "/app/x.png", nil, "images"},              // a regex beats the longest prefix
		{"a", "/app/static/x.PNG", nil, "static-stops"}, // ^~ stops regexes
		{"a", "/other/x.JPG", nil, "images"},            // case-insensitive
		{"a", "/api/v2/users", nil, "api-v"},            // the first regex in file order
		{"a", "/api/users", nil, "api-any"},             //
		{"api.example.com:8080", "/app/x", nil, "api-host"},
		{"API.Example.Com", "/app/x", nil, "api-host"},
		{"www.example.com", "/app/x", nil, "wild"},
		{"example.com", "/app/x", nil, "app"},            // *.example.com is not example.com
		{"a", "/app/x", []string{"X-Beta", "on"}, "app"}, // app comes first in file order and has no conditions
		{"a", "/hidden/x", nil, "hidden"},                // matched; the server then answers 404 (TestTryFilesAndInternalRoutes)
		{"a", "/x/../admin/", nil, "admin"},              // matched on the cleaned path
		{"a", "/%61dmin/", nil, "admin"},                 // percent-decoded
		{"a", "//admin//x", nil, "admin"},                // slashes merged
		{"a", "/admin/./x", nil, "admin"},
		{"a", "/nothing", nil, "root"},
	}
	for _, tc := range tests {
		ex, ctx := requestFor(tc.host, tc.target, "192.0.2.1", tc.headers...)
		got, err := selectRoute(rt, ex, ctx)
		if err != nil || got != tc.want {
			t.Errorf("%s %s: %s %v, want %s", tc.host, tc.target, got, err, tc.want)
		}
	}
	for _, bad := range []string{"/../etc/passwd", "/a/%2e%2e/%2e%2e/x", "/a%00b"} {
		ex, ctx := requestFor("a", bad, "192.0.2.1")
		if _, err := selectRoute(rt, ex, ctx); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestMatchConditionsSelectAmongEqualRoutes(t *testing.T) {
	rt := routerFor(t,
		RouteOptions{Name: "beta", PathPrefix: "/app/", Match: MatchOptions{Headers: map[string]string{"X-Beta": "^on$"}}},
		RouteOptions{Name: "mobile", PathPrefix: "/app/", Match: MatchOptions{Query: map[string]string{"client": "^(ios|android)$"}}},
		RouteOptions{Name: "canary", PathPrefix: "/app/", Match: MatchOptions{Cookies: map[string]string{"canary": "1"}}},
		RouteOptions{Name: "office", PathPrefix: "/app/", Match: MatchOptions{Clients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}},
		RouteOptions{Name: "app", PathPrefix: "/app/"},
		RouteOptions{Name: "root", PathPrefix: "/", Match: MatchOptions{Headers: map[string]string{"X-Never": "^x$"}}},
	)
	tests := []struct {
		target, client string
		headers        []string
		want           string
	}{
		{"/app/", "192.0.2.1", []string{"x-beta", "on"}, "beta"},
		{"/app/?client=ios", "192.0.2.1", nil, "mobile"},
		{"/app/?client=web", "192.0.2.1", nil, "app"},
		{"/app/", "192.0.2.1", []string{"Cookie", "a=b; canary=1"}, "canary"},
		{"/app/", "10.1.2.3", nil, "office"},
		{"/app/", "192.0.2.1", nil, "app"},
		{"/other", "192.0.2.1", nil, "(none)"}, // the only route for / does not hold
	}
	for _, tc := range tests {
		ex, ctx := requestFor("a", tc.target, tc.client, tc.headers...)
		if got, _ := selectRoute(rt, ex, ctx); got != tc.want {
			t.Errorf("%s from %s %v: %s, want %s", tc.target, tc.client, tc.headers, got, tc.want)
		}
	}
}

func TestRewriteSendsCapturesUpstream(t *testing.T) {
	rec := &recorder{}
	up := upstreamServer(t, rec.handler(nil))
	addr := routeProxy(t, addrOf(up),
		RouteOptions{PathRegex: `^/api/v([0-9]+)/(.*)$`, Upstream: "up", Rewrite: "/v$1/$2",
			RequestHeaders: HeaderOps{Set: map[string]string{"X-Version": "$1"}}},
		RouteOptions{PathPrefix: "/old/", Upstream: "up", Rewrite: "/new/"},
		RouteOptions{PathPrefix: "/strip/", Upstream: "up", StripPrefix: true},
	)
	tests := []struct{ target, uri, version string }{
		{"/api/v2/users/7?x=1&y", "/v2/users/7?x=1&y", "2"},
		{"/old/anything?q", "/new/?q", ""},
		{"/strip//a%20b/../c", "/c", ""}, // cut from the cleaned path, as nginx does
		{"/strip/a%20b", "/a%20b", ""},   // a clean path passes byte for byte
	}
	for _, tc := range tests {
		resp, _ := get(t, "http://"+addr+tc.target)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", tc.target, resp.StatusCode)
		}
		r := rec.last(t)
		if r.uri != tc.uri || r.header.Get("X-Version") != tc.version {
			t.Errorf("%s: upstream got %q X-Version %q, want %q %q", tc.target, r.uri, r.header.Get("X-Version"), tc.uri, tc.version)
		}
	}
}

// BenchmarkRouteSelection picks among 1,000 prefix routes and 50 regex
// routes, as the issue asks: the lookup allocates nothing.
func BenchmarkRouteSelection(b *testing.B) {
	var ros []RouteOptions
	for i := 0; i < 1000; i++ {
		ros = append(ros, RouteOptions{Name: fmt.Sprint("p", i), PathPrefix: fmt.Sprintf("/svc%d/v%d/", i%100, i/100)})
	}
	for i := 0; i < 50; i++ {
		ros = append(ros, RouteOptions{Name: fmt.Sprint("r", i), PathRegex: fmt.Sprintf(`^/re%d/([a-z]+)\.json$`, i)})
	}
	rt := routerFor(b, ros...)
	for _, target := range []string{"/svc42/v7/items/123", "/re49/abc.json", "/none/at/all"} {
		b.Run(strings.Trim(strings.SplitN(target, "/", 3)[1], "/"), func(b *testing.B) {
			ex, ctx := requestFor("a", target, "192.0.2.1")
			raw, _ := splitTarget(ctx.Request.Header.RequestURI())
			rt.match(ctx.Request.Header.Host(), raw, ex)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ex.captures = ex.captures[:0]
				rt.match(ctx.Request.Header.Host(), raw, ex)
			}
		})
	}
}

// referenceMatch is nginx's order written the slow, obvious way, for
// FuzzRouter to check the router against.
func referenceMatch(ros []RouteOptions, host, path string) string {
	host = strings.ToLower(string(stripPort([]byte(host))))
	hostOK := func(h string) bool {
		h = strings.ToLower(h)
		switch {
		case h == "":
			return true
		case strings.HasPrefix(h, "*."):
			return strings.HasSuffix(host, h[1:]) && len(host) > len(h)-1
		}
		return h == host
	}
	rank := func(h string) int {
		switch {
		case h == "":
			return 0
		case strings.HasPrefix(h, "*."):
			return 1
		}
		return 2
	}
	best := func(ok func(RouteOptions) bool) (RouteOptions, bool) {
		var found RouteOptions
		have := false
		for _, ro := range ros {
			if !ok(ro) || !hostOK(ro.Host) {
				continue
			}
			if !have || rank(ro.Host) > rank(found.Host) ||
				(rank(ro.Host) == 1 && rank(found.Host) == 1 && len(ro.Host) > len(found.Host)) {
				found, have = ro, true
			}
		}
		return found, have
	}
	if r, ok := best(func(ro RouteOptions) bool { return ro.PathExact != "" && ro.PathExact == path }); ok {
		return r.Name
	}
	longest, haveLongest := RouteOptions{}, false
	for n := len(path); n >= 1 && !haveLongest; n-- {
		longest, haveLongest = best(func(ro RouteOptions) bool { return ro.PathPrefix != "" && ro.PathPrefix == path[:n] })
	}
	if haveLongest && longest.RegexStops {
		return longest.Name
	}
	for _, ro := range ros {
		if ro.PathRegex != "" && hostOK(ro.Host) && regexp.MustCompile(ro.PathRegex).MatchString(path) {
			return ro.Name
		}
	}
	if haveLongest {
		return longest.Name
	}
	return "(none)"
}

func FuzzRouter(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "/ab/c", "x.example.com")
	f.Add([]byte{3, 3, 3, 200, 17, 5}, "/a", "example.com")
	f.Add([]byte{9, 8, 7, 6, 5, 4, 3, 2, 1}, "/abc/", "")
	segments := []string{"/", "/a", "/ab", "/ab/", "/ab/c", "/b", "/abc/"}
	hosts := []string{"", "example.com", "*.example.com", "x.example.com", "*.x.example.com"}
	regexes := []string{`^/a`, `c$`, `^/ab/`, `b`, `^/$`}
	f.Fuzz(func(t *testing.T, table []byte, path, host string) {
		if len(table) > 60 || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "%?#") || needsCleaning([]byte(path)) {
			return
		}
		var ros []RouteOptions
		for i := 0; i+2 < len(table); i += 3 {
			ro := RouteOptions{Name: fmt.Sprint("r", i/3), Host: hosts[int(table[i+1])%len(hosts)]}
			switch table[i] % 4 {
			case 0:
				ro.PathPrefix = segments[int(table[i+2])%len(segments)]
			case 1:
				ro.PathPrefix = segments[int(table[i+2])%len(segments)]
				ro.RegexStops = true
			case 2:
				ro.PathExact = segments[int(table[i+2])%len(segments)]
			case 3:
				ro.PathRegex = regexes[int(table[i+2])%len(regexes)]
			}
			ros = append(ros, ro)
		}
		rt := routerFor(t, ros...)
		ex, ctx := requestFor(host, path, "192.0.2.1")
		got, err := selectRoute(rt, ex, ctx)
		if err != nil {
			return
		}
		if want := referenceMatch(ros, string(ctx.Request.Header.Host()), path); got != want {
			t.Fatalf("routes %+v\nhost %q path %q: router chose %s, nginx's order %s", ros, host, path, got, want)
		}
	})
}
