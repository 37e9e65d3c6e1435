package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

// TestMain builds the edgeproxy binary once; the tests run it as an
// operator would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgeproxy-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "edgeproxy")
	args := []string{"build", "-o", binary, "-ldflags", "-X main.version=test-1.2.3"}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building edgeproxy: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runBinary(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestVersion(t *testing.T) {
	out, _, code := runBinary(t, "-version")
	if code != 0 || out != "edgeproxy test-1.2.3\n" {
		t.Errorf("%d %q", code, out)
	}
}

func TestConfigCheck(t *testing.T) {
	out, errOut, code := runBinary(t, "-t", "-config", "../../config.example.toml")
	if code != 0 || !strings.Contains(out, "configuration OK") {
		t.Errorf("example config: %d %q %q", code, out, errOut)
	}
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.toml", `[server]
listen = "127.0.0.1:8080"
read_timeout = 5
max_conns = -1
[upstreams.a]
servers = ["127.0.0.1:9001"]
[[routes]]
path_prefix = "/"
upstream = "b"
`)
	out, errOut, code = runBinary(t, "-t", "-config", bad)
	if code != 1 || strings.Contains(out, "OK") {
		t.Fatalf("bad config: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{bad + ":3:", "server.read_timeout", bad + ":4:1: server.max_conns", bad + ":9:1: routes[0].upstream"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("errors lack %q:\n%s", want, errOut)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if !strings.HasPrefix(l, bad+":") {
			t.Errorf("error line not FILE:...: %q", l)
		}
	}
	badCoupons := writeFile(t, dir, "c.jsonl", `{"id":"ok","lat":1,"lon":1}`+"\n"+`{"id":"bad","lat":100,"lon":1}`+"\n")
	cfg := writeFile(t, dir, "c.toml", "[coupon]\nsource = \"file\"\nfile = \"c.jsonl\"\n")
	_, errOut, code = runBinary(t, "-t", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, badCoupons+":2: lat:") {
		t.Errorf("bad coupon file: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, "-t", "-config", filepath.Join(dir, "missing.toml"))
	if code != 1 || !strings.Contains(errOut, "missing.toml") {
		t.Errorf("missing file: %d %q", code, errOut)
	}
}

// proc is a running edgeproxy.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	admin  string
	mu     sync.Mutex
	stderr strings.Builder
	lines  chan map[string]any
	done   chan struct{}
}

// start runs edgeproxy with config and waits until it listens. The config
// should listen on port 0; the ports are read from the start-up log line.
func start(t *testing.T, config string) *proc {
	t.Helper()
	return startWith(t, binary, config)
}

// startWith is start with another build of edgeproxy.
func startWith(t *testing.T, bin, config string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(bin, "-config", config), lines: make(chan map[string]any, 1000), done: make(chan struct{})}
	stderr, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case p.lines <- m:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("edgeproxy stderr:\n%s", p.log())
		}
	})
	m := p.waitLog("edgeproxy started", 20*time.Second)
	p.addr = strings.Replace(m["listen"].(string), "[::]", "127.0.0.1", 1)
	p.admin = m["admin"].(string)
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLog waits for an application log line with msg.
func (p *proc) waitLog(msg string, d time.Duration) map[string]any {
	p.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-p.lines:
			if m["msg"] == msg {
				return m
			}
		case <-p.done:
			p.t.Fatalf("edgeproxy exited waiting for %q:\n%s", msg, p.log())
		case <-timeout:
			p.t.Fatalf("no %q log line within %v:\n%s", msg, d, p.log())
		}
	}
}

func (p *proc) signal(s os.Signal) {
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("edgeproxy did not exit within %v", d)
	}
	p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode()
}

func upstream(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

var client = &http.Client{Timeout: 10 * time.Second}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func proxyConfig(upstreamA, upstreamB, accessLog string) string {
	return fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
shutdown_timeout = "5s"
[admin]
listen = "127.0.0.1:0"
[log]
access_log = %q
[upstreams.a]
servers = [%q]
[upstreams.b]
servers = [%q]
[[routes]]
path_prefix = "/"
upstream = "a"
`, accessLog, upstreamA, upstreamB)
}

func TestServeReloadAndDrain(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	a := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "a")
	})
	b := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	cfgPath := writeFile(t, dir, "edge.toml", proxyConfig(a, b, accessLog))
	p := start(t, cfgPath)

	if code, body := getBody(t, "http://"+p.addr+"/x"); code != 200 || body != "a" {
		t.Fatalf("before reload: %d %q", code, body)
	}
	if code, _ := getBody(t, "http://"+p.admin+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := getBody(t, "http://"+p.admin+"/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Errorf("/readyz: %d %s", code, body)
	}

	// A good config takes effect; a bad one is refused and logged.
	writeFile(t, dir, "edge.toml", strings.Replace(proxyConfig(a, b, accessLog), `upstream = "a"`, `upstream = "b"`, 1))
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded", 5*time.Second)
	if code, body := getBody(t, "http://"+p.addr+"/x"); code != 200 || body != "b" {
		t.Errorf("after reload: %d %q", code, body)
	}
	writeFile(t, dir, "edge.toml", strings.Replace(proxyConfig(a, b, accessLog), `upstream = "a"`, `upstream = "nope"`, 1))
	p.signal(syscall.SIGHUP)
	m := p.waitLog("reload refused", 5*time.Second)
	if e, _ := m["error"].(string); !strings.Contains(e, "edge.toml:14:1: routes[0].upstream") {
		t.Errorf("refusal does not name key and line: %v", m)
	}
	if code, body := getBody(t, "http://"+p.addr+"/x"); code != 200 || body != "b" {
		t.Errorf("after refused reload: %d %q", code, body)
	}

	// Log rotation.
	os.Rename(accessLog, accessLog+".1")
	p.signal(syscall.SIGUSR1)
	p.waitLog("access log reopened", 5*time.Second)

	// SIGTERM lets the in-flight request finish, then exits 0.
	writeFile(t, dir, "edge.toml", proxyConfig(a, b, accessLog))
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded", 5*time.Second)
	result := make(chan string, 1)
	go func() {
		resp, err := client.Get("http://" + p.addr + "/slow")
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-arrived
	p.signal(syscall.SIGTERM)
	p.waitLog("shutting down", 5*time.Second)
	close(release)
	if got := <-result; got != "200 a" {
		t.Errorf("in-flight request during shutdown: %s", got)
	}
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	rotated, _ := os.ReadFile(accessLog + ".1")
	current, _ := os.ReadFile(accessLog)
	if !strings.Contains(string(rotated), `"path":"/x"`) || !strings.Contains(string(current), `"path":"/slow"`) {
		t.Errorf("access logs: rotated %q, current %q", rotated, current)
	}
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, cond func() bool, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
