package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edgeproxy/edgeproxy/internal/benchdata"
)

type scenario struct {
	name   string
	script string // wrk Lua script, "" for GET
	data   string // coupon data set (dataSample when "")
	conns  int
	// probe, when set, is asked for a note on what a system answers
	// (logged before it is measured).
	probe func(url string) (string, error)
	// anchor is the system others are compared with in the ratio column.
	anchor  string
	systems []string
}

func (r *runner) run() error {
	var err error
	r.contentionStart = contention()
	if r.dir, err = os.MkdirTemp("", "edgebench"); err != nil {
		return err
	}
	os.Chmod(r.dir, 0o755)
	if err := r.ensureTools(); err != nil {
		return err
	}
	if err := r.build(); err != nil {
		return err
	}
	if err := r.prepare(); err != nil {
		return err
	}
	post := filepath.Join(r.dir, "post.lua")
	os.WriteFile(post, []byte(`wrk.method = "POST"
wrk.body = string.rep("p", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
`), 0o644)

	gzipScript := filepath.Join(r.dir, "gzip.lua")
	os.WriteFile(gzipScript, []byte(`wrk.headers["Accept-Encoding"] = "gzip"
`), 0o644)

	// The static file of the file scenario: root + the whole request path
	// (nginx root, SPEC §8), the same file for both systems.
	if err := r.writeStaticFile(); err != nil {
		return err
	}

	systems := map[string]system{
		"edgeproxy": {name: "edgeproxy", start: r.startEdge, paths: map[string]string{
			"pass 128 B": "/size/128", "pass 4 KiB": "/size/4096", "pass 1 MiB": "/size/1048576", "POST 64 KiB": "/post",
			"coupon by id": pathByID, "coupon nearby": pathNearby, "coupon nearby mixed": "/"}},
		"nginx": {name: "nginx", start: r.startNginx, paths: map[string]string{
			"pass 128 B": "/size/128", "pass 4 KiB": "/size/4096", "pass 1 MiB": "/size/1048576", "POST 64 KiB": "/post"}},
		"nginx proxy_cache": {name: "nginx proxy_cache", start: r.startNginx, paths: map[string]string{
			"coupon by id": "/cached/0", "coupon nearby": "/cached/1", "coupon nearby mixed": "/"}},
		"bare fasthttp": {name: "bare fasthttp", start: r.startBare, paths: map[string]string{
			"coupon by id": "/0", "coupon nearby": "/1", "coupon nearby mixed": "/"}},
		"edgeproxy gzip": {name: "edgeproxy gzip", start: r.startEdgeGzip, paths: map[string]string{
			"4 KiB JSON gzip": "/json/4096", "4 KiB JSON not compressed": "/json/4096"}},
		"nginx gzip": {name: "nginx gzip", start: r.startNginx, paths: map[string]string{
			"4 KiB JSON gzip": "/json/4096", "4 KiB JSON not compressed": "/json/4096"}},
		"edgeproxy files": {name: "edgeproxy files", start: r.startEdgeFiles, paths: map[string]string{
			"file 4 KiB": staticPath}},
		"nginx sendfile": {name: "nginx sendfile", start: r.startNginx, paths: map[string]string{
			"file 4 KiB": staticPath}},
	}
	scenarios := []scenario{
		{name: "pass 128 B", conns: r.s.conns, anchor: "nginx", systems: []string{"edgeproxy", "nginx"}},
		{name: "pass 4 KiB", conns: r.s.conns, anchor: "nginx", systems: []string{"edgeproxy", "nginx"}},
		{name: "pass 1 MiB", conns: 8, anchor: "nginx", systems: []string{"edgeproxy", "nginx"}},
		{name: "POST 64 KiB", script: post, conns: 16, anchor: "nginx", systems: []string{"edgeproxy", "nginx"}},
		{name: "coupon by id", conns: r.s.conns, anchor: "bare fasthttp", systems: []string{"edgeproxy", "nginx proxy_cache", "bare fasthttp"}},
		{name: "coupon nearby", conns: r.s.conns, anchor: "bare fasthttp", systems: []string{"edgeproxy", "nginx proxy_cache", "bare fasthttp"}},
		// The same configurations (compression on), asked with and without
		// Accept-Encoding: gzip.
		{name: "4 KiB JSON gzip", script: gzipScript, conns: r.s.conns, anchor: "nginx gzip",
			systems: []string{"edgeproxy gzip", "nginx gzip"}, probe: probeEncoding("gzip")},
		{name: "4 KiB JSON not compressed", conns: r.s.conns, anchor: "nginx gzip",
			systems: []string{"edgeproxy gzip", "nginx gzip"}, probe: probeEncoding("")},
		// A static file served by each itself: a root route against nginx's
		// location with sendfile on.
		{name: "file 4 KiB", conns: r.s.conns, anchor: "nginx sendfile",
			systems: []string{"edgeproxy files", "nginx sendfile"}, probe: probeFile(staticSize)},
		{name: "coupon nearby mixed", script: r.mixedScript, data: dataDense, conns: r.s.conns, anchor: "bare fasthttp",
			systems: []string{"edgeproxy", "nginx proxy_cache", "bare fasthttp"}},
	}
	if r.s.baseline != "" {
		const base = "edgeproxy baseline"
		systems[base] = system{name: base, start: r.startBaseline, paths: systems["edgeproxy"].paths}
		for i, sc := range scenarios {
			if j := slices.Index(sc.systems, "edgeproxy"); j >= 0 {
				scenarios[i].systems = slices.Insert(slices.Clone(sc.systems), j+1, base)
			}
		}
	}
	runs := map[string][]result{}
	for round := 0; round < r.s.rounds; round++ {
		for _, sc := range scenarios {
			if !r.selected(sc.name) {
				continue
			}
			order := sc.systems
			if round%2 == 1 { // alternate who goes first
				order = reversed(order)
			}
			for _, name := range order {
				sys := systems[name]
				res, err := r.measure(sys, sc)
				if err != nil {
					return fmt.Errorf("%s / %s: %w", sc.name, name, err)
				}
				r.logf("round %d  %-14s %-18s %9.0f req/s  p50 %-9v p99 %-9v %6.1f µs CPU/req  %6.1f MiB  errors %d",
					round+1, sc.name, name, res.rps, res.p50, res.p99, res.cpuUs, res.rssMiB, res.errors)
				runs[sc.name+"\x00"+name] = append(runs[sc.name+"\x00"+name], res)
			}
		}
	}
	for _, sc := range scenarios {
		anchor := runs[sc.name+"\x00"+sc.anchor]
		for _, name := range sc.systems {
			rs := runs[sc.name+"\x00"+name]
			if len(rs) == 0 {
				continue
			}
			res := medianResult(sc.name, name, rs)
			res.cpuRatio, res.cpuRatioMin, res.cpuRatioMax = pairedRatio(rs, anchor)
			r.results = append(r.results, res)
		}
	}

	var rate []rateResult
	var idle []idleResult
	if r.selected("constant rate") {
		if rate, err = r.constantRate(systems); err != nil {
			return err
		}
	}
	if r.selected("idle connections") {
		if idle, err = r.idleConns(systems); err != nil {
			return err
		}
	}
	if r.syscallCounts, err = r.syscalls(systems, scenarios); err != nil {
		return err
	}
	if r.s.only != "" && !r.s.write {
		report := r.report(scenarios, rate, idle)
		fmt.Println(report)
		if r.s.out == defaultOut {
			return nil
		}
		// A part written to a file of its own (-out), never over the
		// full report, the charts or the README's summary.
		r.logf("wrote %s", r.s.out)
		return os.WriteFile(r.s.out, []byte(report), 0o644)
	}
	out := r.s.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(r.s.root, out)
	}
	if !r.s.short {
		// The charts and the README's summary come from full runs only, so
		// a smoke run never replaces them.
		if r.charts, err = r.writeCharts(filepath.Dir(out), scenarios, rate, idle); err != nil {
			return err
		}
		readme := filepath.Join(r.s.root, "README.md")
		if err := updateSummary(readme, r.summary(out, readme, rate, idle)); err != nil {
			return err
		}
		r.logf("wrote %d charts and the summary in README.md", len(r.charts))
	}
	report := r.report(scenarios, rate, idle)
	fmt.Println(report)
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		return err
	}
	r.logf("wrote %s", r.s.out)
	return nil
}

// selected reports whether -only picks the scenario or section name: it
// is a comma-separated list of parts of names ("" picks everything).
func (r *runner) selected(name string) bool {
	if r.s.only == "" {
		return true
	}
	for _, part := range strings.Split(r.s.only, ",") {
		if part != "" && strings.Contains(name, part) {
			return true
		}
	}
	return false
}

func reversed(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[len(xs)-1-i] = x
	}
	return out
}

// measure starts sys fresh, warms it up, and runs wrk once.
func (r *runner) measure(sys system, sc scenario) (result, error) {
	cmd, addr, err := sys.start(sc.data)
	if err != nil {
		return result{}, err
	}
	defer r.stop(cmd)
	url := "http://" + addr + sys.paths[sc.name]
	if sc.probe != nil {
		note, err := sc.probe(url)
		if err != nil {
			return result{}, err
		}
		r.logf("%s / %s: %s", sc.name, sys.name, note)
	}
	if strings.HasPrefix(sc.name, "coupon") && sys.name == "edgeproxy" {
		// Fill the caches one query at a time. No longer needed against
		// stalls (concurrent misses of a cell now make one read and one
		// decode: cache/flight.go), but kept so that what is measured,
		// peak RSS included, is a warm edgeproxy, as in earlier runs.
		paths := []string{sys.paths[sc.name]}
		if sc.data == dataDense {
			paths = benchdata.Paths("/coupons", mixedPoints)
		}
		for _, p := range paths {
			var err error
			for try := 0; try < 5; try++ { // a 503 while Redis is slow to answer
				if _, err = httpGet("http://" + addr + p); err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				return result{}, err
			}
		}
	}
	if _, err := r.wrk(cmd.Process.Pid, url, sc.script, sc.conns, r.s.warmup); err != nil {
		return result{}, err
	}
	profiled := make(chan error, 1)
	if r.s.profile != "" && strings.HasPrefix(sys.name, "edgeproxy") { // "edgeproxy gzip", "edgeproxy files" too
		go func() { profiled <- r.cpuProfile(sc.name) }()
	} else {
		profiled <- nil
	}
	res, err := r.wrk(cmd.Process.Pid, url, sc.script, sc.conns, r.s.duration)
	if err != nil {
		return result{}, err
	}
	if err := <-profiled; err != nil {
		return result{}, err
	}
	res.scenario, res.system = sc.name, sys.name
	res.rssMiB = float64(rssKiB(cmd.Process.Pid, "VmHWM")) / 1024
	return res, nil
}

func medianResult(scenario, system string, rs []result) result {
	var rps, cpu, rss, p50, p99 []float64
	errs := 0
	for _, x := range rs {
		rps = append(rps, x.rps)
		cpu = append(cpu, x.cpuUs)
		rss = append(rss, x.rssMiB)
		p50 = append(p50, float64(x.p50))
		p99 = append(p99, float64(x.p99))
		errs += x.errors
	}
	return result{scenario: scenario, system: system, rps: median(rps), cpuUs: median(cpu), rssMiB: median(rss),
		p50: time.Duration(median(p50)), p99: time.Duration(median(p99)), errors: errs}
}

// pairedRatio is the median over rounds of the system's CPU per request
// divided by the anchor's in the same round. The machine's speed drifts
// between rounds (a shared host), and both runs of a round see the same
// drift, so the ratio of one round is steadier than the ratio of medians
// taken from different rounds.
// It returns the lowest and the highest round's ratio too.
func pairedRatio(rs, anchor []result) (med, lo, hi float64) {
	var ratios []float64
	for i := range min(len(rs), len(anchor)) {
		if anchor[i].cpuUs > 0 {
			ratios = append(ratios, rs[i].cpuUs/anchor[i].cpuUs)
		}
	}
	if len(ratios) == 0 {
		return 0, 0, 0
	}
	return median(ratios), slices.Min(ratios), slices.Max(ratios)
}

func (r *runner) find(scenario, system string) result {
	for _, x := range r.results {
		if x.scenario == scenario && x.system == system {
			return x
		}
	}
	return result{}
}

// constantRate offers each proxy half of nginx's measured maximum for
// 128-byte pass-through, and reads latency from each request's intended
// start, so a stall shows in the percentiles (no coordinated omission).
type rateResult struct {
	rate                 float64
	system               string
	p50, p99, p999, max  time.Duration
	sent, failed, missed int
	ev                   stallEvidence
}

func (r *runner) constantRate(systems map[string]system) ([]rateResult, error) {
	rate := r.find("pass 128 B", "nginx").rps / 2
	if r.s.rate > 0 {
		rate = r.s.rate
	}
	if rate == 0 {
		return nil, fmt.Errorf("the constant rate needs the pass 128 B scenario or -rate")
	}
	var out []rateResult
	for round := 0; round < r.s.rounds; round++ {
		for _, name := range []string{"nginx", "edgeproxy"} {
			if round%2 == 1 {
				name = map[string]string{"nginx": "edgeproxy", "edgeproxy": "nginx"}[name]
			}
			sys := systems[name]
			cmd, addr, err := sys.start("")
			if err != nil {
				return nil, err
			}
			r.wrk(cmd.Process.Pid, "http://"+addr+"/size/128", "", 16, r.s.warmup)
			admin := ""
			if name == "edgeproxy" {
				admin = r.edgeAdmin
			}
			probe := startProbe(cmd.Process.Pid, admin)
			profiled := make(chan error, 1)
			if r.s.profile != "" && name == "edgeproxy" {
				go func() { profiled <- r.cpuProfile(fmt.Sprintf("constant rate %d", round+1)) }()
			} else {
				profiled <- nil
			}
			lg := exec.Command("taskset", "-c", r.loadCPUs, r.benchBin, "-loadgen", "http://"+addr+"/size/128",
				fmt.Sprintf("%.0f", rate), r.s.duration.String(), "64")
			b, err := r.output(lg)
			ev := probe.finish()
			perr := <-profiled
			r.stop(cmd)
			if err != nil {
				return nil, fmt.Errorf("loadgen: %v\n%s", err, b)
			}
			if perr != nil {
				return nil, fmt.Errorf("profile of the constant rate: %w", perr)
			}
			var rr rateResult
			if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d %d %d %d %d %d %d", &rr.sent, &rr.failed, &rr.missed,
				(*int64)(&rr.p50), (*int64)(&rr.p99), (*int64)(&rr.p999), (*int64)(&rr.max)); err != nil {
				return nil, fmt.Errorf("loadgen output %q: %v", b, err)
			}
			rr.rate, rr.system, rr.ev = rate, name, ev
			r.logf("constant %.0f req/s  %-10s p50 %v p99 %v p99.9 %v max %v  sent %d failed %d  busy %.0f%% run-queue wait %v steal %v GC pauses %.0f (max ≤%v) sched p99.9 ≤%v max ≤%v",
				rate, name, rr.p50, rr.p99, rr.p999, rr.max, rr.sent, rr.failed, 100*ev.busy, ev.runqWait, ev.steal, ev.gcPauses, ev.gcPauseMax, ev.schedP999, ev.schedMax)
			out = append(out, rr)
		}
	}
	return out, nil
}

// cpuProfile fetches a CPU profile from edgeproxy's admin port over most
// of the measured run.
func (r *runner) cpuProfile(scenario string) error {
	secs := max(int(r.s.duration.Seconds())-1, 1)
	b, err := httpGetTimeout(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.edgeAdmin, secs), r.s.duration+10*time.Second)
	if err != nil {
		return err
	}
	os.MkdirAll(r.s.profile, 0o755)
	name := strings.NewReplacer(" ", "-").Replace(scenario) + ".pprof"
	r.logf("profile of %s: %s", scenario, filepath.Join(r.s.profile, name))
	return os.WriteFile(filepath.Join(r.s.profile, name), b, 0o644)
}
