package nginx

import (
	"strings"
	"testing"
)

const authServer = `server { listen 80;
  location = /auth { internal; proxy_pass http://127.0.0.1:9002/verify;
    proxy_pass_request_body off; proxy_set_header Content-Length "";
    proxy_set_header X-Original-URI $request_uri; proxy_read_timeout 2s; }
`

func TestAuthRequestWithCopiedHeader(t *testing.T) {
	c := convertSnippet(t, authServer+`  location /api { auth_request /auth; auth_request_set $user $upstream_http_x_user;
    proxy_set_header X-User $user; proxy_pass http://127.0.0.1:9001; }
  location = /ping { auth_request /auth; return 200 ok; } }`, AllCaps())
	c.noBlocking(t)
	ar, ok := c.route(t, 1)["auth_request"].(map[string]any)
	if !ok {
		t.Fatalf("no auth_request:\n%s", c.toml)
	}
	hs, _ := ar["copy_headers"].([]any)
	if ar["path"] != "/verify" || ar["timeout"] != "2s" || len(hs) != 1 || hs[0] != "X-User" {
		t.Fatalf("auth_request %v", ar)
	}
	ups, _ := c.doc["upstreams"].(map[string]any)
	u, _ := ups[ar["upstream"].(string)].(map[string]any)
	// nginx's sub-request sends $proxy_host; edgeproxy's the upstream's host.
	if u == nil || u["host"] != "127.0.0.1:9002" {
		t.Fatalf("auth upstream %v:\n%s", u, c.toml)
	}
	if rh, _ := c.route(t, 1)["request_headers"].(map[string]any); rh != nil {
		if set, _ := rh["set"].(map[string]any); set["X-User"] != nil {
			t.Fatalf("X-User set from a variable edgeproxy lacks: %v", rh)
		}
	}
	if _, ok := c.route(t, 2)["auth_request"]; ok {
		t.Fatalf("nginx's return runs before auth_request:\n%s", c.toml)
	}
}

func TestAuthRequestPrefixPathAndOff(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; auth_request /_auth/check;
  location /_auth/ { proxy_pass http://127.0.0.1:9002; }
  location /public/ { auth_request off; proxy_pass http://127.0.0.1:9001; }
  location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	c.noBlocking(t)
	for i, r := range c.routes() {
		ar, _ := r["auth_request"].(map[string]any)
		if r["path_prefix"] == "/public/" && ar != nil || r["path_prefix"] == "/" && (ar == nil || ar["path"] != "/_auth/check" || ar["timeout"] != "1m") {
			t.Fatalf("route %d %v", i, r)
		}
	}
}

func TestAuthRequestNotExpressible(t *testing.T) {
	for _, tc := range []struct{ conf, directive, why string }{
		{authServer + `location = /check { return 204; } location / { auth_request /check; proxy_pass http://127.0.0.1:9001; } }`, "auth_request", "no exact or prefix location"},
		{authServer + `location / { auth_request /auth; auth_request_set $user $upstream_http_x_user; proxy_set_header X-Remote-User $user; proxy_pass http://127.0.0.1:9001; } }`, "proxy_set_header", "under its own name"},
		{authServer + `location / { auth_request /auth; auth_request_set $s $upstream_status; proxy_pass http://127.0.0.1:9001; } }`, "auth_request_set", "$upstream_http_NAME"},
		{authServer + `location / { proxy_set_header X-User $user; proxy_pass http://127.0.0.1:9001; } }`, "proxy_set_header", "$user has no edgeproxy equivalent"},
		{`server { listen 80; location / { proxy_pass_request_body off; proxy_pass http://127.0.0.1:9001; } }`, "proxy_pass_request_body", "always forwards the client's body"},
	} {
		c := convertSnippet(t, tc.conf, AllCaps())
		found := false
		for _, f := range c.findings {
			if strings.Contains(f, ": "+tc.directive+": blocking: ") && strings.Contains(f, tc.why) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want %s blocking %q, got %v", tc.conf, tc.directive, tc.why, c.findings)
		}
	}
	c := convertSnippet(t, authServer+`location / { auth_request /auth; proxy_pass http://127.0.0.1:9001; } }`, Caps{})
	if !strings.Contains(c.finding("auth_request", 7), "routes.auth_request") {
		t.Fatalf("findings %v", c.findings)
	}
}
