package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvironmentVariablesInStrings(t *testing.T) {
	text := `
[server]
listen = "${LISTEN_ADDR:-0.0.0.0:8080}"
[upstreams.app]
servers = ["${APP_HOST}:${APP_PORT:-8000}"]
[[routes]]
path_prefix = "/"
upstream = "app"
request_headers = { set = { "X-Env" = "${STAGE}", "X-Real-IP" = "$remote_addr", "X-Cost" = "$$5", "X-Host" = "${host}" } }
`
	cfg, err := parse("f.toml", []byte(text), envOf(map[string]string{"APP_HOST": "app.internal", "STAGE": "prod", "APP_PORT": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "0.0.0.0:8080" {
		t.Errorf("listen = %q", cfg.Server.Listen)
	}
	if got := cfg.Upstreams["app"].Servers[0]; got != "app.internal:8000" {
		t.Errorf("server = %q (an empty variable takes the default)", got)
	}
	set := cfg.Routes[0].RequestHeaders.Set
	for k, want := range map[string]string{"X-Env": "prod", "X-Real-IP": "$remote_addr", "X-Cost": "$5", "X-Host": "${host}"} {
		if set[k] != want {
			t.Errorf("%s = %q, want %q", k, set[k], want)
		}
	}
	_, err = parse("f.toml", []byte(text), envOf(map[string]string{"STAGE": "x"}))
	if err == nil || !strings.Contains(err.Error(), "f.toml:5:1: upstreams.app.servers[0]: environment variable APP_HOST is not set") {
		t.Fatalf("unset variable: %v", err)
	}
}

func TestIncludeMergesUpstreamsAndRoutes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("edge.toml", "include = [\"conf.d/*.toml\"]\n[upstreams.main]\nservers = [\"127.0.0.1:1\"]\n[[routes]]\npath_prefix = \"/\"\nupstream = \"main\"\n")
	write("conf.d/b.toml", "[[routes]]\npath_prefix = \"/b/\"\nupstream = \"api\"\n")
	write("conf.d/a.toml", "[upstreams.api]\nservers = [\"127.0.0.1:2\"]\n[[routes]]\npath_prefix = \"/a/\"\nupstream = \"api\"\n")
	cfg, err := Load(filepath.Join(dir, "edge.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, r := range cfg.Routes {
		prefixes = append(prefixes, r.PathPrefix)
	}
	if got := strings.Join(prefixes, " "); got != "/ /a/ /b/" {
		t.Errorf("routes in order %q, want the main file's, then a.toml's, then b.toml's", got)
	}
	if cfg.Upstreams["api"] == nil || cfg.Upstreams["api"].Retries != 1 {
		t.Errorf("included upstream missing or without defaults")
	}

	// Errors name the included file, its line and its own key.
	write("conf.d/c.toml", "[[routes]]\npath_prefix = \"/c/\"\n\nupstream = \"nope\"\n[server]\nlisten = \"x\"\n")
	_, err = Load(filepath.Join(dir, "edge.toml"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		filepath.Join(dir, "conf.d/c.toml") + ":4:1: routes[0].upstream: names upstream \"nope\"",
		filepath.Join(dir, "conf.d/c.toml") + ":5:1: server: an included file holds only",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	os.Remove(filepath.Join(dir, "conf.d/c.toml"))
	write("conf.d/d.toml", "[upstreams.main]\nservers = [\"127.0.0.1:3\"]\n")
	if _, err = Load(filepath.Join(dir, "edge.toml")); err == nil || !strings.Contains(err.Error(), "d.toml:1:1: upstreams.main: upstream main is already defined in") {
		t.Errorf("duplicate upstream: %v", err)
	}
}
