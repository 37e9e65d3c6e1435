package main

import (
	"strings"
	"testing"
)

// TestConfigCheckRefusesBadHtpasswd: edgeproxy -t names the key, the
// config line, the htpasswd file and its line.
func TestConfigCheckRefusesBadHtpasswd(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "htpasswd", "ann:{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=\nbob:plaintext\n")
	cfg := writeFile(t, dir, "edge.toml", `[upstreams.a]
servers = ["127.0.0.1:9001"]
[[routes]]
path_prefix = "/"
upstream = "a"
basic_auth_file = "htpasswd"
`)
	out, errOut, code := runBinary(t, "-t", "-config", cfg)
	if code != 1 || strings.Contains(out, "OK") {
		t.Fatalf("bad htpasswd: exit %d, stdout %q", code, out)
	}
	if want := cfg + ":6:1: routes[0].basic_auth_file: htpasswd: line 2: user \"bob\": unsupported"; !strings.Contains(errOut, want) {
		t.Errorf("errors lack %q:\n%s", want, errOut)
	}
	writeFile(t, dir, "htpasswd", "ann:{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=\n")
	if out, errOut, code := runBinary(t, "-t", "-config", cfg); code != 0 {
		t.Errorf("good htpasswd: exit %d %q %q", code, out, errOut)
	}
}
