package nginx

import (
	"reflect"
	"strings"
	"testing"
)

func TestAllowDenyBecomeAccessInOrder(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / { allow 10.0.0.0/8; allow 192.168.1.1; deny all; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if r := c.route(t, 0); !reflect.DeepEqual(r["access"], []any{"allow 10.0.0.0/8", "allow 192.168.1.1", "deny all"}) {
		t.Fatalf("route %v", r)
	}
}

func TestBasicAuth(t *testing.T) {
	htpasswd := write(t, t.TempDir(), "htpasswd", "admin:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n")
	c := convertSnippet(t, `server { listen 80;
  auth_basic "Admin";
  auth_basic_user_file `+htpasswd+`;
  location /admin/ { proxy_pass http://127.0.0.1:9001; }
  location /public/ { auth_basic off; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	admin, public := c.route(t, 1), c.route(t, 3)
	if admin["basic_auth_file"] != htpasswd || admin["realm"] != "Admin" || public["basic_auth_file"] != nil {
		t.Fatalf("routes %v / %v", admin, public)
	}
}

func TestRealIP(t *testing.T) {
	c := convertSnippet(t, `set_real_ip_from 10.0.0.0/8; set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;
server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if s := c.table(t, "server"); !reflect.DeepEqual(s["trusted_proxies"], []any{"10.0.0.0/8", "127.0.0.1"}) {
		t.Fatalf("server %v", s)
	}
	c = convertSnippet(t, `set_real_ip_from 10.0.0.0/8; real_ip_header X-Real-IP;
server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if !strings.Contains(c.finding("real_ip_header", 3), "X-Forwarded-For only") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestSatisfyAnyIsBlocking(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / { satisfy any; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if !strings.Contains(c.finding("satisfy", 3), "blocking") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestBasicAuthFileMissingHereIsBlocking(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / { auth_basic "A"; auth_basic_user_file /nonexistent/htpasswd; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if !strings.Contains(c.finding("auth_basic_user_file", 3), "cannot be read here") || c.route(t, 0)["basic_auth_file"] != nil {
		t.Fatalf("findings %v", c.findings)
	}
}
