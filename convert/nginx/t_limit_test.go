package nginx

import (
	"strings"
	"testing"
)

func TestLimitReqCarried(t *testing.T) {
	c := convertSnippet(t, `limit_req_zone $binary_remote_addr zone=one:10m rate=10r/s;
limit_req_status 429;
server { listen 80;
  location /api { limit_req zone=one burst=20 nodelay; proxy_pass http://127.0.0.1:9001; }
  location / { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	c.noBlocking(t)
	rl, ok := c.route(t, 0)["rate_limit"].(map[string]any)
	if !ok {
		t.Fatalf("no rate_limit:\n%s", c.toml)
	}
	want := map[string]any{"key": "$remote_addr", "rate": "10/s", "burst": int64(20), "nodelay": true, "mode": "local", "max_keys": int64(163840)}
	for k, v := range want {
		if rl[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, rl[k], rl[k], v)
		}
	}
	if _, ok := c.route(t, 1)["rate_limit"]; ok {
		t.Fatalf("route without limit_req limited:\n%s", c.toml)
	}
}

func TestLimitReqDefaultStatusIsBlocking(t *testing.T) {
	c := convertSnippet(t, `limit_req_zone $remote_addr zone=one:1m rate=30r/m;
server { listen 80; location / { limit_req zone=one; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	f := c.finding("limit_req", 4)
	if !strings.Contains(f, "blocking") || !strings.Contains(f, "503") {
		t.Fatalf("finding %q\n%v", f, c.findings)
	}
	rl := c.route(t, 0)["rate_limit"].(map[string]any)
	if rl["rate"] != "30/m" || rl["burst"] != int64(0) || rl["nodelay"] != nil {
		t.Fatalf("rate_limit %v", rl)
	}
}

func TestLimitReqDelay(t *testing.T) {
	for delay, want := range map[string]string{"delay=0": "", "delay=5": "nodelay", "delay=2": "blocking"} {
		c := convertSnippet(t, `limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s; limit_req_status 429;
server { listen 80; location / { limit_req zone=one burst=5 `+delay+`; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
		f := c.finding("limit_req", 4)
		rl, _ := c.route(t, 0)["rate_limit"].(map[string]any)
		switch want {
		case "blocking":
			if !strings.Contains(f, "delay=2") || rl != nil {
				t.Errorf("%s: finding %q, rate_limit %v", delay, f, rl)
			}
		case "nodelay":
			if f != "" || rl["nodelay"] != true {
				t.Errorf("%s: finding %q, rate_limit %v", delay, f, rl)
			}
		default:
			if f != "" || rl == nil || rl["nodelay"] != nil {
				t.Errorf("%s: finding %q, rate_limit %v", delay, f, rl)
			}
		}
	}
}

func TestLimitReqZoneKeys(t *testing.T) {
	for key, want := range map[string]string{
		"$binary_remote_addr$uri": "$remote_addr$uri",
		"$host":                   "$host",
		"$http_x_api_key":         "can be empty",
		"$server_name":            "no edgeproxy equivalent",
	} {
		c := convertSnippet(t, `limit_req_zone `+key+` zone=z:1m rate=5r/s; limit_req_status 429;
server { listen 80; location / { limit_req zone=z; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
		rl, _ := c.route(t, 0)["rate_limit"].(map[string]any)
		if strings.HasPrefix(want, "$") {
			c.noBlocking(t)
			if rl["key"] != want {
				t.Errorf("%s: key %v", key, rl["key"])
			}
			continue
		}
		if rl != nil || !strings.Contains(c.finding("limit_req_zone", 3), want) || !strings.Contains(c.finding("limit_req", 4), "zone z (line 3)") {
			t.Errorf("%s: rate_limit %v findings %v", key, rl, c.findings)
		}
	}
}

func TestLimitReqNotOnReturnAndOnePerRoute(t *testing.T) {
	c := convertSnippet(t, `limit_req_zone $binary_remote_addr zone=a:1m rate=5r/s;
limit_req_zone $binary_remote_addr zone=b:1m rate=50r/s; limit_req_status 429;
server { listen 80; limit_req zone=a;
  location = /ping { return 200 ok; }
  location / { limit_req zone=a; limit_req zone=b; proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	if _, ok := c.route(t, 0)["rate_limit"]; ok {
		t.Fatalf("nginx's return runs before limit_req:\n%s", c.toml)
	}
	if rl := c.route(t, 1)["rate_limit"].(map[string]any); rl["rate"] != "5/s" {
		t.Fatalf("rate_limit %v", rl)
	}
	if !strings.Contains(c.finding("limit_req", 7), "one rate_limit per route") {
		t.Fatalf("findings %v", c.findings)
	}
	c = convertSnippet(t, `limit_req_zone $binary_remote_addr zone=a:1m rate=5r/s;
server { listen 80; location / { limit_req zone=a; proxy_pass http://127.0.0.1:9001; } }`, Caps{})
	if !strings.Contains(c.finding("limit_req", 4), "routes.rate_limit") {
		t.Fatalf("findings %v", c.findings)
	}
}
