package main

import (
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// TestSoak runs a mixed load for EDGEPROXY_SOAK (a duration; `make soak`
// sets 5m): pass-through, coupon reads, coupon writes through `coupons
// import`, Redis restarts and config reloads. It samples RSS, goroutines
// and open files every few seconds and fails if a request is lost or any
// of them keeps growing.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("EDGEPROXY_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set EDGEPROXY_SOAK=5m (make soak) to run")
	}
	r := redistest.Start(t)
	up := upstream(t, func(w http.ResponseWriter, req *http.Request) { io.WriteString(w, strings.Repeat("n", 512)) })
	dir := t.TempDir()
	good := func(n int) string {
		return fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
level = "info"
access_log = %q
[upstreams.news]
servers = [%q]
[[routes]]
path_prefix = "/news/"
upstream = "news"
timeout = "%ds"
[coupon]
source = "redis"
fallback_upstream = ""
[redis]
addrs = [%q]
`, filepath.Join(dir, "access.log"), up, 5+n%2, r.Addr)
	}
	cfg := writeFile(t, dir, "edge.toml", good(0))
	sample, _ := filepath.Abs("../../testdata/coupons.jsonl")
	importFile := func(path string) {
		if _, errOut, code := runBinary(t, "coupons", "import", "-config", cfg, path); code != 0 {
			t.Errorf("import: %s", errOut)
		}
	}
	importFile(sample)
	p := start(t, cfg)
	pid := p.cmd.Process.Pid
	base := "http://" + p.addr

	var stop atomic.Bool
	var lost, done atomic.Int64
	var mu sync.Mutex
	lostKinds := map[string]int{}
	loseOne := func(kind string) {
		lost.Add(1)
		mu.Lock()
		lostKinds[kind]++
		mu.Unlock()
	}
	var wg sync.WaitGroup
	worker := func(seed int64, next func(rng *rand.Rand) string, ok func(status int, xcache string) bool) {
		defer wg.Done()
		rng := rand.New(rand.NewSource(seed))
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		for !stop.Load() {
			path := next(rng)
			resp, err := c.Get(base + path)
			if err != nil {
				loseOne("transport: " + err.Error())
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if !ok(resp.StatusCode, resp.Header.Get("X-Cache")) {
				loseOne(fmt.Sprintf("%s → %d %s", strings.SplitN(path, "?", 2)[0], resp.StatusCode, resp.Header.Get("X-Cache")))
			}
			done.Add(1)
		}
	}
	couponOK := func(status int, xc string) bool {
		return status == 200 || status == 404 || (status == 503 && xc == "MISS") // 503: Redis down, no fallback
	}
	for i := 0; i < 2; i++ {
		wg.Add(3)
		go worker(int64(i), func(*rand.Rand) string { return "/news/item" }, func(s int, _ string) bool { return s == 200 })
		go worker(int64(10+i), func(rng *rand.Rand) string { return fmt.Sprintf("/coupons/tky-%05d", rng.Intn(3100)) }, couponOK)
		go worker(int64(20+i), func(rng *rand.Rand) string {
			return fmt.Sprintf("/coupons/nearby?lat=%.4f&lon=%.4f&radius_m=%d", 35.65+rng.Float64()*0.1, 139.68+rng.Float64()*0.12, 200+rng.Intn(3000))
		}, couponOK)
	}

	type sampleRow struct {
		at                time.Duration
		rssKiB            int64
		goroutines, files int
		requests          int64
	}
	var samples []sampleRow
	startT := time.Now()
	takeSample := func() {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		samples = append(samples, sampleRow{at: time.Since(startT).Round(time.Second), rssKiB: statusKiB(pid, "VmRSS"),
			goroutines: int(metricValue(t, p, "go_goroutines")), files: len(fds), requests: done.Load()})
	}
	writes := writeFile(t, dir, "writes.jsonl", "")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var writesDone, reloads, restarts int
	for sec := 1; time.Since(startT) < d; sec++ {
		<-tick.C
		// Each event on its own schedule; several may fall on one second.
		if sec%5 == 0 {
			takeSample()
		}
		if sec%7 == 0 { // coupon writes
			var b strings.Builder
			for i := 0; i < 50; i++ {
				fmt.Fprintf(&b, `{"id":"soak-%d","lat":%.5f,"lon":%.5f,"v":%d}`+"\n", i, 35.68+float64(i)/1000, 139.76, sec)
			}
			os.WriteFile(writes, []byte(b.String()), 0o644)
			importFile(writes)
			writesDone++
		}
		if sec%11 == 0 { // reload
			writeFile(t, dir, "edge.toml", good(sec))
			p.signal(syscall.SIGHUP)
			p.waitLog("configuration reloaded", 10*time.Second)
			reloads++
		}
		if sec%30 == 0 { // Redis restart
			r.Stop()
			time.Sleep(2 * time.Second)
			r.Restart()
			importFile(sample)
			restarts++
		}
	}
	stop.Store(true)
	wg.Wait()
	takeSample()

	t.Logf("%d requests in %v, %d lost %v; %d coupon imports, %d reloads, %d Redis restarts",
		done.Load(), d, lost.Load(), lostKinds, writesDone, reloads, restarts)
	if reloads == 0 || restarts == 0 || writesDone == 0 {
		t.Errorf("the soak did not exercise every event")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%8s %10s %10s %6s %10s\n", "time", "RSS KiB", "goroutines", "files", "requests")
	for _, s := range samples {
		fmt.Fprintf(&b, "%8v %10d %10d %6d %10d\n", s.at, s.rssKiB, s.goroutines, s.files, s.requests)
	}
	t.Log(b.String())
	if lost.Load() != 0 {
		t.Errorf("%d requests lost: %v", lost.Load(), lostKinds)
	}
	if len(samples) < 6 {
		t.Fatalf("only %d samples", len(samples))
	}
	// Growth without bound: the last third's peak against the middle
	// third's, past warm-up.
	third := len(samples) / 3
	peak := func(rows []sampleRow, f func(sampleRow) int64) int64 {
		vals := make([]int64, len(rows))
		for i, r := range rows {
			vals[i] = f(r)
		}
		sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
		return vals[len(vals)-1]
	}
	for _, m := range []struct {
		name  string
		f     func(sampleRow) int64
		slack int64
	}{
		{"RSS KiB", func(s sampleRow) int64 { return s.rssKiB }, 32 << 10},
		{"goroutines", func(s sampleRow) int64 { return int64(s.goroutines) }, 30},
		{"open files", func(s sampleRow) int64 { return int64(s.files) }, 30},
	} {
		mid, last := peak(samples[third:2*third], m.f), peak(samples[2*third:], m.f)
		if last > mid+mid/4+m.slack {
			t.Errorf("%s grew from %d to %d", m.name, mid, last)
		}
	}
}
