package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `edgeproxy convert nginx` exits 0 when everything is carried over, 3 when
// something blocking was left out, 1 for unreadable input (SPEC §2).
func TestConvertNginxExitCodes(t *testing.T) {
	dir := t.TempDir()
	conf := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	carried := conf("carried.conf", "worker_processes 2;\nevents {}\nhttp {\n  server {\n    listen 8080;\n    location / { proxy_pass http://127.0.0.1:9001; proxy_set_header Host $http_host; }\n  }\n}\n")
	blocked := conf("blocked.conf", "events {}\nhttp {\n  server {\n    listen 8080;\n    location / { fastcgi_pass 127.0.0.1:9000; }\n  }\n}\n")
	broken := conf("broken.conf", "events {}\nhttp {\n  server {\n")
	out := filepath.Join(dir, "out.toml")
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"convert", "nginx", "-o", out, carried}, 0, "carried.conf:1: worker_processes: ignored: "},
		{[]string{"convert", "nginx", blocked}, 3, "blocked.conf:5: fastcgi_pass: blocking: edgeproxy forwards HTTP only"},
		{[]string{"convert", "nginx", broken}, 1, "broken.conf:4: nginx rejects this config: unexpected end of file, expecting \"}\""},
		{[]string{"convert", "nginx", filepath.Join(dir, "missing.conf")}, 1, "no such file"},
		{[]string{"convert", "apache", carried}, 2, "usage"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.stderr)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-t", "-config", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("-t on the conversion: %d %s", code, stderr.String())
	}
}
