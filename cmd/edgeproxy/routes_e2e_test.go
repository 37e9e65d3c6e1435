package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A config in the shape of a moved nginx site — templated by the
// environment, split by include, with files, a single-page app fallback,
// fixed answers, redirects and header edits — served by the binary, then
// changed through an included file and SIGHUP.
func TestNginxShapedConfigThroughTheBinary(t *testing.T) {
	var seen http.Header
	app := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("X-Powered-By", "app")
		fmt.Fprintf(w, "app %s", r.URL.RequestURI())
	})
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "www", "assets"), 0o755)
	os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755)
	writeFile(t, dir, "www/index.html", "<h1>spa</h1>")
	writeFile(t, dir, "www/assets/app.css", "body{}")
	t.Setenv("EDGE_APP_ADDR", app)
	t.Setenv("EDGE_STAGE", "")
	cfg := writeFile(t, dir, "edge.toml", `include = ["conf.d/*.toml"]
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
access_log = "off"
[upstreams.app]
servers = ["${EDGE_APP_ADDR}"]

[[routes]]
host = "old.example.com"
path_prefix = "/"
return = 301
location = "https://new.example.com$request_uri"

[[routes]]
path_exact = "/healthz"
return = 200
body = "ok\n"

[[routes]]
path_prefix = "/"
root = "www"
try_files = ["$uri", "$uri/", "/index.html"]
expires = "1h"

[[routes]]
path_regex = "^/api/v([0-9]+)/(.*)$"
upstream = "app"
rewrite = "/$2"
request_headers = { set = { "X-Api-Version" = "$1", "X-Real-IP" = "$remote_addr", "X-Stage" = "${EDGE_STAGE:-dev}" } }
response_headers = { set = { "X-Frame-Options" = "DENY" }, remove = ["X-Powered-By"] }
`)
	writeFile(t, dir, "conf.d/extra.toml", "[[routes]]\npath_prefix = \"/extra/\"\nreturn = 200\nbody = \"v1\"\n")

	if out, errOut, code := runBinary(t, "-t", "-config", cfg); code != 0 {
		t.Fatalf("-t: %d %s %s", code, out, errOut)
	}
	p := start(t, cfg)
	base := "http://" + p.addr
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	req, _ := http.NewRequest("GET", base+"/a/b?c=1", nil)
	req.Host = "old.example.com"
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://new.example.com/a/b?c=1" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]string{
		"/healthz":         "ok\n",
		"/assets/app.css":  "body{}",
		"/some/spa/page":   "<h1>spa</h1>",
		"/api/v2/users?x=": "app /users?x=",
		"/extra/":          "v1",
	} {
		if code, body := getBody(t, base+path); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}
	if seen.Get("X-Api-Version") != "2" || seen.Get("X-Real-Ip") != "127.0.0.1" || seen.Get("X-Stage") != "dev" {
		t.Errorf("upstream headers: %v", seen)
	}
	resp, err = client.Get(base + "/api/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Powered-By") != "" {
		t.Errorf("response headers: %v", resp.Header)
	}

	// An included file changes; SIGHUP re-reads it.
	writeFile(t, dir, "conf.d/extra.toml", "[[routes]]\npath_prefix = \"/extra/\"\nreturn = 200\nbody = \"v2\"\n")
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded", 10*time.Second)
	if code, body := getBody(t, base+"/extra/"); code != 200 || body != "v2" {
		t.Errorf("after SIGHUP: %d %q, want v2", code, body)
	}
	// A broken include is refused; the running config keeps serving.
	writeFile(t, dir, "conf.d/extra.toml", "[[routes]]\npath_prefix = \"/extra/\"\nreturn = 200\nbody = \"$nope\"\n")
	p.signal(syscall.SIGHUP)
	m := p.waitLog("reload refused", 10*time.Second)
	if errs := fmt.Sprint(m); !strings.Contains(errs, "extra.toml:4:1: routes[0].body: unknown variable $nope") {
		t.Errorf("refusal does not name the include's line: %s", errs)
	}
	if code, body := getBody(t, base+"/extra/"); code != 200 || body != "v2" {
		t.Errorf("after a refused reload: %d %q, want v2", code, body)
	}
}
