package proxy

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// siteDir is a small site: an index, assets, a precompressed asset, a
// folder, and symlinks inside and outside the root.
func siteDir(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "site")
	outside = filepath.Join(base, "secret.txt")
	files := map[string]string{
		"index.html":                           "<h1>home</h1>",
		"app.js":                               strings.Repeat("console.log(1);\n", 100),
		"app.js.gz":                            "gzipped-bytes",
		"style.css":                            "body{}",
		"docs/index.html":                      "<h1>docs</h1>",
		"data.bin":                             "0123456789",
		".well-known/acme-challenge/token-abc": "token-abc.key",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The .gz sibling must not be older than the file it stands for.
	later := time.Now().Add(time.Second)
	os.Chtimes(filepath.Join(root, "app.js.gz"), later, later)
	os.WriteFile(outside, []byte("top secret"), 0o644)
	os.Symlink(outside, filepath.Join(root, "escape-abs"))
	os.Symlink("../secret.txt", filepath.Join(root, "escape-rel"))
	os.Symlink("style.css", filepath.Join(root, "inside-link.css"))
	return root, outside
}

func TestStaticFiles(t *testing.T) {
	root, _ := siteDir(t)
	rec := &recorder{}
	up := upstreamServer(t, rec.handler(nil))
	addr := routeProxy(t, addrOf(up),
		RouteOptions{PathPrefix: "/", Root: root, Expires: time.Hour},
		RouteOptions{PathPrefix: "/api/", Upstream: "up"},
		RouteOptions{PathPrefix: "/.well-known/acme-challenge/", Root: root},
	)
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		req.Header.Set("Accept-Encoding", "identity") // unless the case sets it
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	tests := []struct {
		name, method, path string
		hdr                []string
		status             int
		body, ctype        string
	}{
		{"index", "GET", "/", nil, 200, "<h1>home</h1>", "text/html"},
		{"asset", "GET", "/style.css", nil, 200, "body{}", "text/css"},
		{"folder index", "GET", "/docs/", nil, 200, "<h1>docs</h1>", "text/html"},
		{"missing", "GET", "/nope.txt", nil, 404, "", ""},
		{"raw dot-dot", "GET", "/../secret.txt", nil, 400, "", ""},
		{"encoded dot-dot", "GET", "/%2e%2e/secret.txt", nil, 400, "", ""},
		{"encoded dot-dot inside", "GET", "/docs/%2E%2E/%2e%2e/secret.txt", nil, 400, "", ""},
		{"overlong UTF-8 dots", "GET", "/%c0%ae%c0%ae/secret.txt", nil, 404, "", ""}, // not dots: a name that does not exist
		{"NUL", "GET", "/style.css%00.png", nil, 400, "", ""},
		{"doubled slashes", "GET", "//docs//index.html", nil, 200, "<h1>docs</h1>", "text/html"},
		{"dot segments", "GET", "/docs/./../style.css", nil, 200, "body{}", "text/css"},
		{"absolute symlink out", "GET", "/escape-abs", nil, 404, "", ""},
		{"relative symlink out", "GET", "/escape-rel", nil, 404, "", ""},
		{"symlink inside", "GET", "/inside-link.css", nil, 200, "body{}", "text/css"},
		{"range", "GET", "/data.bin", []string{"Range", "bytes=2-5"}, 206, "2345", "application/octet-stream"},
		{"suffix range", "GET", "/data.bin", []string{"Range", "bytes=-3"}, 206, "789", ""},
		{"bad range", "GET", "/data.bin", []string{"Range", "bytes=50-60"}, 416, "", ""},
		{"precompressed", "GET", "/app.js", []string{"Accept-Encoding", "gzip, br;q=0"}, 200, "gzipped-bytes", "application/javascript"},
		{"acme next to the app", "GET", "/.well-known/acme-challenge/token-abc", nil, 200, "token-abc.key", "application/octet-stream"},
		{"post to files", "POST", "/style.css", nil, 405, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(tc.method, tc.path, tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tc.status, body)
			}
			if tc.body != "" && body != tc.body {
				t.Fatalf("body %q, want %q", body, tc.body)
			}
			if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
				t.Fatalf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if strings.Contains(body, "top secret") {
				t.Fatal("served a file outside the root")
			}
		})
	}

	resp, _ := do("GET", "/docs")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "/docs/" {
		t.Errorf("folder without slash: %d %q, want 301 /docs/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = do("GET", "/app.js", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("precompressed: encoding %q vary %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	resp, body := do("GET", "/app.js")
	if resp.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(body, "console.log") {
		t.Errorf("identity client got the .gz sibling")
	}

	// Validators and conditional requests.
	resp, _ = do("GET", "/style.css")
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" || resp.Header.Get("Cache-Control") != "max-age=3600" || resp.Header.Get("Expires") == "" {
		t.Fatalf("validators: ETag %q Last-Modified %q Cache-Control %q", etag, lm, resp.Header.Get("Cache-Control"))
	}
	if resp, _ := do("GET", "/style.css", "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	if resp, _ := do("GET", "/style.css", "If-Modified-Since", lm); resp.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d", resp.StatusCode)
	}
	if resp, body := do("GET", "/data.bin", "Range", "bytes=0-1", "If-Range", `"other"`); resp.StatusCode != 200 || body != "0123456789" {
		t.Errorf("If-Range with another ETag: %d %q, want the whole file", resp.StatusCode, body)
	}
	resp, body = do("HEAD", "/style.css")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != 6 {
		t.Errorf("HEAD: %d body %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
	// The API next to the files still proxies.
	if resp, _ := do("GET", "/api/x"); resp.StatusCode != 200 || rec.last(t).uri != "/api/x" {
		t.Errorf("proxied route next to files: %d", resp.StatusCode)
	}
}

func TestTryFilesAndInternalRoutes(t *testing.T) {
	root, _ := siteDir(t)
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/download/"):
			w.Header().Set("X-Accel-Redirect", "/protected/secret.bin")
			w.Header().Set("Content-Disposition", `attachment; filename="d.bin"`)
			w.Header().Set("Content-Type", "application/x-report")
			io.WriteString(w, "app body that must not be seen")
		default:
			fmt.Fprintf(w, "app %s", r.URL.Path)
		}
	})
	addr := routeProxy(t, addrOf(up),
		RouteOptions{PathPrefix: "/", Root: root, TryFiles: []string{"$uri", "$uri/", "/index.html"}},
		RouteOptions{PathPrefix: "/app/", Root: root, TryFiles: []string{"$uri", "@backend"}},
		RouteOptions{PathPrefix: "/strict/", Root: root, TryFiles: []string{"$uri", "=404"}},
		RouteOptions{Name: "backend", Upstream: "up"},
		RouteOptions{PathPrefix: "/download/", Upstream: "up"},
		RouteOptions{PathPrefix: "/protected/", Root: privateDir(t), Internal: true},
	)
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/style.css", 200, "body{}"},
		{"/docs/", 200, "<h1>docs</h1>"},
		{"/some/spa/route", 200, "<h1>home</h1>"}, // SPA fallback
		{"/app/missing", 200, "app /app/missing"}, // falls back to the named proxy route
		{"/strict/missing", 404, ""},
		{"/protected/secret.bin", 404, ""}, // internal: asked for directly, 404 as in nginx
	}
	for _, tc := range tests {
		resp, body := get(t, "http://"+addr+tc.path)
		if resp.StatusCode != tc.status || (tc.body != "" && body != tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
	resp, body := get(t, "http://"+addr+"/download/1")
	if resp.StatusCode != 200 || body != "private bytes" || resp.Header.Get("Content-Type") != "application/x-report" {
		t.Fatalf("X-Accel-Redirect: %d %q (%s), want the internal file with the upstream's type", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("X-Accel-Redirect") != "" || resp.Header.Get("Content-Disposition") != `attachment; filename="d.bin"` {
		t.Errorf("X-Accel-Redirect %q reached the client, or Content-Disposition %q was lost",
			resp.Header.Get("X-Accel-Redirect"), resp.Header.Get("Content-Disposition"))
	}
}

// privateDir holds protected/secret.bin, served only through internal routes.
func privateDir(t *testing.T) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "protected"), 0o755)
	os.WriteFile(filepath.Join(dir, "protected", "secret.bin"), []byte("private bytes"), 0o644)
	return dir
}
