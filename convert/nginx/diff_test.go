package nginx

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The differential test: every config under testdata/nginx is converted
// with the edgeproxy binary, then nginx runs the original and edgeproxy the
// conversion in front of the same recording upstreams and file roots, and
// each request of the config's requests.txt is sent to both.
//
// A config whose conversion reports something blocking (exit 3) is not
// compared: the test checks the report instead and names what blocks, so
// the config starts being compared the day edgeproxy learns the feature.

// intendedDifferences are the ways edgeproxy differs from nginx on purpose;
// the comparison below leaves exactly these out.
var intendedDifferences = []string{
	"Server: edgeproxy names itself (SPEC §4); nginx says nginx",
	"Date, Connection, Keep-Alive, Content-Length, Transfer-Encoding: framing, not content",
	"X-Forwarded-For/-Proto/-Host and X-Request-Id reach the upstream from edgeproxy always; compared only where the config sets them",
	"nginx sends HTTP/1.0 with Connection: close upstream unless configured; edgeproxy keeps HTTP/1.1 connections",
	"nginx's own HTML error and redirect pages (no upstream involved): only status, Location and the config's own headers are compared, not the page",
	"gzip bytes: compared after decompression (the Content-Encoding header itself is compared)",
	"the port in an absolute Location: each proxy names its own listener's (both are written :PORT)",
	"auth_request: edgeproxy's sub-request keeps the client's method (SPEC §10), nginx's is always GET",
	"nginx's 401/403/500 page after an auth_request denial is its own HTML page: compared as nginx's error pages are",
	"limit_except … { deny all; }: edgeproxy's methods answer 405 with Allow where nginx answers 403 (SPEC §8 methods)",
}

// knownDifferences are differences this test found in edgeproxy itself,
// reported to the proxy's owners and awaiting a fix there: each is logged
// (with what differed), not failed, and counted apart from agreement.
var knownDifferences = map[string]string{}

// responseHeaders are compared on every answer the upstream or a return
// with a body produced; a config's `compare:` line adds more.
var responseHeaders = []string{"Location", "Content-Type", "Cache-Control", "Content-Encoding", "Upgrade"}

type diffSpec struct {
	expect          string
	compare         []string
	upstreamHeaders []string
	requests        []diffRequest
}

type diffRequest struct {
	line    string
	method  string
	target  string
	host    string
	headers [][2]string
	body    int
}

func readSpec(t *testing.T, path string) diffSpec {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s diffSpec
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "expect:"):
			s.expect = strings.TrimSpace(strings.TrimPrefix(line, "expect:"))
		case strings.HasPrefix(line, "compare:"):
			s.compare = strings.Fields(strings.TrimPrefix(line, "compare:"))
		case strings.HasPrefix(line, "upstream-headers:"):
			s.upstreamHeaders = strings.Fields(strings.TrimPrefix(line, "upstream-headers:"))
		default:
			f := strings.Fields(line)
			if len(f) < 2 {
				t.Fatalf("%s: bad request line %q", path, line)
			}
			r := diffRequest{line: line, method: f[0], target: f[1]}
			for _, kv := range f[2:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("%s: bad field %q", path, kv)
				}
				switch k {
				case "Host":
					r.host = v
				case "body":
					r.body, _ = strconv.Atoi(v)
				default:
					r.headers = append(r.headers, [2]string{k, strings.ReplaceAll(v, "_", " ")})
				}
			}
			s.requests = append(s.requests, r)
		}
	}
	return s
}

// upstreamRecord is what a recording upstream saw.
type upstreamRecord struct {
	group, method, target, host string
	header                      http.Header
	bodyLen                     int
}

type recorder struct {
	mu   sync.Mutex
	seen map[string][]upstreamRecord // guards: by X-Diff-Seq
}

func (rec *recorder) handler(group string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			rec.record(group, r, 0)
			rec.echo(w, group)
			return
		}
		body, _ := io.ReadAll(r.Body)
		rec.record(group, r, len(body))
		h := w.Header()
		h.Set("X-Upstream", group)
		h.Set("X-Powered-By", "recording-upstream")
		h.Set("Cache-Control", "private, max-age=0")
		switch {
		case strings.HasPrefix(r.URL.Path, "/code/") || strings.Contains(r.URL.Path, "/code/"):
			code, _ := strconv.Atoi(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			if code < 200 || code > 599 {
				code = 500
			}
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(code)
			fmt.Fprintf(w, "%s says %d\n", group, code)
		case r.URL.Path == authCheck:
			// An auth service: X-Token good passes as alice, bad is
			// forbidden, error fails, none asks for credentials.
			switch r.Header.Get("X-Token") {
			case "good":
				h.Set("X-User", "alice")
				w.WriteHeader(http.StatusOK)
			case "bad":
				w.WriteHeader(http.StatusForbidden)
			case "error":
				w.WriteHeader(http.StatusBadGateway)
			default:
				h.Set("WWW-Authenticate", `Bearer realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
			}
		case strings.HasPrefix(r.URL.Path, "/download/"):
			// The app checks access, then lets the proxy send the file.
			h.Set("X-Accel-Redirect", "/protected/"+strings.TrimPrefix(r.URL.Path, "/download/"))
			h.Set("Content-Type", "text/plain; charset=utf-8")
		case strings.HasSuffix(r.URL.Path, "/html"):
			h.Set("Content-Type", "text/html")
			io.WriteString(w, strings.Repeat("<p>"+group+" compressible text</p>\n", 200))
		case strings.HasSuffix(r.URL.Path, "/small"):
			h.Set("Content-Type", "text/html")
			io.WriteString(w, "<p>small</p>\n")
		default:
			h.Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "%s %s %s %d\n", group, r.Method, r.RequestURI, len(body))
		}
	})
}

func (rec *recorder) record(group string, r *http.Request, bodyLen int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seq := r.Header.Get("X-Diff-Seq")
	rec.seen[seq] = append(rec.seen[seq], upstreamRecord{group: group, method: r.Method, target: r.RequestURI,
		host: r.Host, header: r.Header.Clone(), bodyLen: bodyLen})
}

// echo answers a WebSocket handshake with 101 and then echoes one line,
// prefixed with the upstream's name, over the raw connection.
func (rec *recorder) echo(w http.ResponseWriter, group string) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	rw.Flush()
	line, err := rw.ReadString('\n')
	if err != nil {
		return
	}
	io.WriteString(rw, group+" echoes "+line)
	rw.Flush()
}

// sendUpgrade sends a WebSocket handshake over a raw connection and, on a
// 101, one line through the tunnel; the echo becomes the answer's body.
func sendUpgrade(t *testing.T, addr string, r diffRequest, seq string) answerSeen {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	host := "example.test"
	if r.host != "" {
		host = r.host
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Diff-Seq: %s\r\n\r\n", r.target, host, seq)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return answerSeen{status: -1, header: http.Header{"X-Error": {err.Error()}}}
	}
	a := answerSeen{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		a.body, _ = io.ReadAll(resp.Body)
		return a
	}
	io.WriteString(conn, "ping\n")
	line, _ := br.ReadString('\n')
	a.body = []byte(line)
	return a
}

// authCheck is the recording upstreams' auth service path.
const authCheck = "/auth-check"

var placeholderUP = regexp.MustCompile(`\{\{UP:([a-z0-9]+)(?::([0-9]))?\}\}`)

func TestDifferentialAgainstNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nginx and edgeproxy per config")
	}
	bin := buildEdgeproxy(t)
	nginxBin := findNginx()
	cases, err := filepath.Glob("testdata/nginx/*/nginx.conf")
	if err != nil || len(cases) < 25 {
		t.Fatalf("want at least 25 configs in testdata/nginx, got %d (%v)", len(cases), err)
	}
	var agreed, pairs, compared, skipped, known atomic.Int64
	t.Run("corpus", func(t *testing.T) {
		for _, conf := range cases {
			dir := filepath.Dir(conf)
			t.Run(filepath.Base(dir), func(t *testing.T) {
				t.Parallel()
				defer func() {
					if t.Skipped() {
						skipped.Add(1)
					}
				}()
				a, n := runDiffCase(t, bin, nginxBin, dir, &known)
				agreed.Add(int64(a))
				pairs.Add(int64(n))
				compared.Add(1)
			})
		}
	})
	t.Logf("intended differences, left out of every comparison:\n  %s", strings.Join(intendedDifferences, "\n  "))
	t.Logf("%d of %d request pairs agreed, %d known differences (reported); %d configs compared, %d skipped (blocking or no nginx)",
		agreed.Load(), pairs.Load(), known.Load(), compared.Load(), skipped.Load())
}

func findNginx() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

func buildEdgeproxy(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "edgeproxy")
	cmd := exec.Command("go", "build", "-o", out, "../../cmd/edgeproxy")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	return out
}

// copyCase copies dir to dst, filling the placeholders in every file.
func copyCase(t *testing.T, dir, dst string, repl *strings.Replacer) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, []byte(repl.Replace(string(data))), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

var findingLine = regexp.MustCompile(`^[^:]+:\d+: [a-z_0-9]+: (blocking|ignored): .+$`)

// runDiffCase returns the request pairs that agreed and the pairs sent; it
// skips t for a config that is not compared.
func runDiffCase(t *testing.T, bin, nginxBin, dir string, known *atomic.Int64) (int, int) {
	spec := readSpec(t, filepath.Join(dir, "requests.txt"))
	rec := &recorder{seen: map[string][]upstreamRecord{}}

	// Upstreams named by the placeholders, one recording server each.
	pairs := []string{}
	ups := map[string]string{}
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		for _, m := range placeholderUP.FindAllStringSubmatch(string(data), -1) {
			if _, ok := ups[m[0]]; ok {
				continue
			}
			srv := httptest.NewServer(rec.handler(m[1]))
			t.Cleanup(srv.Close)
			ups[m[0]] = strings.TrimPrefix(srv.URL, "http://")
		}
		return nil
	})
	for k, v := range ups {
		pairs = append(pairs, k, v)
	}
	nginxPort := freePort(t)
	nginxDir, edgeDir := filepath.Join(t.TempDir(), "nginx"), filepath.Join(t.TempDir(), "edge")
	copyCase(t, dir, nginxDir, strings.NewReplacer(append(pairs, "{{PORT}}", strconv.Itoa(nginxPort), "{{DIR}}", nginxDir)...))
	copyCase(t, dir, edgeDir, strings.NewReplacer(append(pairs, "{{PORT}}", strconv.Itoa(freePort(t)), "{{DIR}}", edgeDir)...))

	// Convert with the binary, as an operator would.
	out := filepath.Join(edgeDir, "edgeproxy.toml")
	cmd := exec.Command(bin, "convert", "nginx", "-o", out, filepath.Join(edgeDir, "nginx.conf"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code != 3 {
		t.Fatalf("convert: %v\n%s", err, stderr.String())
	}
	var blockingLines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if l == "" {
			continue
		}
		if !findingLine.MatchString(l) {
			t.Errorf("report line not in SPEC form FILE:LINE: DIRECTIVE: blocking|ignored: why: %q", l)
		}
		if strings.Contains(l, ": blocking: ") {
			blockingLines = append(blockingLines, strings.TrimPrefix(l, edgeDir+"/"))
		}
	}
	if (code == 3) != (len(blockingLines) > 0) {
		t.Fatalf("exit %d with %d blocking lines:\n%s", code, len(blockingLines), stderr.String())
	}
	toml, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	toml = bytes.Replace(toml, []byte("[admin]\nlisten = \"127.0.0.1:9901\""), []byte("[admin]\nlisten = \"127.0.0.1:0\""), 1)
	if err := os.WriteFile(out, toml, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(bin, "-t", "-config", out).CombinedOutput(); err != nil || !strings.Contains(string(b), "configuration OK") {
		t.Fatalf("edgeproxy -t refuses the conversion: %v\n%s\n%s", err, b, toml)
	}
	if code == 3 {
		if spec.expect == "carried" {
			t.Fatalf("expected everything carried over, got:\n%s", strings.Join(blockingLines, "\n"))
		}
		t.Skipf("blocking, not compared yet:\n%s", strings.Join(blockingLines, "\n"))
	}
	if nginxBin == "" {
		t.Skip("nginx not installed (.ci/run installs it)")
	}
	nginxAddr := startNginx(t, nginxBin, nginxDir, nginxPort)
	edgeAddr := startEdgeproxy(t, bin, out)

	client := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	agreed := 0
	name := filepath.Base(dir)
	for i, r := range spec.requests {
		seq := fmt.Sprintf("%s/%d/", name, i)
		var ng, ed answerSeen
		if r.method == "WEBSOCKET" {
			ng, ed = sendUpgrade(t, nginxAddr, r, seq+"nginx"), sendUpgrade(t, edgeAddr, r, seq+"edge")
		} else {
			ng, ed = send(t, client, nginxAddr, r, seq+"nginx"), send(t, client, edgeAddr, r, seq+"edge")
		}
		// Each proxy names its own port in an absolute redirect.
		samePort(ng.header, nginxAddr)
		samePort(ed.header, edgeAddr)
		rec.mu.Lock()
		ngUp, edUp := rec.seen[seq+"nginx"], rec.seen[seq+"edge"]
		rec.mu.Unlock()
		diffs := compareAnswers(spec, r, ng, ed, ngUp, edUp)
		if len(diffs) == 0 {
			if _, ok := knownDifferences[name+" "+r.line]; ok {
				t.Errorf("%s: the known difference is gone: remove it from knownDifferences", r.line)
			}
			agreed++
			continue
		}
		if why, ok := knownDifferences[name+" "+r.line]; ok {
			t.Logf("KNOWN difference, reported: %s: %s\n  %s", r.line, why, strings.Join(diffs, "\n  "))
			known.Add(1)
			continue
		}
		t.Errorf("%s: nginx and edgeproxy disagree:\n  %s\nconversion:\n%s", r.line, strings.Join(diffs, "\n  "), toml)
	}
	return agreed, len(spec.requests)
}

// samePort writes the proxy's own port in Location as ":PORT".
func samePort(h http.Header, addr string) {
	_, port, _ := net.SplitHostPort(addr)
	if l := h.Get("Location"); l != "" {
		h.Set("Location", strings.Replace(l, ":"+port+"/", ":PORT/", 1))
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startNginx(t *testing.T, bin, dir string, port int) string {
	t.Helper()
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"),
		"-g", "daemon off; master_process off; pid "+filepath.Join(dir, "nginx.pid")+";")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// nginx says nothing when it is ready: wait for its port, or its exit.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited:\n%s%s", out.String(), log)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("nginx did not listen within 10s")
	return ""
}

var startedLine = regexp.MustCompile(`"msg":"edgeproxy started".*"listen":"([^"]+)"`)

func startEdgeproxy(t *testing.T, bin, config string) string {
	t.Helper()
	cmd := exec.Command(bin, "-config", config)
	cmd.Stdout = io.Discard
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	var logged strings.Builder
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			logged.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := startedLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case addr, ok := <-found:
		if ok {
			return addr
		}
	case <-time.After(10 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("edgeproxy did not start:\n%s", logged.String())
	return ""
}

type answerSeen struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, c *http.Client, addr string, r diffRequest, seq string) answerSeen {
	t.Helper()
	var body io.Reader
	if r.body > 0 {
		body = bytes.NewReader(bytes.Repeat([]byte("b"), r.body))
	}
	req, err := http.NewRequest(r.method, "http://"+addr+r.target, body)
	if err != nil {
		t.Fatal(err)
	}
	// Both proxies see the same Host, not each its own address.
	req.Host = "example.test"
	if r.host != "" {
		req.Host = r.host
	}
	for _, h := range r.headers {
		req.Header.Add(h[0], h[1])
	}
	req.Header.Set("X-Diff-Seq", seq)
	resp, err := c.Do(req)
	if err != nil {
		// A proxy that refuses a body may close before reading it; the
		// status it sent first is what counts, and Go may not see it.
		return answerSeen{status: -1, header: http.Header{"X-Error": {err.Error()}}}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answerSeen{status: resp.StatusCode, header: resp.Header, body: b}
}

func compareAnswers(spec diffSpec, r diffRequest, ng, ed answerSeen, ngUp, edUp []upstreamRecord) []string {
	var d []string
	limitExcept := ng.status == 403 && ed.status == 405 && ed.header.Get("Allow") != ""
	if ng.status != ed.status && !limitExcept {
		d = append(d, fmt.Sprintf("status: nginx %d, edgeproxy %d", ng.status, ed.status))
	}
	fromUpstream := len(ngUp) > 0
	// nginx's own error and redirect pages end in "<hr><center>nginx…".
	// An auth_request denial is nginx's page too, after asking the auth
	// upstream.
	generatedError := (!fromUpstream || ngUp[len(ngUp)-1].target == authCheck) && bytes.Contains(ng.body, []byte("<hr><center>nginx")) || limitExcept
	names := append([]string{}, responseHeaders...)
	names = append(names, spec.compare...)
	for _, h := range names {
		if generatedError && h != "Location" && !contains(spec.compare, h) {
			continue
		}
		if a, b := strings.Join(ng.header.Values(h), ", "), strings.Join(ed.header.Values(h), ", "); a != b {
			d = append(d, fmt.Sprintf("%s: nginx %q, edgeproxy %q", h, a, b))
		}
	}
	if !generatedError && r.method != "HEAD" {
		a, b := decoded(ng), decoded(ed)
		if !bytes.Equal(a, b) {
			d = append(d, fmt.Sprintf("body: nginx %q, edgeproxy %q", clip(a), clip(b)))
		}
	}
	if len(ngUp) != len(edUp) {
		d = append(d, fmt.Sprintf("upstream requests: nginx %d, edgeproxy %d", len(ngUp), len(edUp)))
		return d
	}
	for i := range ngUp {
		a, b := ngUp[i], edUp[i]
		authMethod := a.target == authCheck && b.method == r.method && a.method == "GET"
		if a.group != b.group || a.method != b.method && !authMethod || a.target != b.target || a.host != b.host || a.bodyLen != b.bodyLen {
			d = append(d, fmt.Sprintf("upstream saw: nginx %s %s %s Host %s body %d; edgeproxy %s %s %s Host %s body %d",
				a.group, a.method, a.target, a.host, a.bodyLen, b.group, b.method, b.target, b.host, b.bodyLen))
		}
		check := append([]string{}, spec.upstreamHeaders...)
		for _, h := range r.headers {
			if !ownUpstreamHeader(h[0]) || contains(spec.upstreamHeaders, h[0]) {
				check = append(check, h[0])
			}
		}
		sort.Strings(check)
		for _, h := range check {
			if x, y := strings.Join(a.header.Values(h), ", "), strings.Join(b.header.Values(h), ", "); x != y {
				d = append(d, fmt.Sprintf("upstream header %s: nginx %q, edgeproxy %q", h, x, y))
			}
		}
	}
	return d
}

// ownUpstreamHeader: headers edgeproxy sets itself (SPEC §4).
func ownUpstreamHeader(name string) bool {
	switch strings.ToLower(name) {
	case "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id":
		return true
	}
	return false
}

func decoded(a answerSeen) []byte {
	if a.header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(a.body))
		if err == nil {
			if b, err := io.ReadAll(zr); err == nil {
				return b
			}
		}
	}
	return a.body
}

func clip(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}
