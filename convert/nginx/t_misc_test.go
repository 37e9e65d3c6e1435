package nginx

import (
	"strings"
	"testing"
)

func TestClientMaxBodySizePerRoute(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; client_max_body_size 10m;
  location / { proxy_pass http://127.0.0.1:9001; }
  location /upload/ { client_max_body_size 0; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if s := c.table(t, "server"); s["max_body_bytes"] != "10MiB" {
		t.Fatalf("server %v", s)
	}
	if r := c.route(t, 0); r["max_body_bytes"] != nil {
		t.Fatalf("route %v", r)
	}
	if r := c.route(t, 2); r["max_body_bytes"] != "0" {
		t.Fatalf("route %v", r)
	}
}

func TestAccessLogOff(t *testing.T) {
	c := convertSnippet(t, `access_log off; server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } }`, Caps{})
	if l := c.table(t, "log"); l["access_log"] != "off" {
		t.Fatalf("log %v", l)
	}
	c = convertSnippet(t, `server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } location = /healthz { access_log off; return 200; } }`, AllCaps())
	if r := c.route(t, 1); r["access_log"] != false {
		t.Fatalf("route %v", r)
	}
	c = convertSnippet(t, `server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } location /h { access_log off; proxy_pass http://127.0.0.1:9001; } }`, Caps{})
	if !strings.Contains(c.finding("access_log", 3), "routes.access_log") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestResolver(t *testing.T) {
	c := convertSnippet(t, `resolver 10.0.0.2 valid=30s; server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if s := c.table(t, "server"); s["resolver"] != "10.0.0.2:53" {
		t.Fatalf("server %v", s)
	}
}

func TestNginxTimeAndSizeSyntax(t *testing.T) {
	for in, want := range map[string]string{"30": "30s", "90s": "90s", "1m30s": "90s", "500ms": "500ms", "2h": "2h", "1d": "24h"} {
		d, err := nginxDuration(in)
		if err != nil || goDuration(d) != want {
			t.Errorf("%s: got %v %v, want %s", in, goDuration(d), err, want)
		}
	}
	for _, bad := range []string{"", "s", "1x", "1.5s", "99999999999"} {
		if _, err := nginxDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for in, want := range map[string]string{"1k": "1KiB", "10m": "10MiB", "1g": "1GiB", "1500": "1500"} {
		n, ok := nginxSize(in)
		if !ok || sizeString(n) != want {
			t.Errorf("%s: got %v %v", in, sizeString(n), ok)
		}
	}
}

func TestLimitRate(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location /dl/ { limit_rate 512k; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if r := c.route(t, 1); r["limit_rate"] != "512KiB" {
		t.Fatalf("route %v", r)
	}
	c = convertSnippet(t, `server { listen 80; location / { limit_rate 1m; proxy_pass http://127.0.0.1:9001; } }`, Caps{})
	if !strings.Contains(c.finding("limit_rate", 3), "routes.limit_rate") {
		t.Fatalf("findings %v", c.findings)
	}
}
