package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeproxy/edgeproxy/config"
)

// The file scenario's configs: edgeproxy's is a valid config whose
// /static/ route has the bench's root, nginx's serves the same root with
// sendfile on, and the file there is the size the probe wants.
func TestFileScenarioConfigs(t *testing.T) {
	r := newRunner(settings{cores: 1})
	r.dir = t.TempDir()
	r.upstreamAddr, r.redisAddr = "127.0.0.1:1", "127.0.0.1:2"
	if err := r.writeStaticFile(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(r.staticRoot(), "static", "f4k.bin"))
	if err != nil || fi.Size() != staticSize {
		t.Fatalf("static file: %v %v", fi, err)
	}
	text := r.edgeConfig("127.0.0.1:3", "127.0.0.1:4", "off", dataSample) + r.edgeFiles()
	cfg, err := config.Parse(filepath.Join(r.dir, "edge.toml"), []byte(text))
	if err != nil {
		t.Fatalf("edgeproxy files config: %v\n%s", err, text)
	}
	found := false
	for _, rt := range cfg.Routes {
		if rt.PathPrefix == "/static/" && rt.Root == r.staticRoot() {
			found = true
		}
	}
	if !found {
		t.Errorf("no /static/ route with root %s: %+v", r.staticRoot(), cfg.Routes)
	}
	ngx := r.nginxConfig("127.0.0.1:5")
	want := "location /static/ {\n            root " + r.staticRoot() + ";\n            sendfile on;\n            tcp_nopush on;\n"
	if !strings.Contains(ngx, want) {
		t.Errorf("nginx config lacks %q", want)
	}
}

// The probe passes a 200 with the file's size and fails anything else, so
// a system is never measured answering errors.
func TestProbeFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/ok":
			w.Write(make([]byte, staticSize))
		case "/short":
			w.Write(make([]byte, staticSize-1))
		default:
			http.NotFound(w, req)
		}
	}))
	defer srv.Close()
	probe := probeFile(staticSize)
	if note, err := probe(srv.URL + "/ok"); err != nil || !strings.Contains(note, "status 200, 4096 body bytes") {
		t.Errorf("ok: %q %v", note, err)
	}
	for _, p := range []string{"/short", "/missing"} {
		if _, err := probe(srv.URL + p); err == nil {
			t.Errorf("%s: no error", p)
		}
	}
}
