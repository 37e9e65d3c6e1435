package nginx

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParseTokensLikeNginx(t *testing.T) {
	src := "# comment\n" +
		"http {\n" +
		"  add_header X-A \"a b;c\" always;   # trailing\n" +
		"  add_header 'X-B' 'it\\'s' ;\n" +
		"  set $x ${host}x;\n" +
		"  return 200 \"tab\\tnl\\nq\\\"\\d\";\n" +
		"  proxy_set_header\n    Connection\n    \"\";\n" +
		"  if ($http_x = \"v w\") { return 403; }\n" +
		"}\n"
	tree, err := ParseBytes("t.conf", []byte(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	http := tree[0]
	if http.Name != "http" || !http.HasBlock || http.Line != 2 || http.EndLine != 2 {
		t.Fatalf("http: %+v", http)
	}
	want := []struct {
		name string
		args []string
		line int
		end  int
	}{
		{"add_header", []string{"X-A", "a b;c", "always"}, 3, 3},
		{"add_header", []string{"X-B", "it's"}, 4, 4},
		{"set", []string{"$x", "${host}x"}, 5, 5},
		{"return", []string{"200", "tab\tnl\nq\"\\d"}, 6, 6},
		{"proxy_set_header", []string{"Connection", ""}, 7, 9},
		{"if", []string{"($http_x", "=", "v w", ")"}, 10, 10},
	}
	if len(http.Block) != len(want) {
		t.Fatalf("got %d directives, want %d", len(http.Block), len(want))
	}
	for i, w := range want {
		d := http.Block[i]
		if d.Name != w.name || !reflect.DeepEqual(d.Args, w.args) || d.Line != w.line || d.EndLine != w.end {
			t.Errorf("directive %d: got %s %q lines %d-%d, want %s %q lines %d-%d", i, d.Name, d.Args, d.Line, d.EndLine, w.name, w.args, w.line, w.end)
		}
	}
}

func TestParseIncludesGlobsInOrderRelativeToTheMainFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "nginx.conf", "http {\n  include sites/*.conf;\n  include extra.conf;\n}\n")
	write(t, dir, "sites/b.conf", "server { listen 2; }\n")
	write(t, dir, "sites/a.conf", "server { listen 1; }\n")
	write(t, dir, "sites/.hidden.conf", "server { listen 9; }\n")
	write(t, dir, "sites/a.conf.bak", "server { listen 8; }\n")
	// Relative includes inside an included file are also taken from the
	// main file's folder, as nginx does.
	write(t, dir, "extra.conf", "include sites/nested/*.conf;\n")
	write(t, dir, "sites/nested/c.conf", "server {\n  listen 3;\n}\n")
	tree, err := ParseFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range tree[0].Block {
		got = append(got, filepath.Base(s.File)+":"+strconv.Itoa(s.Line)+":"+s.Block[0].Args[0]+"@"+strconv.Itoa(s.Block[0].Line))
	}
	want := []string{"a.conf:1:1@1", "b.conf:1:2@1", "c.conf:1:3@2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestParseIncludeCycleIsAnErrorNotALoop(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "nginx.conf", "include nginx.conf;\n")
	_, err := ParseFile(filepath.Join(dir, "nginx.conf"))
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "too deep") {
		t.Fatalf("got %v", err)
	}
}

// rejected lists configs nginx refuses, each checked against nginx -t
// itself when nginx is installed: the converter must name nginx's line.
var rejected = []struct {
	name, src string
	// syntax: the reader stops (exit 1); else a finding says "nginx rejects".
	syntax bool
}{
	{"missing brace", "events {}\nhttp {\n  server {\n    listen 80;\n  }\n", true},
	{"extra brace", "events {}\nhttp {\n}\n}\n", true},
	{"brace in args", "events {}\nhttp {\n  server { listen 80 }\n}\n", true},
	{"text after quote", "events {}\nhttp {\n  add_header X \"a\"b;\n}\n", true},
	{"unterminated quote", "events {}\nhttp {\n  add_header X \"abc;\n}\n", true},
	{"semicolon alone", "events {}\nhttp {\n  ;\n}\n", true},
	{"unknown directive", "events {}\nhttp {\n  server {\n    listen 80;\n    bogus_thing 1;\n  }\n}\n", false},
	{"unknown multi-line", "events {}\nhttp {\n  server {\n    bogus_thing\n      1\n      2;\n  }\n}\n", false},
	{"wrong context", "events {}\nhttp {\n  proxy_pass http://127.0.0.1:1;\n}\n", false},
	{"argument count", "events {}\nhttp {\n  server {\n    listen 80;\n    location / {\n      proxy_pass;\n    }\n  }\n}\n", false},
	{"block without brace", "events {}\nhttp {\n  server;\n}\n", false},
}

func TestRejectedConfigsNameNginxsLine(t *testing.T) {
	nginxBin, _ := exec.LookPath("nginx")
	if nginxBin == "" {
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			nginxBin = "/usr/sbin/nginx"
		}
	}
	lineRE := regexp.MustCompile(`:(\d+)\s*$`)
	for _, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := write(t, dir, "nginx.conf", tc.src)
			var line int
			var what string
			res, err := Convert(path, Options{Caps: Caps{}})
			var se *SyntaxError
			switch {
			case tc.syntax:
				if !errors.As(err, &se) {
					t.Fatalf("want a syntax error, got %v", err)
				}
				line, what = se.Line, se.Error()
			case err != nil:
				t.Fatalf("want findings, got error %v", err)
			default:
				for _, f := range res.Findings {
					if strings.Contains(f.Why, "nginx rejects") {
						line, what = f.Line, f.String()
						break
					}
				}
				if line == 0 {
					t.Fatalf("no rejection reported: %v", res.Findings)
				}
			}
			if nginxBin == "" {
				t.Logf("nginx not installed; converter says %s", what)
				return
			}
			out, err := exec.Command(nginxBin, "-t", "-q", "-p", dir, "-e", "stderr", "-c", path, "-g", "pid "+dir+"/pid;").CombinedOutput()
			if err == nil {
				t.Fatalf("nginx accepts the config:\n%s", out)
			}
			first := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
			m := lineRE.FindStringSubmatch(first)
			if m == nil {
				t.Fatalf("no line in nginx's answer %q", first)
			}
			if n, _ := strconv.Atoi(m[1]); n != line {
				t.Fatalf("nginx: %s\nconverter: %s", first, what)
			}
		})
	}
}

func write(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
