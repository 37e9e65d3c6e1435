package nginx

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgeproxy/edgeproxy/config"
)

var fuzzFinding = regexp.MustCompile(`^[^\n]+:\d+: [^\n]+: (blocking|ignored): [^\n]*$`)

// FuzzConvert feeds mutated corpus configs to the converter: it must never
// panic, a config it cannot read is a SyntaxError with a line, every
// finding is one SPEC-form line, and what it writes loads in config.
func FuzzConvert(f *testing.F) {
	confs, _ := filepath.Glob("testdata/nginx/*/nginx.conf")
	fill := strings.NewReplacer("{{PORT}}", "8080", "{{DIR}}", "/nonexistent")
	for _, c := range confs {
		data, err := os.ReadFile(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(placeholderUP.ReplaceAllString(fill.Replace(string(data)), "127.0.0.1:9001"))
	}
	for _, r := range rejected {
		f.Add(r.src)
	}
	caps, err := DetectCaps()
	if err != nil {
		f.Fatal(err)
	}
	root := f.TempDir() // empty: relative includes find nothing
	f.Fuzz(func(t *testing.T, src string) {
		tree, err := ParseBytes("fuzz.conf", []byte(src), root)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 {
				t.Fatalf("unreadable input must be a SyntaxError with a line: %v", err)
			}
			return
		}
		res, err := ConvertTree(tree, root, Options{Caps: caps})
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range res.Findings {
			if s := fd.String(); !fuzzFinding.MatchString(s) {
				t.Fatalf("finding not one SPEC line: %q", s)
			}
		}
		path := filepath.Join(root, "out.toml")
		if _, err := config.Parse(path, res.TOML); err != nil && !onlyMissingFiles(err) {
			t.Fatalf("output refused by config: %v\n%s", err, res.TOML)
		}
	})
}

// onlyMissingFiles: the config names files (certificates, error pages,
// htpasswd) that do not exist where the fuzzer runs.
func onlyMissingFiles(err error) bool {
	var es config.Errors
	if !errors.As(err, &es) {
		return false
	}
	for _, e := range es {
		if !strings.Contains(e.Msg, "cannot read") && !strings.Contains(e.Msg, "no such file") {
			return false
		}
	}
	return true
}
