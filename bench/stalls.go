package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Evidence for a latency spike at constant rate, read around each run:
// whether the system under test waited for its core (the kernel's run
// queue: other processes on a shared machine), and, for edgeproxy, what
// the Go runtime itself reports (GC pauses, goroutines queued for a
// thread) through the histograms of /metrics.

// runqWait is the time pid's threads (and their children's) spent
// runnable but not running, from /proc/PID/task/TID/schedstat (its second
// field, ns).
func runqWait(pid int) time.Duration {
	var total int64
	for _, p := range append([]int{pid}, children(pid)...) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", p))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				total += n
			}
		}
	}
	return time.Duration(total)
}

// stealTicks is the machine's steal time (a hypervisor running other
// guests on our cores), from /proc/stat, in clock ticks.
func stealTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 {
		return 0
	}
	n, _ := strconv.ParseInt(f[8], 10, 64)
	return n
}

// histogram is a Prometheus histogram's cumulative bucket counts by upper
// bound, from /metrics text.
type histogram map[float64]float64

func scrapeHistograms(admin string, names ...string) map[string]histogram {
	out := map[string]histogram{}
	b, err := httpGet("http://" + admin + "/metrics")
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		for _, n := range names {
			rest, ok := strings.CutPrefix(l, n+`_bucket{le="`)
			if !ok {
				continue
			}
			le, val, ok := strings.Cut(rest, `"} `)
			if !ok {
				continue
			}
			bound, err1 := strconv.ParseFloat(le, 64)
			v, err2 := strconv.ParseFloat(val, 64)
			if le == "+Inf" {
				bound, err1 = math.Inf(1), nil
			}
			if err1 == nil && err2 == nil {
				if out[n] == nil {
					out[n] = histogram{}
				}
				out[n][bound] = v
			}
		}
	}
	return out
}

// delta summarizes what happened between two scrapes: the count, and the
// upper bounds of the buckets holding the 99.9th percentile and the
// largest observation.
func (after histogram) delta(before histogram) (count float64, p999, max time.Duration) {
	var bounds []float64
	for b := range after {
		bounds = append(bounds, b)
	}
	sortFloats(bounds)
	prevFinite := 0.0
	toDur := func(b float64) time.Duration {
		if math.IsInf(b, 1) {
			b = prevFinite // beyond the last bound: say the last bound
		}
		return time.Duration(b * float64(time.Second))
	}
	total := after[math.Inf(1)] - before[math.Inf(1)]
	prevCum := 0.0
	for _, b := range bounds {
		cum := after[b] - before[b]
		if cum > prevCum {
			max = toDur(b)
		}
		if p999 == 0 && total > 0 && cum >= 0.999*total {
			p999 = toDur(b)
		}
		prevCum = cum
		if !math.IsInf(b, 1) {
			prevFinite = b
		}
	}
	return total, p999, max
}

func sortFloats(xs []float64) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

// stallProbe reads the evidence before a run and tells what changed after.
type stallProbe struct {
	pid        int
	admin      string // edgeproxy's admin address, "" for nginx
	wait       time.Duration
	steal      int64
	cpu        int64 // the SUT's utime+stime, ticks
	started    time.Time
	histograms map[string]histogram
}

var stallHistograms = []string{"go_gc_pauses_seconds", "go_sched_latencies_seconds"}

func startProbe(pid int, admin string) *stallProbe {
	user, sys := cpuTicks(pid)
	p := &stallProbe{pid: pid, admin: admin, wait: runqWait(pid), steal: stealTicks(), cpu: user + sys, started: time.Now()}
	if admin != "" {
		p.histograms = scrapeHistograms(admin, stallHistograms...)
	}
	return p
}

// stallEvidence is what a constant-rate run's probe found.
type stallEvidence struct {
	runqWait time.Duration // the SUT runnable, not running
	steal    time.Duration // the machine's steal time, all CPUs
	// busy is the SUT's CPU time over the run's wall time: near 1 on one
	// core, a stall's backlog drains slowly and every later request waits.
	busy                float64
	gcPauses            float64       // stop-the-world pauses (two per GC)
	gcPauseMax          time.Duration // bucket bound
	schedP999, schedMax time.Duration // goroutine wait for a thread, bucket bounds
}

func (p *stallProbe) finish() stallEvidence {
	user, sys := cpuTicks(p.pid)
	e := stallEvidence{
		runqWait: runqWait(p.pid) - p.wait,
		steal:    time.Duration(stealTicks()-p.steal) * time.Second / clockTicksPerSecond,
		busy:     float64(user+sys-p.cpu) / clockTicksPerSecond / time.Since(p.started).Seconds(),
	}
	if p.admin != "" {
		after := scrapeHistograms(p.admin, stallHistograms...)
		e.gcPauses, _, e.gcPauseMax = after["go_gc_pauses_seconds"].delta(p.histograms["go_gc_pauses_seconds"])
		_, e.schedP999, e.schedMax = after["go_sched_latencies_seconds"].delta(p.histograms["go_sched_latencies_seconds"])
	}
	return e
}
