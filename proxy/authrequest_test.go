package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// authService answers by the request's X-Mode: allow (200 with X-User),
// deny (401 with WWW-Authenticate), forbid (403), slow (past the
// timeout), broken (500). It records what it was asked.
type authService struct {
	calls atomic.Int64
	rec   recorder
}

func startAuthService(t *testing.T) (*authService, string) {
	a := &authService{}
	srv := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		a.rec.mu.Lock()
		a.rec.reqs = append(a.rec.reqs, recorded{r.Method, r.RequestURI, r.Host, r.Proto, r.Header.Clone(), string(body)})
		a.rec.mu.Unlock()
		switch r.Header.Get("X-Mode") {
		case "allow":
			w.Header().Set("X-User", "alice")
			w.Header().Set("X-Not-Copied", "x")
		case "allow-anonymous":
		case "deny":
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			w.WriteHeader(401)
		case "forbid":
			w.WriteHeader(403)
		case "slow":
			time.Sleep(time.Second)
		default:
			w.WriteHeader(500)
		}
	})
	return a, addrOf(srv)
}

func authRequestProxy(t *testing.T, authAddr string, app *recorder, cacheKey string) string {
	t.Helper()
	appSrv := upstreamServer(t, app.handler(nil))
	o := testOptions()
	o.Upstreams["app"] = testUpstreamOptions(addrOf(appSrv))
	auth := testUpstreamOptions(authAddr)
	auth.Retries = 0
	o.Upstreams["auth"] = auth
	ar := &AuthRequestOptions{Upstream: "auth", Path: "/verify", CopyHeaders: []string{"X-User"}, Timeout: 200 * time.Millisecond}
	if cacheKey != "" {
		ar.CacheKey, ar.CacheTTL, ar.CacheMaxEntries = cacheKey, time.Minute, 100
	}
	o.Routes = []RouteOptions{{Name: "api", PathPrefix: "/", Upstream: "app", AuthRequest: ar}}
	addr, _ := startProxy(t, o)
	return addr
}

func TestAuthRequestOutcomes(t *testing.T) {
	auth, authAddr := startAuthService(t)
	var app recorder
	addr := authRequestProxy(t, authAddr, &app, "")

	// Allowed: the app gets the request with X-User from the auth answer
	// (the client's own X-User is replaced), not the auth's other fields.
	resp, body := get(t, "http://"+addr+"/orders?id=7", "X-Mode", "allow", "X-User", "mallory")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("allow: %d %q", resp.StatusCode, body)
	}
	seen := app.last(t)
	if got := seen.header.Values("X-User"); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("app saw X-User %q, want [alice]", got)
	}
	if seen.header.Get("X-Not-Copied") != "" {
		t.Fatal("a field not in copy_headers reached the app")
	}
	sub := auth.rec.last(t)
	if sub.method != "GET" || sub.uri != "/verify" || sub.header.Get("X-Original-URI") != "/orders?id=7" ||
		sub.header.Get("X-Mode") != "allow" || sub.header.Get("X-Original-Method") != "GET" {
		t.Fatalf("sub-request: %s %s %v", sub.method, sub.uri, sub.header)
	}

	// Allowed without X-User: a client-supplied X-User does not pass.
	get(t, "http://"+addr+"/", "X-Mode", "allow-anonymous", "X-User", "mallory")
	if got := app.last(t).header.Get("X-User"); got != "" {
		t.Fatalf("client's X-User reached the app: %q", got)
	}

	// A POST's sub-request has the method but no body.
	req, _ := http.NewRequest("POST", "http://"+addr+"/orders", strings.NewReader("secret body"))
	req.Header.Set("X-Mode", "allow")
	r, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if sub := auth.rec.last(t); sub.method != "POST" || sub.body != "" {
		t.Fatalf("POST sub-request: %s body %q", sub.method, sub.body)
	}
	if app.last(t).body != "secret body" {
		t.Fatal("the app did not get the body")
	}

	for _, c := range []struct {
		mode   string
		status int
		www    string
	}{
		{"deny", 401, `Bearer realm="api"`},
		{"forbid", 403, ""},
		{"slow", 500, ""},   // past auth_request's timeout
		{"broken", 500, ""}, // the auth service's 500
	} {
		before := app.count()
		start := time.Now()
		resp, _ := get(t, "http://"+addr+"/", "X-Mode", c.mode)
		if resp.StatusCode != c.status || resp.Header.Get("WWW-Authenticate") != c.www {
			t.Errorf("%s: %d WWW-Authenticate %q, want %d %q", c.mode, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), c.status, c.www)
		}
		if app.count() != before {
			t.Errorf("%s: the request reached the app", c.mode)
		}
		if c.mode == "slow" && time.Since(start) > 800*time.Millisecond {
			t.Errorf("slow auth: answered after %v; timeout is 200ms", time.Since(start))
		}
	}
}

func TestAuthRequestUnreachableIs500(t *testing.T) {
	var app recorder
	addr := authRequestProxy(t, closedPort(t), &app, "")
	if resp, _ := get(t, "http://"+addr+"/", "X-Mode", "allow"); resp.StatusCode != 500 {
		t.Fatalf("auth service down: %d, want 500", resp.StatusCode)
	}
	if app.count() != 0 {
		t.Fatal("the request reached the app")
	}
}

func TestAuthCacheKeepsAllowAndDenyPerKey(t *testing.T) {
	auth, authAddr := startAuthService(t)
	var app recorder
	addr := authRequestProxy(t, authAddr, &app, "$http_authorization")
	for i := 0; i < 3; i++ {
		if resp, _ := get(t, "http://"+addr+"/", "Authorization", "Bearer good", "X-Mode", "allow"); resp.StatusCode != 200 {
			t.Fatalf("allow %d: %d", i, resp.StatusCode)
		}
		if got := app.last(t).header.Get("X-User"); got != "alice" {
			t.Fatalf("cached allow %d: X-User %q", i, got)
		}
		if resp, _ := get(t, "http://"+addr+"/", "Authorization", "Bearer bad", "X-Mode", "deny"); resp.StatusCode != 401 ||
			resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("deny %d: %d", i, resp.StatusCode)
		}
	}
	if n := auth.calls.Load(); n != 2 {
		t.Fatalf("auth service asked %d times for 2 keys, want 2", n)
	}
	// Errors are not cached; no key is not cached.
	get(t, "http://"+addr+"/", "Authorization", "Bearer x", "X-Mode", "broken")
	get(t, "http://"+addr+"/", "Authorization", "Bearer x", "X-Mode", "broken")
	get(t, "http://"+addr+"/", "X-Mode", "allow")
	get(t, "http://"+addr+"/", "X-Mode", "allow")
	if n := auth.calls.Load(); n != 6 {
		t.Fatalf("auth service asked %d times, want 6", n)
	}
}

func TestAuthCacheIsBounded(t *testing.T) {
	c := newAuthCache(100, time.Minute)
	now := time.Now()
	v := &authVerdict{status: 200}
	for i := 0; i < 100000; i++ {
		c.put([]byte(strings.Repeat("k", i%7)+string(rune(i))), v, now)
	}
	if n := c.len(); n > 100 {
		t.Fatalf("%d entries, max 100", n)
	}
}

// The order access → auth → limits: a request auth_request refuses uses
// none of the rate budget.
func TestAuthRequestRunsBeforeTheRateLimit(t *testing.T) {
	_, authAddr := startAuthService(t)
	o := testOptions()
	o.Upstreams["auth"] = testUpstreamOptions(authAddr)
	o.Routes = []RouteOptions{{PathPrefix: "/", Return: 200,
		AuthRequest: &AuthRequestOptions{Upstream: "auth", Path: "/verify", Timeout: time.Second},
		RateLimit:   &RateLimitOptions{Key: "$remote_addr", Count: 1, Period: time.Hour, NoDelay: true}}}
	addr, _ := startProxy(t, o)
	for i := 0; i < 3; i++ {
		if resp, _ := get(t, "http://"+addr+"/", "X-Mode", "deny"); resp.StatusCode != 401 {
			t.Fatalf("denied request %d: %d", i, resp.StatusCode)
		}
	}
	if resp, _ := get(t, "http://"+addr+"/", "X-Mode", "allow"); resp.StatusCode != 200 {
		t.Fatalf("first allowed request: %d, want 200 (denied ones use no budget)", resp.StatusCode)
	}
	if resp, _ := get(t, "http://"+addr+"/", "X-Mode", "allow"); resp.StatusCode != 429 {
		t.Fatalf("second allowed request: %d, want 429", resp.StatusCode)
	}
}
