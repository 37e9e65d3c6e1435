package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const routeBase = "[upstreams.a]\nservers = [\"127.0.0.1:1\"]\n\n[[routes]]\npath_prefix = \"/\"\n"

// Every §8 route key is validated with its key and line.
func TestRouteKeysAreValidated(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
	}{
		{"unknown variable", routeBase + "upstream = \"a\"\nresponse_headers = { set = { \"X-A\" = \"$hots\" } }\n",
			[]string{"f.toml:7:1: routes[0].response_headers.set.X-A: unknown variable $hots"}},
		{"unknown variable in location", routeBase + "return = 301\nlocation = \"https://$hots$request_uri\"\n",
			[]string{"f.toml:7:1: routes[0].location: unknown variable $hots"}},
		{"upstream and return", routeBase + "upstream = \"a\"\nreturn = 200\n",
			[]string{"f.toml:7:1: routes[0].return: a route does one thing"}},
		{"neither", routeBase + "strip_prefix = true\n",
			[]string{"routes[0].upstream: is required"}},
		{"redirect without location", routeBase + "return = 302\n",
			[]string{"f.toml:6:1: routes[0].return: return 302 needs a location"}},
		{"location on a 200", routeBase + "return = 200\nlocation = \"/x\"\n",
			[]string{"f.toml:7:1: routes[0].location: only a redirect"}},
		{"bad status", routeBase + "return = 99\n",
			[]string{"f.toml:6:1: routes[0].return: must be a status"}},
		{"444 with a body", routeBase + "return = 444\nbody = \"x\"\n",
			[]string{"f.toml:7:1: routes[0].body: return 444 closes"}},
		{"bad method", routeBase + "upstream = \"a\"\nmethods = [\"get\"]\n",
			[]string{"f.toml:7:1: routes[0].methods[0]"}},
		{"bad access rule", routeBase + "upstream = \"a\"\naccess = [\"permit 10.0.0.0/8\", \"deny 300.1.1.1\"]\n",
			[]string{"routes[0].access[0]", "must start with \"allow\" or \"deny\"", "routes[0].access[1]", "not a valid CIDR"}},
		{"missing htpasswd", routeBase + "upstream = \"a\"\nbasic_auth_file = \"nope.htpasswd\"\n",
			[]string{"f.toml:7:1: routes[0].basic_auth_file: nope.htpasswd: no such file"}},
		{"error page to unknown route", routeBase + "upstream = \"a\"\nerror_pages = { \"502\" = \"@nowhere\" }\n",
			[]string{"f.toml:7:1: routes[0].error_pages.502: names route \"@nowhere\""}},
		{"unreadable error page", routeBase + "upstream = \"a\"\nerror_pages = { \"404\" = \"missing.html\" }\n",
			[]string{"routes[0].error_pages.404: cannot read error page"}},
		{"error page status", routeBase + "upstream = \"a\"\nerror_pages = { \"200\" = \"@x\" }\n",
			[]string{"routes[0].error_pages.200: must be a status 300..599"}},
		{"intercept without pages", routeBase + "upstream = \"a\"\nintercept_errors = true\n",
			[]string{"f.toml:7:1: routes[0].intercept_errors: needs error_pages"}},
		{"bad header name", routeBase + "upstream = \"a\"\nrequest_headers = { remove = [\"bad name\"] }\n",
			[]string{"routes[0].request_headers.remove[0]"}},
		{"negative body limit", routeBase + "upstream = \"a\"\nmax_body_bytes = -1\n",
			[]string{"f.toml:7:", "max_body_bytes"}},
		{"duplicate name", routeBase + "upstream = \"a\"\nname = \"x\"\n[[routes]]\nname = \"x\"\nreturn = 204\n",
			[]string{"routes[1].name: \"x\" is already the name of routes[0]"}},
		{"compression", "[compression]\nenabled = true\nalgorithms = [\"gzip\", \"lzma\"]\nlevel = \"max\"\ntypes = [\"text\"]\n",
			[]string{"f.toml:3:1: compression.algorithms[1]", "f.toml:4:1: compression.level", "f.toml:5:1: compression.types[0]"}},
		{"unknown route key", routeBase + "upstream = \"a\"\nproxy_pass = \"x\"\n",
			[]string{"f.toml:7:1: routes.proxy_pass: unknown key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantParseErrors(t, tc.toml, tc.want) })
	}
}

func TestRouteKeysAccepted(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "502.html"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "users"), []byte("u:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n"), 0o644)
	text := routeBase + `upstream = "a"
name = "app"
methods = ["GET", "POST"]
max_body_bytes = 0
buffer_request = false
websocket = false
access = ["allow 10.0.0.0/8", "allow 192.0.2.1", "deny all"]
basic_auth_file = "users"
realm = "admin"
request_headers = { set = { "X-Real-IP" = "$remote_addr", "Authorization" = "" }, add = { "X-Id" = "$request_id" }, remove = ["Cookie"] }
response_headers = { set = { "X-Frame-Options" = "DENY" }, remove = ["X-Powered-By"], always = true }
compress = false
error_pages = { "502" = "502.html", "404" = "@app" }
intercept_errors = true
access_log = false

[[routes]]
path_prefix = "/healthz"
return = 200
body = "ok\n"
`
	path := filepath.Join(dir, "edge.toml")
	os.WriteFile(path, []byte(text), 0o644)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if r.MaxBodyBytes == nil || *r.MaxBodyBytes != 0 || r.BufferRequest || r.WebSocket || r.Compress || r.AccessLog {
		t.Errorf("switches not decoded: %+v", r)
	}
	if r.ErrorPages["502"] != filepath.Join(dir, "502.html") || r.BasicAuthFile != filepath.Join(dir, "users") {
		t.Errorf("paths not resolved against the config folder: %q %q", r.ErrorPages["502"], r.BasicAuthFile)
	}
	if h := cfg.Routes[1]; h.Return != 200 || h.ContentType != "text/plain; charset=utf-8" || !h.Compress {
		t.Errorf("second route defaults: %+v", h)
	}
}

// wantParseErrors checks that text is refused with every one of want in
// the error text.
func wantParseErrors(t *testing.T, text string, want []string) {
	t.Helper()
	_, err := Parse("f.toml", []byte(text))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error text lacks %q:\n%s", w, err)
		}
	}
}
