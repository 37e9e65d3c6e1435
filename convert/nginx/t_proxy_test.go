package nginx

import (
	"reflect"
	"strings"
	"testing"
)

// Line 3 is the first line of every snippet (events and http come first).

func TestProxyPassWithoutURIPassesThePathUnchanged(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080;
  location /api/ { proxy_pass http://127.0.0.1:9001; proxy_set_header Host $http_host; } }`, AllCaps())
	r := c.route(t, 1) // route 0 is nginx's /api → /api/ redirect
	if r["path_prefix"] != "/api/" || r["strip_prefix"] != nil || r["upstream"] != "127.0.0.1_9001" {
		t.Fatalf("route %v", r)
	}
	u := c.table(t, "upstreams", "127.0.0.1_9001")
	if !reflect.DeepEqual(u["servers"], []any{"127.0.0.1:9001"}) || u["host"] != "preserve" || u["max_fails"] != int64(0) {
		t.Fatalf("upstream %v", u)
	}
}

func TestProxyPassWithSlashURIStripsThePrefix(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080; location /app/ { proxy_pass http://127.0.0.1:9001/; } }`, AllCaps())
	if r := c.route(t, 1); r["strip_prefix"] != true {
		t.Fatalf("route %v", r)
	}
}

func TestProxyPassWithOtherURIPartBecomesRegexAndRewrite(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080;
  location /api/ { proxy_pass http://127.0.0.1:9001/v2/; }
  location ~ \.json$ { return 403; } }`, AllCaps())
	c.noBlocking(t)
	// The redirect /api → /api/, the regex location, then /api/ last.
	last := c.route(t, 2)
	if last["path_regex"] != "^/api/(.*)$" || last["rewrite"] != "/v2/$1" || last["path_prefix"] != nil {
		t.Fatalf("routes %v", c.routes())
	}
	c = convertSnippet(t, `server { listen 8080; location /api/ { proxy_pass http://127.0.0.1:9001/v2/; } location /api/admin/ { return 403; } }`, AllCaps())
	if f := c.finding("proxy_pass", 3); !strings.Contains(f, "longer location /api/admin/") {
		t.Fatalf("findings %v", c.findings)
	}
	c = convertSnippet(t, `server { listen 8080; location /api/ { proxy_pass http://127.0.0.1:9001/v2/; } }`, Caps{})
	if f := c.finding("proxy_pass", 3); !strings.Contains(f, "routes.path_regex") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestProxyPassURIPartInRegexLocationIsRejectedAsNginxDoes(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080; location ~ ^/a { proxy_pass http://127.0.0.1:9001/x; } }`, AllCaps())
	if f := c.finding("proxy_pass", 3); !strings.Contains(f, "nginx rejects this config") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestProxyPassDefaultHostIsProxyHost(t *testing.T) {
	src := `upstream backend { server 127.0.0.1:9001; }
server { listen 8080; location / { proxy_pass http://backend; } }`
	c := convertSnippet(t, src, AllCaps())
	hdr := c.route(t, 0)["request_headers"].(map[string]any)["set"].(map[string]any)
	if hdr["Host"] != "backend" {
		t.Fatalf("with request_headers: Host %v", hdr)
	}
	c = convertSnippet(t, src, Caps{})
	if u := c.table(t, "upstreams", "backend"); u["host"] != "backend" {
		t.Fatalf("without request_headers: upstream %v", u)
	}
}

func TestProxySetHeaderHostHostNeedsRequestHeaders(t *testing.T) {
	src := `server { listen 8080; location / { proxy_pass http://127.0.0.1:9001; proxy_set_header Host $host; } }`
	c := convertSnippet(t, src, Caps{})
	if f := c.finding("proxy_set_header", 3); !strings.Contains(f, "$host drops a port") {
		t.Fatalf("findings %v", c.findings)
	}
	c = convertSnippet(t, src, AllCaps())
	c.noBlocking(t)
}

func TestProxySetHeaderOwnHeadersAndWebsocketIdiom(t *testing.T) {
	c := convertSnippet(t, `map $http_upgrade $connection_upgrade { default upgrade; '' close; }
server { listen 8080;
  location / {
    proxy_pass http://127.0.0.1:9001;
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
  }
  location /plain { proxy_pass http://127.0.0.1:9001; proxy_set_header Host $http_host; }
}`, AllCaps())
	c.noBlocking(t)
	r := c.route(t, 0)
	set := r["request_headers"].(map[string]any)["set"].(map[string]any)
	if !reflect.DeepEqual(set, map[string]any{"X-Real-IP": "$remote_addr"}) || r["websocket"] != true {
		t.Fatalf("route %v", r)
	}
	if r := c.route(t, 1); r["websocket"] != false {
		t.Fatalf("a location without the idiom does not tunnel in nginx: %v", r)
	}
}

func TestProxySetHeaderLiteralConnectionUpgradeIsWebsocket(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080; location / { proxy_pass http://127.0.0.1:9001;
  proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; } }`, AllCaps())
	if r := c.route(t, 0); r["websocket"] != true || r["request_headers"] != nil && r["request_headers"].(map[string]any)["set"].(map[string]any)["Connection"] != nil {
		t.Fatalf("route %v", r)
	}
}

func TestProxySetHeaderInheritsOnlyWhenTheLocationSetsNone(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080;
  proxy_set_header X-A a;
  location / { proxy_pass http://127.0.0.1:9001; }
  location /b { proxy_pass http://127.0.0.1:9001; proxy_set_header X-B b; } }`, AllCaps())
	a := c.route(t, 0)["request_headers"].(map[string]any)["set"].(map[string]any)
	b := c.route(t, 1)["request_headers"].(map[string]any)["set"].(map[string]any)
	if a["X-A"] != "a" || b["X-A"] != nil || b["X-B"] != "b" {
		t.Fatalf("a %v b %v", a, b)
	}
}

func TestProxySetHeaderUnknownVariableIsBlocking(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080; location / { proxy_pass http://127.0.0.1:9001; proxy_set_header X-Doc $document_root; } }`, AllCaps())
	if f := c.finding("proxy_set_header", 3); !strings.Contains(f, "$document_root has no edgeproxy equivalent") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestProxyTimeoutsAndNginxDefaults(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080; proxy_connect_timeout 2s;
  location / { proxy_pass http://127.0.0.1:9001; proxy_read_timeout 90; }
  location /b { proxy_pass http://127.0.0.1:9002; } }`, AllCaps())
	if r := c.route(t, 0); r["timeout"] != "90s" {
		t.Fatalf("route %v", r)
	}
	if r := c.route(t, 1); r["timeout"] != "1m" {
		t.Fatalf("nginx's default proxy_read_timeout is 60s: %v", r)
	}
	if u := c.table(t, "upstreams", "127.0.0.1_9001"); u["connect_timeout"] != "2s" || u["response_timeout"] != "1m" {
		t.Fatalf("upstream %v", u)
	}
}

func TestProxyRequestBufferingOff(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080; location / { proxy_pass http://127.0.0.1:9001; proxy_request_buffering off; } }`, AllCaps())
	if r := c.route(t, 0); r["buffer_request"] != false {
		t.Fatalf("route %v", r)
	}
}

func TestProxyBufferingAndHTTPVersionAreNoOps(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080; location / { proxy_pass http://127.0.0.1:9001; proxy_buffering off; proxy_http_version 1.1; proxy_set_header Connection ""; } }`, AllCaps())
	c.noBlocking(t)
	if len(c.findings) != 1 { // events
		t.Fatalf("findings %v", c.findings)
	}
}

func TestProxyPassToHTTPSAndUnixSockets(t *testing.T) {
	c := convertSnippet(t, `server { listen 8080; location / { proxy_pass https://api.internal; } }`, Caps{})
	if f := c.finding("proxy_pass", 3); !strings.Contains(f, "blocking") {
		t.Fatalf("findings %v", c.findings)
	}
	c = convertSnippet(t, `upstream tls { server 10.0.0.1:8443; }
server { listen 8080;
  location / { proxy_pass https://api.internal; }
  location /b { proxy_pass https://tls; }
  location /sock { proxy_pass http://unix:/run/app.sock; } }`, AllCaps())
	c.noBlocking(t)
	api := c.table(t, "upstreams", "api.internal_443")
	if !reflect.DeepEqual(api["servers"], []any{"https://api.internal:443"}) || api["tls_insecure_skip_verify"] != true {
		t.Fatalf("upstream %v", api)
	}
	if u := c.table(t, "upstreams", "tls"); !reflect.DeepEqual(u["servers"], []any{"https://10.0.0.1:8443"}) {
		t.Fatalf("upstream %v", u)
	}
	sock := c.table(t, "upstreams", "unix_run_app.sock")
	if !reflect.DeepEqual(sock["servers"], []any{"unix:/run/app.sock"}) {
		t.Fatalf("upstream %v", sock)
	}
	r := c.route(t, 2)
	if r["request_headers"].(map[string]any)["set"].(map[string]any)["Host"] != "localhost" {
		t.Fatalf("nginx sends Host: localhost to a unix socket: %v", r)
	}
}

func TestExactLocationWithURIPartIsARegexRoute(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location = /old { proxy_pass http://127.0.0.1:9001/new; }
  location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	c.noBlocking(t)
	if r := c.route(t, 0); r["path_regex"] != "^/old$" || r["rewrite"] != "/new" || r["path_exact"] != nil {
		t.Fatalf("route %v", r)
	}
	c = convertSnippet(t, `server { listen 80; location = /old { proxy_pass http://127.0.0.1:9001/new; }
  location ~ ^/o { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if !strings.Contains(c.finding("proxy_pass", 3), "location ^/o could take first") {
		t.Fatalf("findings %v", c.findings)
	}
}
