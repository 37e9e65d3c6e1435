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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// family is an edgeproxy and the processes that binary upgrades start from
// it: they share one stderr pipe, read here line by line.
type family struct {
	t     *testing.T
	mu    sync.Mutex
	text  strings.Builder
	lines []map[string]any
	more  chan struct{} // closed (and replaced) on each new line: wakes every waiter
	eof   chan struct{} // every process holding the pipe has exited
}

func newFamily(t *testing.T, cmd *exec.Cmd) *family {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w // Stdout stays nil (/dev/null): no copying that Wait would wait on
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f := &family{t: t, more: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		defer close(f.eof)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var m map[string]any
			_ = json.Unmarshal(sc.Bytes(), &m)
			f.mu.Lock()
			f.text.WriteString(sc.Text() + "\n")
			if m != nil {
				f.lines = append(f.lines, m)
			}
			close(f.more)
			f.more = make(chan struct{})
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *family) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.text.String()
}

// wait returns the first log line from seen on that has msg and was
// written by pid (0: any process) and the index after it.
func (f *family) wait(from int, msg string, pid int, d time.Duration) (map[string]any, int) {
	f.t.Helper()
	m, next, err := f.await(from, msg, pid, d)
	if err != nil {
		f.t.Fatal(err)
	}
	return m, next
}

// await is wait for any goroutine: it reports instead of failing the test.
func (f *family) await(from int, msg string, pid int, d time.Duration) (map[string]any, int, error) {
	timeout := time.After(d)
	for {
		f.mu.Lock()
		for i := from; i < len(f.lines); i++ {
			m := f.lines[i]
			if m["msg"] == msg && (pid == 0 || logPID(m) == pid) {
				f.mu.Unlock()
				return m, i + 1, nil
			}
		}
		from = len(f.lines)
		more := f.more
		f.mu.Unlock()
		select {
		case <-more:
		case <-f.eof:
			return nil, from, fmt.Errorf("all processes exited waiting for %q of pid %d:\n%s", msg, pid, f.log())
		case <-timeout:
			return nil, from, fmt.Errorf("no %q from pid %d within %v:\n%s", msg, pid, d, f.log())
		}
	}
}

func logPID(m map[string]any) int {
	n, _ := m["pid"].(float64)
	return int(n)
}

// notifications collects what the processes tell systemd over NOTIFY_SOCKET.
func notifications(t *testing.T, path string) <-chan string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

func expectNotify(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Errorf("sd_notify: got %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("sd_notify: no %q", want)
	}
}

// reap waits for a process the test adopted (as child subreaper) to exit.
func reap(t *testing.T, pid int, d time.Duration) int {
	t.Helper()
	p, _ := os.FindProcess(pid)
	done := make(chan *os.ProcessState, 1)
	go func() {
		st, err := p.Wait()
		if err != nil {
			t.Errorf("waiting for pid %d: %v", pid, err)
		}
		done <- st
	}()
	select {
	case st := <-done:
		if st == nil {
			return -1
		}
		return st.ExitCode()
	case <-time.After(d):
		t.Fatalf("pid %d did not exit within %v", pid, d)
		return -1
	}
}

// replaceFile puts content at path the way an operator's install does: a
// new file renamed over the old, which a running binary does not block.
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// loadGen sends requests until stopped: keep-alive clients and clients
// that open a connection for every request. Every answer is checked.
// The latter are paced (50 connections a second each): every closed
// connection holds a loopback port in TIME_WAIT for a minute, and the
// tests after this one need ports too.
type loadGen struct {
	ok, failed, couponOK atomic.Int64
	mu                   sync.Mutex
	errs                 []string
	stop                 chan struct{}
	wg                   sync.WaitGroup
}

func startLoad(base string, ids []string) *loadGen {
	l := &loadGen{stop: make(chan struct{})}
	keepAlive := &http.Transport{MaxIdleConnsPerHost: 4}
	fresh := &http.Transport{DisableKeepAlives: true}
	for w, tr := range []*http.Transport{keepAlive, keepAlive, fresh, fresh} {
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var pace <-chan time.Time
			if tr == fresh {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				pace = tick.C
			}
			deadline := time.Now().Add(2 * time.Minute) // bounded whatever happens
			for i := w; time.Now().Before(deadline); i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if pace != nil {
					select {
					case <-l.stop:
						return
					case <-pace:
					}
				}
				if i%2 == 0 {
					l.check(c, base+"/x", "a")
				} else {
					id := ids[i/2%len(ids)]
					if l.check(c, base+"/coupons/"+id, `"id":"`+id+`"`) {
						l.couponOK.Add(1)
					}
				}
			}
		}()
	}
	return l
}

func (l *loadGen) check(c *http.Client, url, want string) bool {
	resp, err := c.Get(url)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != 200 || !strings.Contains(string(body), want)) {
			err = fmt.Errorf("%d %q", resp.StatusCode, body)
		}
	}
	if err != nil {
		l.failed.Add(1)
		l.mu.Lock()
		if len(l.errs) < 10 {
			l.errs = append(l.errs, url+": "+err.Error())
		}
		l.mu.Unlock()
		return false
	}
	l.ok.Add(1)
	return true
}

func (l *loadGen) halt() {
	close(l.stop)
	l.wg.Wait()
}

// longResponse starts a slow streamed download and returns once its first
// chunk arrived; the channel gets the whole outcome.
func longResponse(t *testing.T, url string) <-chan string {
	t.Helper()
	resp, err := client.Get(url) // its timeout bounds the whole download
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1)
	go func() {
		defer resp.Body.Close()
		rest, err := io.ReadAll(br)
		out <- fmt.Sprintf("%d %d chunks %v", resp.StatusCode, strings.Count(first+string(rest), "chunk\n"), err)
	}()
	return out
}

const slowChunks = 40

func upgradeConfig(redisAddr, up, pidFile, accessLog string) string {
	return fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
shutdown_timeout = "10s"
pid_file = %q
[admin]
listen = "127.0.0.1:0"
[log]
access_log = %q
[upstreams.a]
servers = [%q]
[[routes]]
path_prefix = "/"
upstream = "a"
[coupon]
source = "redis"
fallback_upstream = ""
[redis]
addrs = [%q]
`, pidFile, accessLog, up, redisAddr)
}

// TestBinaryUpgrade upgrades the binary five times under continuous
// keep-alive and new-connection load: twice to a working binary, once with
// a config whose check fails, once to a binary that never gets ready, and
// once more to a working one. No request fails, a long response of an old
// process finishes, the PID file and systemd always name the process that
// serves, and each new process reads the old one's hot coupon keys from
// Redis before it serves: one read per key, no misses after the switch.
func TestBinaryUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("about 20 s, 10 of them waiting out a binary that never gets ready")
	}
	// Processes started by an upgrade outlive their parent; as subreaper
	// the test adopts them and can see how they exit.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become child subreaper: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	r := redistest.Start(t)
	up := upstream(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/ws" {
			wsEchoHandler(w, req, "echo:")
			return
		}
		if req.URL.Path != "/slow" {
			io.WriteString(w, "a")
			return
		}
		for i := 0; i < slowChunks; i++ {
			io.WriteString(w, "chunk\n")
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond) // a response that takes 2 s to send
		}
	})
	dir := t.TempDir()
	var ids []string
	var jsonl strings.Builder
	for i := 0; i < 40; i++ {
		ids = append(ids, "u"+strconv.Itoa(i))
		fmt.Fprintf(&jsonl, `{"id":"u%d","lat":35.%03d,"lon":139.767}`+"\n", i, 600+i)
	}
	pidFile := filepath.Join(dir, "run", "edgeproxy.pid")
	os.Mkdir(filepath.Join(dir, "run"), 0o755)
	goodConfig := upgradeConfig(r.Addr, up, pidFile, filepath.Join(dir, "access.log"))
	cfg := writeFile(t, dir, "edge.toml", goodConfig)
	if out, errOut, code := runBinary(t, "coupons", "import", "-config", cfg, writeFile(t, dir, "c.jsonl", jsonl.String())); code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errOut)
	}

	// The binary lives at a path of its own, which the test replaces.
	bin := filepath.Join(dir, "bin", "edgeproxy")
	os.Mkdir(filepath.Dir(bin), 0o755)
	goodBinary, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, bin, goodBinary)
	sd := notifications(t, filepath.Join(dir, "notify.sock"))

	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+filepath.Join(dir, "notify.sock"))
	fam := newFamily(t, cmd)
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		// Whatever still serves is stopped; the pipe closes when all exited.
		if b, err := os.ReadFile(pidFile); err == nil {
			if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n > 0 {
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("edgeproxy processes' stderr:\n%s", fam.log())
		}
	})
	m, at := fam.wait(0, "edgeproxy started", pid, 20*time.Second)
	base := "http://" + m["listen"].(string)
	expectNotify(t, sd, fmt.Sprintf("READY=1\nMAINPID=%d", pid))
	checkPIDFile := func(step string, want int) {
		t.Helper()
		b, err := os.ReadFile(pidFile)
		if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(want) {
			t.Errorf("%s: pid file holds %q (%v), want %d", step, b, err, want)
		}
	}
	checkPIDFile("start", pid)

	load := startLoad(base, ids)
	defer func() {
		select {
		case <-load.stop:
		default:
			load.halt()
		}
	}()
	waitUntil(t, func() bool { return load.couponOK.Load() > 200 }, 20*time.Second)

	redisReads := func() int { c := r.CommandCalls(); return c["get"] + c["hgetall"] }
	exited := func(p int) int {
		if p == cmd.Process.Pid {
			cmd.Wait()
			return cmd.ProcessState.ExitCode()
		}
		return reap(t, p, 20*time.Second)
	}

	// upgradeOK sends SIGUSR2 and follows the hand-over to its end.
	upgradeOK := func(step string) {
		t.Helper()
		readsBefore, couponsBefore := redisReads(), load.couponOK.Load()
		syscall.Kill(pid, syscall.SIGUSR2)
		m, next := fam.wait(at, "edgeproxy started", 0, 15*time.Second)
		newPID := logPID(m)
		warm, _ := fam.wait(at, "coupon cache warmed from Redis", newPID, time.Second)
		// L0 holds ids read more than once: by now nearly all of them.
		if k, _ := warm["keys"].(float64); k < float64(len(ids))*3/4 || warm["warmed"] != k {
			t.Errorf("%s: the new process warmed %v", step, warm)
		}
		if newPID == pid || m["upgraded"] != true || "http://"+m["listen"].(string) != base {
			t.Fatalf("%s: new process %v", step, m)
		}
		expectNotify(t, sd, fmt.Sprintf("READY=1\nMAINPID=%d", newPID))
		fam.wait(at, "shutting down", pid, 5*time.Second)
		if code := exited(pid); code != 0 {
			t.Errorf("%s: old process exited %d", step, code)
		}
		checkPIDFile(step, newPID)
		// The new process warmed from Redis without a miss storm: one read
		// per coupon id, however many requests it answers.
		waitUntil(t, func() bool { return load.couponOK.Load() > couponsBefore+400 }, 20*time.Second)
		reads, served := redisReads()-readsBefore, load.couponOK.Load()-couponsBefore
		t.Logf("%s: pid %d -> %d; %d coupon answers, %d Redis reads", step, pid, newPID, served, reads)
		if reads > 2*len(ids) {
			t.Errorf("%s: %d Redis reads for %d coupon ids (%d answers): a miss storm", step, reads, len(ids), served)
		}
		pid, at = newPID, next
	}
	// upgradeRefused sends SIGUSR2 and expects the old process to keep
	// serving, saying why.
	upgradeRefused := func(step, why string, within time.Duration) {
		t.Helper()
		syscall.Kill(pid, syscall.SIGUSR2)
		m, next := fam.wait(at, "binary upgrade failed; this process keeps serving", pid, within)
		if !strings.Contains(m["why"].(string), why) {
			t.Errorf("%s: why = %q, want %q", step, m["why"], why)
		}
		checkPIDFile(step, pid)
		okBefore := load.ok.Load()
		waitUntil(t, func() bool { return load.ok.Load() > okBefore+100 }, 10*time.Second)
		at = next
	}

	// 1. A working binary, with a long response and a WebSocket tunnel in
	// flight on the old one. The tunnel still carries messages after the
	// new process has taken over, until its client closes it.
	long := longResponse(t, base+"/slow")
	ws := wsDial(t, strings.TrimPrefix(base, "http://"), "/ws")
	if got, err := wsRoundTrip(t, ws, "before"); err != nil || got != "echo:before" {
		t.Fatalf("tunnel before the upgrade: %q %v", got, err)
	}
	tunnel, longDone := make(chan string, 1), make(chan string, 1)
	go func() {
		// The old process has handed over and its last request in flight
		// is done: where a SIGTERM drain would close the tunnel.
		_, _, err := fam.await(at, "requests drained; open tunnels may finish", pid, 20*time.Second)
		longDone <- <-long
		if err != nil {
			tunnel <- err.Error()
			return
		}
		for i := 0; i < 3; i++ {
			msg := fmt.Sprint("after ", i)
			if got, err := wsRoundTrip(t, ws, msg); err != nil || got != "echo:"+msg {
				tunnel <- fmt.Sprintf("tunnel after the hand-over: %q %v", got, err)
				return
			}
		}
		ws.Close(websocket.StatusNormalClosure, "done")
		tunnel <- "ok"
	}()
	upgradeOK("upgrade 1")
	if got, want := <-longDone, fmt.Sprintf("200 %d chunks <nil>", slowChunks); got != want {
		t.Errorf("long response of the old process: %s, want %s", got, want)
	}
	if got := <-tunnel; got != "ok" {
		t.Errorf("WebSocket tunnel of the old process: %s", got)
	}

	// 2. The new process's config check fails.
	writeFile(t, dir, "edge.toml", strings.Replace(goodConfig, `upstream = "a"`, `upstream = "nope"`, 1))
	upgradeRefused("upgrade 2 (bad config)", "exited before it was ready", 10*time.Second)
	if !strings.Contains(fam.log(), cfg+":13:1: routes[0].upstream") {
		t.Errorf("the new process did not name the config error")
	}
	writeFile(t, dir, "edge.toml", goodConfig)

	// 3. A working binary; then SIGHUP and SIGUSR1 reach the new process.
	upgradeOK("upgrade 3")
	syscall.Kill(pid, syscall.SIGHUP)
	_, at = fam.wait(at, "configuration reloaded", pid, 5*time.Second)
	if got := <-sd; !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("sd_notify on SIGHUP: %q", got)
	}
	expectNotify(t, sd, fmt.Sprintf("READY=1\nMAINPID=%d", pid))
	syscall.Kill(pid, syscall.SIGUSR1)
	_, at = fam.wait(at, "access log reopened", pid, 5*time.Second)

	// 4. A binary that never gets ready is killed after 10 s.
	replaceFile(t, bin, []byte("#!/bin/sh\nexec sleep 60\n"))
	began := time.Now()
	upgradeRefused("upgrade 4 (never ready)", "not ready within 10s", 20*time.Second)
	if took := time.Since(began); took < upgradeTimeout {
		t.Errorf("gave up on the new binary after %v", took)
	}
	replaceFile(t, bin, goodBinary)

	// 5. A working binary again.
	upgradeOK("upgrade 5")

	load.halt()
	t.Logf("%d requests answered, %d failed", load.ok.Load(), load.failed.Load())
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d requests failed across the upgrades: %v", n, load.errs)
	}
	select {
	case got := <-sd:
		t.Errorf("unexpected sd_notify %q", got)
	default:
	}

	// SIGTERM still stops the process: STOPPING=1, pid file removed, exit 0.
	syscall.Kill(pid, syscall.SIGTERM)
	expectNotify(t, sd, "STOPPING=1")
	if code := exited(pid); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after a normal exit: %v", err)
	}
}
