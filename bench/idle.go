package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type idleResult struct {
	system        string
	lever         string // what was changed from the configuration, "" none
	conns         int
	parked        int   // edgeproxy's parked connections when read
	before, after int64 // KiB
	// For edgeproxy, the Go runtime's view of the growth, KiB: goroutine
	// stacks, heap in use, and heap pages held but not in use.
	stacks, heap, heapIdle int64
}

// goMemory reads the runtime's memory gauges (bytes) from /metrics.
func goMemory(admin string) map[string]int64 {
	out := map[string]int64{}
	b, err := httpGet("http://" + admin + "/metrics")
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		for _, name := range []string{"go_memstats_stack_inuse_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes"} {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				out[name] = int64(f)
			}
		}
	}
	return out
}

// withGoMemory fills the runtime's view of the growth from two readings.
func (x idleResult) withGoMemory(before, after map[string]int64) idleResult {
	d := func(n string) int64 { return (after[n] - before[n]) >> 10 }
	x.stacks, x.heap = d("go_memstats_stack_inuse_bytes"), d("go_memstats_heap_inuse_bytes")
	x.heapIdle = d("go_memstats_heap_idle_bytes") - d("go_memstats_heap_released_bytes")
	return x
}

// idleCase is one idle-connection measurement: a system, how many
// connections, and a lever (an edgeproxy [server] setting, or forced
// garbage collections once the connections are idle).
type idleCase struct {
	system, lever string
	conns         int
	serverExtra   string // TOML lines for edgeproxy's [server]
	forceGC       bool   // also measure after two forced GCs
}

func (r *runner) idleCases() []idleCase {
	var cs []idleCase
	for _, n := range r.s.idleCounts() {
		cs = append(cs,
			idleCase{system: "edgeproxy", conns: n, forceGC: true},
			idleCase{system: "nginx", conns: n})
	}
	return cs
}

// idleConns opens many keep-alive connections, one request each, and
// reads the system's RSS growth per connection.
func (r *runner) idleConns(systems map[string]system) ([]idleResult, error) {
	var out []idleResult
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	for _, c := range r.idleCases() {
		if uint64(c.conns)+256 > lim.Cur {
			note := fmt.Sprintf("%d idle connections to %s not measured: the open-file limit is %d here (raising it needs CAP_SYS_RESOURCE)", c.conns, c.system, lim.Cur)
			r.logf("%s", note)
			r.notes = append(r.notes, note)
			continue
		}
		res, err := r.idleOnce(systems[c.system], c)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func (r *runner) idleOnce(sys system, c idleCase) ([]idleResult, error) {
	r.edgeServerExtra = c.serverExtra
	cmd, addr, err := sys.start("")
	r.edgeServerExtra = ""
	if err != nil {
		return nil, err
	}
	defer r.stop(cmd)
	pid := cmd.Process.Pid
	time.Sleep(300 * time.Millisecond)
	before := rssKiB(pid, "VmRSS")
	var goBefore map[string]int64
	if sys.name == "edgeproxy" {
		goBefore = goMemory(r.edgeAdmin)
		before = rssKiB(pid, "VmRSS") // after the scrape's own allocations
	}
	lg := exec.Command("taskset", "-c", r.loadCPUs, r.benchBin, "-idle", addr, fmt.Sprint(c.conns))
	lg.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, _ := lg.StdinPipe()
	stdout, _ := lg.StdoutPipe()
	lg.Stderr = os.Stderr
	if err := lg.Start(); err != nil {
		return nil, err
	}
	defer func() {
		stdin.Close()
		lg.Wait()
	}()
	buf := make([]byte, 128)
	n, _ := stdout.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "ready") {
		lg.Process.Kill()
		return nil, fmt.Errorf("%d idle connections to %s: %q", c.conns, sys.name, buf[:n])
	}
	parked := 0
	if goBefore != nil {
		// Idle connections leave their goroutines for the parked set
		// within two sweeps (at once with more than a thousand open).
		parked = waitParked(r.edgeAdmin, c.conns, 15*time.Second)
	} else {
		time.Sleep(500 * time.Millisecond)
	}
	res := []idleResult{{system: sys.name, lever: c.lever, conns: c.conns, parked: parked, before: before, after: rssKiB(pid, "VmRSS")}}
	if goBefore != nil {
		res[0] = res[0].withGoMemory(goBefore, goMemory(r.edgeAdmin))
		if r.s.profile != "" {
			b, err := httpGet("http://" + r.edgeAdmin + "/debug/pprof/heap")
			if err != nil {
				return nil, err
			}
			os.MkdirAll(r.s.profile, 0o755)
			name := filepath.Join(r.s.profile, fmt.Sprintf("idle-%d%s.heap.pprof", c.conns, strings.ReplaceAll(c.lever, " ", "-")))
			r.logf("heap profile with %d idle connections: %s", c.conns, name)
			if err := os.WriteFile(name, b, 0o644); err != nil {
				return nil, err
			}
		}
	}
	if c.forceGC {
		// Two collections free what the connections' goroutines and
		// buffers held before they parked (sync.Pool keeps its contents
		// for one collection more); the runtime returns the freed pages to
		// the kernel in the background, over some seconds.
		for range 2 {
			if _, err := httpGet("http://" + r.edgeAdmin + "/debug/pprof/heap?gc=1"); err != nil {
				return nil, err
			}
		}
		after := settledRSS(pid, 45*time.Second)
		x := idleResult{system: sys.name, lever: "after 2 forced GCs, settled", conns: c.conns, before: before, after: after}
		res = append(res, x.withGoMemory(goBefore, goMemory(r.edgeAdmin)))
	}
	for _, x := range res {
		lever := x.lever
		if lever == "" {
			lever = "as configured"
		}
		r.logf("%d idle connections: %s (%s) RSS %d → %d KiB, %.1f KiB each (Go: stacks %.1f, heap %.1f, heap idle %.1f KiB each)",
			x.conns, x.system, lever, x.before, x.after, x.perConn(), x.per(x.stacks), x.per(x.heap), x.per(x.heapIdle))
	}
	return res, nil
}

// waitParked waits until want connections are parked (or d passes) and
// returns how many are.
func waitParked(admin string, want int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := parkedConns(admin)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func parkedConns(admin string) int {
	b, err := httpGet("http://" + admin + "/metrics")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, `edgeproxy_client_connections{state="parked"} `); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return 0
}

// settledRSS reads pid's RSS once it stops falling: no drop of more than
// 1% over three seconds, or d passed.
func settledRSS(pid int, d time.Duration) int64 {
	deadline := time.Now().Add(d)
	last := rssKiB(pid, "VmRSS")
	for time.Now().Before(deadline) {
		time.Sleep(3 * time.Second)
		now := rssKiB(pid, "VmRSS")
		if now > last-last/100 {
			return now
		}
		last = now
	}
	return last
}

// raiseFileLimit lifts this process's open-file limit (and so its
// children's) to what the idle test needs: a connection is a descriptor
// on each side.
func raiseFileLimit(n uint64) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	if lim.Max < n {
		lim.Max = n // allowed for root (CAP_SYS_RESOURCE); else it stays
	}
	lim.Cur = lim.Max
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}
