package nginx

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// converted is one conversion of a snippet, decoded for assertions.
type converted struct {
	toml     string
	findings []string
	doc      map[string]any
}

// convertSnippet converts an http block body (servers, upstreams …) with
// the given capabilities.
func convertSnippet(t *testing.T, httpBody string, caps Caps) converted {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.conf")
	if err := os.WriteFile(path, []byte("events {}\nhttp {\n"+httpBody+"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Convert(path, Options{Caps: caps})
	if err != nil {
		t.Fatal(err)
	}
	var c converted
	c.toml = string(res.TOML)
	for _, f := range res.Findings {
		f.File = filepath.Base(f.File)
		c.findings = append(c.findings, f.String())
	}
	if _, err := toml.Decode(c.toml, &c.doc); err != nil {
		t.Fatalf("output is not TOML: %v\n%s", err, c.toml)
	}
	return c
}

func (c converted) routes() []map[string]any {
	rs, _ := c.doc["routes"].([]map[string]any)
	return rs
}

func (c converted) route(t *testing.T, i int) map[string]any {
	t.Helper()
	rs := c.routes()
	if i >= len(rs) {
		t.Fatalf("want route %d, have %d:\n%s\nfindings:\n%s", i, len(rs), c.toml, strings.Join(c.findings, "\n"))
	}
	return rs[i]
}

func (c converted) table(t *testing.T, path ...string) map[string]any {
	t.Helper()
	m := c.doc
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			t.Fatalf("no table %v in\n%s", path, c.toml)
		}
		m = next
	}
	return m
}

// finding returns the finding for directive at line, or "".
func (c converted) finding(directive string, line int) string {
	prefix := "t.conf:" + strconv.Itoa(line) + ": " + directive + ": "
	for _, f := range c.findings {
		if strings.HasPrefix(f, prefix) {
			return f
		}
	}
	return ""
}

func (c converted) noBlocking(t *testing.T) {
	t.Helper()
	for _, f := range c.findings {
		if strings.Contains(f, ": blocking: ") {
			t.Fatalf("unexpected blocking finding %q\n%s", f, c.toml)
		}
	}
}
