package nginx

import (
	"reflect"
	"strings"
	"testing"
)

func TestLocationKinds(t *testing.T) {
	c := convertSnippet(t, `server { listen 80;
  location = /healthz { return 200 "ok"; }
  location ^~ /static/ { return 204; }
  location ~* \.(png|jpg)$ { return 204; }
  location @app { proxy_pass http://127.0.0.1:9001; }
  location / { return 204; } }`, AllCaps())
	c.noBlocking(t)
	got := []string{}
	for _, r := range c.routes() {
		for _, k := range []string{"path_exact", "path_prefix", "path_regex", "name"} {
			if v, ok := r[k]; ok {
				got = append(got, k+"="+v.(string))
			}
		}
		if r["regex_stops"] == true {
			got = append(got, "regex_stops")
		}
		if r["case_insensitive"] == true {
			got = append(got, "case_insensitive")
		}
	}
	want := []string{"path_exact=/healthz", "path_prefix=/static/", "regex_stops", `path_regex=\.(png|jpg)$`, "case_insensitive", "name=app", "path_prefix=/"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestLocationStopsWithoutRegexIsAPlainPrefix(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location ^~ /static/ { return 204; } }`, Caps{CapReturn: true})
	c.noBlocking(t)
	if r := c.route(t, 0); r["regex_stops"] != nil {
		t.Fatalf("route %v", r)
	}
}

func TestLocationKindsBlockUntilConfigAcceptsThem(t *testing.T) {
	c := convertSnippet(t, `server { listen 80;
  location = /healthz { return 200; }
  location ~ \.php$ { return 403; } }`, Caps{CapReturn: true})
	if !strings.Contains(c.finding("location", 4), "routes.path_exact") || !strings.Contains(c.finding("location", 5), "routes.path_regex") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestLocationPCREOnlyRegexIsBlocking(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location ~ ^/(?!api) { return 403; } }`, AllCaps())
	if !strings.Contains(c.finding("location", 3), "RE2") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestNestedLocationIsBlocking(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location /a/ { location /a/b/ { return 204; } return 200; } }`, AllCaps())
	if !strings.Contains(c.finding("location", 3), "nested") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestSlashRedirectForProxiedPrefix(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location /app/ { proxy_pass http://127.0.0.1:9001/; } }`, AllCaps())
	r := c.route(t, 0)
	if r["path_exact"] != "/app" || r["return"] != int64(301) || r["location"] != "$scheme://$host/app/" {
		t.Fatalf("route %v", r)
	}
	c = convertSnippet(t, `server { listen 8080; location /app/ { proxy_pass http://127.0.0.1:9001/; } location = /app { return 204; } }`, AllCaps())
	if len(c.routes()) != 2 {
		t.Fatalf("an exact location of its own replaces the redirect:\n%s", c.toml)
	}
}

func TestLimitExceptBecomesMethods(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / { limit_except GET POST { deny all; } proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if r := c.route(t, 0); !reflect.DeepEqual(r["methods"], []any{"GET", "POST"}) {
		t.Fatalf("route %v", r)
	}
	c = convertSnippet(t, `server { listen 80; location / { limit_except GET { allow 10.0.0.0/8; deny all; } proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if !strings.Contains(c.finding("limit_except", 3), "deny all") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestIfOnHeaderBecomesAMatchCopy(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / {
  if ($http_x_canary = "1") { proxy_pass http://127.0.0.1:9002; }
  proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	c.noBlocking(t)
	first, second := c.route(t, 0), c.route(t, 1)
	m := first["match"].(map[string]any)["headers"].(map[string]any)
	if m["x-canary"] != "^1$" || first["upstream"] != "127.0.0.1_9002" || second["upstream"] != "127.0.0.1_9001" || second["match"] != nil {
		t.Fatalf("routes %v / %v", first, second)
	}
}

func TestIfOnOtherConditionsIsBlocking(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / { if ($request_method = POST) { return 405; } proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if !strings.Contains(c.finding("if", 3), "only conditions on $http_") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestInternalLocation(t *testing.T) {
	dir := t.TempDir()
	c := convertSnippet(t, `server { listen 80; location /protected/ { internal; root `+dir+`; } }`, AllCaps())
	if r := c.route(t, 0); r["internal"] != true || r["root"] != dir {
		t.Fatalf("route %v", r)
	}
}

func TestDuplicateLocationIsRejectedAsNginxDoes(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / { return 204; } location ^~ / { return 200; } }`, AllCaps())
	if !strings.Contains(c.finding("location", 3), `duplicate location "/"`) || len(c.routes()) != 1 {
		t.Fatalf("findings %v", c.findings)
	}
}
