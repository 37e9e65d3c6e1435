package nginx

import (
	"reflect"
	"strings"
	"testing"
)

func TestUpstreamServersAndNginxDefaults(t *testing.T) {
	c := convertSnippet(t, `upstream app {
  server 10.0.0.1:8000 max_fails=2 fail_timeout=5s max_conns=100;
  server 10.0.0.2:8000 max_fails=2 fail_timeout=5s max_conns=100;
  server app3.internal max_fails=2 fail_timeout=5s max_conns=100;
  server 10.0.0.4:8000 down;
  keepalive 32;
  keepalive_timeout 30s;
  least_conn;
}
server { listen 8080; location / { proxy_pass http://app; } }`, AllCaps())
	u := c.table(t, "upstreams", "app")
	want := map[string]any{
		"servers": []any{"10.0.0.1:8000", "10.0.0.2:8000", "app3.internal:80"}, "balance": "least_conn",
		"max_fails": int64(2), "fail_timeout": "5s", "max_conns_per_server": int64(100), "max_idle_time": "30s",
		"retries": int64(2), "connect_timeout": "1m", "response_timeout": "1m", "host": "preserve",
	}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("got %v\nwant %v", u, want)
	}
	if f := c.finding("server", 7); !strings.Contains(f, "ignored: marked down") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestUpstreamWeightAndBackupAreBlocking(t *testing.T) {
	c := convertSnippet(t, `upstream app { server 10.0.0.1:80 weight=3; server 10.0.0.2:80 backup; }
server { listen 8080; location / { proxy_pass http://app; } }`, AllCaps())
	if !strings.Contains(c.finding("server", 3), "weight=3") || len(c.findings) < 3 {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestUpstreamDifferentMaxFailsIsBlocking(t *testing.T) {
	c := convertSnippet(t, `upstream app { server 10.0.0.1:80 max_fails=1; server 10.0.0.2:80 max_fails=5; }
server { listen 8080; location / { proxy_pass http://app; } }`, AllCaps())
	if !strings.Contains(strings.Join(c.findings, "\n"), "per upstream") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestUpstreamBalancers(t *testing.T) {
	for _, tc := range []struct{ directive, balance, key string }{
		{"ip_hash;", "hash", "$remote_addr"},
		{"hash $request_uri consistent;", "hash", "$request_uri"},
		{"random two least_conn;", "random_two", ""},
	} {
		c := convertSnippet(t, "upstream app { "+tc.directive+" server 10.0.0.1:80; server 10.0.0.2:80; }\n"+
			"server { listen 8080; location / { proxy_pass http://app; } }", AllCaps())
		u := c.table(t, "upstreams", "app")
		if u["balance"] != tc.balance || tc.key != "" && u["hash_key"] != tc.key {
			t.Errorf("%s: %v", tc.directive, u)
		}
	}
	c := convertSnippet(t, "upstream app { hash $request_uri; server 10.0.0.1:80; }\nserver { listen 8080; location / { proxy_pass http://app; } }", AllCaps())
	if !strings.Contains(c.finding("hash", 3), "consistent") {
		t.Fatalf("non-consistent hash: %v", c.findings)
	}
}

func TestUnusedUpstreamIsNotWritten(t *testing.T) {
	c := convertSnippet(t, "upstream spare { server 10.0.0.9:80; }\nserver { listen 8080; location / { return 204; } }", AllCaps())
	if _, ok := c.doc["upstreams"]; ok {
		t.Fatalf("%s", c.toml)
	}
}
