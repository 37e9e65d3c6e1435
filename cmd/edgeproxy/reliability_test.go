package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// plainBinary builds edgeproxy without the race detector, whose limit of
// 8128 goroutines a process with 10,000 connections would pass.
func plainBinary(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return binary
	}
	out := filepath.Join(t.TempDir(), "edgeproxy-plain")
	if b, err := exec.Command("go", "build", "-o", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	return out
}

func raiseFileLimit(t *testing.T, want uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < want {
		lim.Cur = min(want, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Cur < want {
		t.Skipf("file limit %d below %d", lim.Cur, want)
	}
}

func statusKiB(pid int, field string) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// TestTenThousandConnections opens 10,000 client connections at once, each
// with a request, against max_conns = 8000: every one is answered 200 or
// refused with a 503 and closed, none hangs, and memory stays bounded.
// The connections are plain file descriptors driven from one goroutine.
func TestTenThousandConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 connections")
	}
	const total, maxConns = 10000, 8000
	raiseFileLimit(t, total+2000)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	dir := t.TempDir()
	cfg := writeFile(t, dir, "edge.toml", fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
max_conns = %d
idle_timeout = "60s"
[admin]
listen = "127.0.0.1:0"
[log]
access_log = "off"
[upstreams.a]
servers = [%q]
[[routes]]
path_prefix = "/"
upstream = "a"
`, maxConns, up))
	p := startWith(t, plainBinary(t), cfg)
	pid := p.cmd.Process.Pid
	rssBefore := statusKiB(pid, "VmRSS")

	conns := make([]net.Conn, 0, total)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < total; i++ {
		c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	var ok, refused, other int
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		switch {
		case err != nil:
			other++
			if other < 5 {
				t.Logf("connection %d: %v", i, err)
			}
		case resp.StatusCode == 200:
			ok++
		case resp.StatusCode == 503:
			refused++
		default:
			other++
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	rssAfter := statusKiB(pid, "VmRSS")
	t.Logf("%d connections: %d served, %d refused with 503, %d other; RSS %d → %d KiB (%.1f KiB per connection held)",
		total, ok, refused, other, rssBefore, rssAfter, float64(rssAfter-rssBefore)/float64(ok))
	if other != 0 || ok+refused != total || ok < maxConns-100 {
		t.Errorf("served %d, refused %d, other %d", ok, refused, other)
	}
	if rssAfter-rssBefore > int64(ok)*40 { // KiB
		t.Errorf("RSS grew by %d KiB for %d connections", rssAfter-rssBefore, ok)
	}
	// The proxy still answers new clients once the crowd leaves.
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	waitUntil(t, func() bool {
		resp, err := client.Get("http://" + p.addr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 10*time.Second)
}

// metricValue reads one series from /metrics.
func metricValue(t *testing.T, p *proc, series string) float64 {
	t.Helper()
	_, body := getBody(t, "http://"+p.admin+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, series+" ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(l, series+" "), 64)
			return v
		}
	}
	t.Fatalf("no %s in /metrics", series)
	return 0
}

// TestRedisRestartUnderCouponLoad kills Redis in the middle of a coupon
// load and brings it back with changed data: every answer is 200 (HIT,
// MISS or STALE) or the documented 503, nothing hangs, nothing stale is
// served once Redis answers again, and goroutines do not grow.
func TestRedisRestartUnderCouponLoad(t *testing.T) {
	r := redistest.Start(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "edge.toml", redisConfig(r.Addr, "", false))
	data := writeFile(t, dir, "c.jsonl", `{"id":"c1","lat":35.681,"lon":139.767,"v":1}`+"\n"+`{"id":"c2","lat":35.682,"lon":139.767,"v":1}`+"\n")
	if _, errOut, code := runBinary(t, "coupons", "import", "-config", cfg, data); code != 0 {
		t.Fatal(errOut)
	}
	p := start(t, cfg)
	base := "http://" + p.addr
	getBody(t, base+"/coupons/c1")
	getBody(t, base+"/coupons/nearby?lat=35.681&lon=139.767")
	goroutines := metricValue(t, p, "go_goroutines")

	var stop atomic.Bool
	var answered atomic.Int64
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			paths := []string{"/coupons/c1", "/coupons/nearby?lat=35.681&lon=139.767", "/coupons/c2", "/coupons/nope"}
			for n := 0; !stop.Load() && n < 1e6; n++ {
				resp, err := c.Get(base + paths[(n+w)%len(paths)])
				key := ""
				if err != nil {
					key = "error: " + err.Error()
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					key = fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Cache"))
				}
				mu.Lock()
				counts[key]++
				mu.Unlock()
				answered.Add(1)
			}
		}(w)
	}
	// Each phase lasts until the load has had that many more answers.
	answers := func(n int64) {
		t.Helper()
		target := answered.Load() + n
		waitUntil(t, func() bool { return answered.Load() >= target }, 10*time.Second)
	}
	answers(200)
	r.Stop()
	answers(200)
	r.Restart()
	w2 := writeFile(t, dir, "c2.jsonl", `{"id":"c1","lat":35.681,"lon":139.767,"v":2}`+"\n"+`{"id":"c2","lat":35.682,"lon":139.767,"v":2}`+"\n")
	if _, errOut, code := runBinary(t, "coupons", "import", "-config", cfg, w2); code != 0 {
		t.Fatal(errOut)
	}
	// After recovery, the first re-read replaces every stale answer.
	waitUntil(t, func() bool {
		_, b1 := getBody(t, base+"/coupons/c1")
		_, b2 := getBody(t, base+"/coupons/nearby?lat=35.681&lon=139.767")
		return strings.Contains(b1, `"v":2`) && strings.Count(b2, `"v":2`) == 2
	}, 5*time.Second)
	answers(100)
	stop.Store(true)
	wg.Wait()
	for i := 0; i < 20; i++ {
		if _, b := getBody(t, base+"/coupons/c1"); !strings.Contains(b, `"v":2`) {
			t.Fatalf("stale answer after recovery: %s", b)
		}
	}
	t.Logf("answers: %v", counts)
	for k, n := range counts {
		switch {
		case strings.HasPrefix(k, "200 "), strings.HasPrefix(k, "404 "), k == "503 MISS":
		default:
			t.Errorf("%d answers %q", n, k)
		}
	}
	tr.CloseIdleConnections()
	waitUntil(t, func() bool { return metricValue(t, p, "go_goroutines") <= goroutines+10 }, 5*time.Second)
}
