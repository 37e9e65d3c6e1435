package nginx

import (
	"reflect"
	"strings"
	"testing"
)

func TestGzipBecomesCompression(t *testing.T) {
	c := convertSnippet(t, `gzip on; gzip_types application/json text/css; gzip_min_length 256; gzip_comp_level 9; gzip_vary on; gzip_proxied any;
server { listen 80;
  location / { proxy_pass http://127.0.0.1:9001; }
  location /raw/ { gzip off; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	c.noBlocking(t)
	want := map[string]any{"enabled": true, "algorithms": []any{"gzip"}, "types": []any{"text/html", "application/json", "text/css"},
		"min_bytes": int64(256), "level": "best"}
	if got := c.table(t, "compression"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	if r := c.route(t, 0); r["compress"] != nil {
		t.Fatalf("route %v", r)
	}
	if r := c.route(t, 2); r["compress"] != false {
		t.Fatalf("route %v", r)
	}
}

func TestGzipProxiedOtherThanAnyIsBlocking(t *testing.T) {
	c := convertSnippet(t, `gzip on; gzip_proxied expired;
server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if !strings.Contains(c.finding("gzip_proxied", 3), "Via") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestGzipWaitsForTheProxyStep(t *testing.T) {
	caps := AllCaps()
	delete(caps, CapCompress)
	c := convertSnippet(t, `gzip on; server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } }`, caps)
	if f := c.finding("gzip", 3); !strings.Contains(f, "blocking") {
		t.Fatalf("findings %v", c.findings)
	}
	if _, ok := c.doc["compression"]; ok {
		t.Fatalf("%s", c.toml)
	}
}
