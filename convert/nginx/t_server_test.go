package nginx

import (
	"strings"
	"testing"
)

func TestOneServerAnswersEveryHost(t *testing.T) {
	c := convertSnippet(t, `server { listen 127.0.0.1:8081; server_name example.com; keepalive_timeout 30; client_max_body_size 20m;
  location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	s := c.table(t, "server")
	if s["listen"] != "127.0.0.1:8081" || s["idle_timeout"] != "30s" || s["max_body_bytes"] != "20MiB" {
		t.Fatalf("server %v", s)
	}
	if r := c.route(t, 0); r["host"] != "" {
		t.Fatalf("route %v", r)
	}
}

func TestNginxDefaultsAreWrittenOut(t *testing.T) {
	c := convertSnippet(t, `server { location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	s := c.table(t, "server")
	if s["listen"] != "0.0.0.0:80" || s["max_body_bytes"] != "1MiB" || s["idle_timeout"] != "75s" {
		t.Fatalf("server %v", s)
	}
}

func TestSeveralServersGetHosts(t *testing.T) {
	c := convertSnippet(t, `server { listen 80 default_server; server_name a.example; location / { proxy_pass http://127.0.0.1:9001; } }
server { listen 80; server_name b.example .c.example; location / { proxy_pass http://127.0.0.1:9002; } }`, AllCaps())
	var hosts []string
	for _, r := range c.routes() {
		hosts = append(hosts, r["host"].(string))
	}
	// The default server keeps host "": every other server routes "/" too.
	if strings.Join(hosts, ",") != ",b.example,c.example,*.c.example" {
		t.Fatalf("hosts %v\n%s", hosts, c.toml)
	}
	c.noBlocking(t)
}

func TestDefaultServerWhosePathsOthersLackKeepsItsNames(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; server_name a.example; location /x/ { proxy_pass http://127.0.0.1:9001; } location / { proxy_pass http://127.0.0.1:9001; } }
server { listen 80; server_name b.example; location / { proxy_pass http://127.0.0.1:9002; } }`, AllCaps())
	if f := c.finding("server", 3); !strings.Contains(f, "default server") {
		t.Fatalf("findings %v", c.findings)
	}
	for _, r := range c.routes() {
		if r["host"] == "" {
			t.Fatalf("a host-less route would steal b.example's /x/: %v", r)
		}
	}
}

func TestDifferentPortsAreBlocking(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; server_name a; return 301 https://$host$request_uri; }
server { listen 443 ssl; server_name a; ssl_certificate /etc/ssl/a.pem; ssl_certificate_key /etc/ssl/a.key; location / { proxy_pass http://127.0.0.1:9001; } }
server { listen 443 ssl; server_name b; location / { proxy_pass http://127.0.0.1:9002; } }`, AllCaps())
	s := c.table(t, "server")
	if s["listen"] != "0.0.0.0:443" || s["tls_cert_file"] != "/etc/ssl/a.pem" || s["tls_key_file"] != "/etc/ssl/a.key" {
		t.Fatalf("server %v", s)
	}
	if f := c.finding("listen", 3); !strings.Contains(f, "blocking: edgeproxy has one listener, on port 443") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestRegexServerNameLeavesTheServerOut(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; server_name ~^(www\.)?x\.example$; location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if f := c.finding("server_name", 3); !strings.Contains(f, "blocking") || len(c.routes()) != 0 {
		t.Fatalf("findings %v\n%s", c.findings, c.toml)
	}
}

func TestProcessTuningIsIgnoredNotBlocking(t *testing.T) {
	c := convertSnippet(t, `sendfile on; tcp_nopush on; tcp_nodelay on; server_tokens off; types_hash_max_size 2048;
  client_body_buffer_size 16k; proxy_buffers 8 16k; log_format main '$remote_addr';
  server { listen 80; location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	c.noBlocking(t)
	if len(c.findings) != 9 {
		t.Fatalf("want one ignored line per directive: %v", c.findings)
	}
}

func TestUnknownDirectiveDoesNotStopTheRest(t *testing.T) {
	c := convertSnippet(t, `server { listen 80;
  more_set_headers "X-A: b";
  location / { proxy_pass http://127.0.0.1:9001; lua_code_cache off; } }`, AllCaps())
	if !strings.Contains(c.finding("more_set_headers", 4), "unknown directive") || !strings.Contains(c.finding("lua_code_cache", 5), "unknown directive") {
		t.Fatalf("findings %v", c.findings)
	}
	if len(c.routes()) != 1 {
		t.Fatalf("the rest is still converted:\n%s", c.toml)
	}
}

func TestSiteFileWithoutHTTPIsConvertedAsIfIncluded(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "default", "upstream app { server 127.0.0.1:9001; }\nserver {\n  listen 8080;\n  location / { proxy_pass http://app; proxy_set_header Host $http_host; }\n}\n")
	res, err := Convert(path, Options{Caps: AllCaps()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocking() || !strings.Contains(string(res.TOML), `upstream = "app"`) {
		t.Fatalf("findings %v\n%s", res.Findings, res.TOML)
	}
}
