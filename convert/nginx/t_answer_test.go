package nginx

import (
	"reflect"
	"strings"
	"testing"
)

func TestReturnForms(t *testing.T) {
	c := convertSnippet(t, `default_type text/plain;
server { listen 80; server_name www.example.com;
  location /a { return 301 https://$server_name$request_uri; }
  location /b { return 200 "hello\n"; }
  location /c { return https://example.org/; }
  location /d { return 444; }
  location /e { return 403; } }`, AllCaps())
	c.noBlocking(t)
	want := []map[string]any{
		{"host": "", "path_prefix": "/a", "return": int64(301), "location": "https://www.example.com$request_uri"},
		{"host": "", "path_prefix": "/b", "return": int64(200), "body": "hello\n", "content_type": "text/plain"},
		{"host": "", "path_prefix": "/c", "return": int64(302), "location": "https://example.org/"},
		{"host": "", "path_prefix": "/d", "return": int64(444)},
		{"host": "", "path_prefix": "/e", "return": int64(403)},
	}
	if !reflect.DeepEqual(c.routes(), want) {
		t.Fatalf("got %v", c.routes())
	}
}

func TestServerLevelReturnAnswersEverything(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; return 301 https://$host$request_uri; location /x/ { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if len(c.routes()) != 1 || c.route(t, 0)["path_prefix"] != "/" {
		t.Fatalf("%s", c.toml)
	}
}

func TestReturnWinsOverProxyPassInALocation(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / { proxy_pass http://127.0.0.1:9001; return 410; } }`, AllCaps())
	if r := c.route(t, 0); r["return"] != int64(410) || r["upstream"] != nil {
		t.Fatalf("route %v", r)
	}
}

func TestServerRewriteRedirect(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; rewrite ^/old/(.*)$ /new/$1? permanent; location / { return 204; } }`, AllCaps())
	r := c.route(t, 0)
	if r["path_regex"] != "^/old/(.*)$" || r["return"] != int64(301) || r["location"] != "$scheme://$host/new/$1" {
		t.Fatalf("route %v", r)
	}
	c = convertSnippet(t, `server { listen 80; rewrite ^/old/(.*)$ /new/$1 permanent; location / { return 204; } }`, AllCaps())
	if !strings.Contains(c.finding("rewrite", 3), "query") {
		t.Fatalf("findings %v", c.findings)
	}
	c = convertSnippet(t, `server { listen 80; location / { rewrite ^/a /b break; return 204; } }`, AllCaps())
	if !strings.Contains(c.finding("rewrite", 3), "blocking") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestAddHeaderAndHideHeader(t *testing.T) {
	c := convertSnippet(t, `server { listen 80;
  add_header X-Frame-Options SAMEORIGIN always;
  add_header Strict-Transport-Security "max-age=63072000" always;
  location / { proxy_pass http://127.0.0.1:9001; proxy_hide_header X-Powered-By; }
  location /own/ { add_header X-Own 1; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	c.noBlocking(t)
	rh := c.route(t, 0)["response_headers"].(map[string]any)
	want := map[string]any{"add": map[string]any{"X-Frame-Options": "SAMEORIGIN", "Strict-Transport-Security": "max-age=63072000"},
		"remove": []any{"X-Powered-By"}, "always": true}
	if !reflect.DeepEqual(rh, want) {
		t.Fatalf("got %v", rh)
	}
	// add_header in a location replaces the server's, as in nginx.
	own := c.route(t, 2)["response_headers"].(map[string]any)
	if !reflect.DeepEqual(own, map[string]any{"add": map[string]any{"X-Own": "1"}}) {
		t.Fatalf("got %v", own)
	}
}

func TestErrorPageBecomesFilesAndNamedRoutes(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "errors/50x.html", "down\n")
	c := convertSnippet(t, `server { listen 80;
  error_page 502 503 /50x.html;
  error_page 404 = @fallback;
  location = /50x.html { root `+dir+`/errors; }
  location @fallback { proxy_pass http://127.0.0.1:9002; }
  location / { proxy_pass http://127.0.0.1:9001; proxy_intercept_errors on; } }`, AllCaps())
	r := c.route(t, 2)
	want := map[string]any{"502": dir + "/errors/50x.html", "503": dir + "/errors/50x.html", "404": "@fallback"}
	if !reflect.DeepEqual(r["error_pages"], want) || r["intercept_errors"] != true {
		t.Fatalf("route %v", r)
	}
	c = convertSnippet(t, `server { listen 80; error_page 404 =200 /empty.gif; location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if !strings.Contains(c.finding("error_page", 3), "blocking") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestOtherMapsAreBlocking(t *testing.T) {
	c := convertSnippet(t, `map $http_user_agent $mobile { default 0; ~Mobile 1; }
server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if !strings.Contains(c.finding("map", 3), "blocking") {
		t.Fatalf("findings %v", c.findings)
	}
}
