package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

type scenario struct {
	name   string
	script string // wrk Lua script, "" for GET
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

	systems := map[string]system{
		"edgeproxy": {name: "edgeproxy", start: r.startEdge, paths: map[string]string{
			"pass 128 B": "/size/128", "pass 4 KiB": "/size/4096", "pass 1 MiB": "/size/1048576", "POST 64 KiB": "/post",
			"coupon by id": pathByID, "coupon nearby": pathNearby}},
		"nginx": {name: "nginx", start: r.startNginx, paths: map[string]string{
			"pass 128 B": "/size/128", "pass 4 KiB": "/size/4096", "pass 1 MiB": "/size/1048576", "POST 64 KiB": "/post"}},
		"nginx proxy_cache": {name: "nginx proxy_cache", start: r.startNginx, paths: map[string]string{
			"coupon by id": "/cached/0", "coupon nearby": "/cached/1"}},
		"bare fasthttp": {name: "bare fasthttp", start: r.startBare, paths: map[string]string{
			"coupon by id": "/0", "coupon nearby": "/1"}},
		"edgeproxy gzip": {name: "edgeproxy gzip", start: r.startEdgeGzip, paths: map[string]string{
			"4 KiB JSON gzip": "/json/4096", "4 KiB JSON not compressed": "/json/4096"}},
		"nginx gzip": {name: "nginx gzip", start: r.startNginx, paths: map[string]string{
			"4 KiB JSON gzip": "/json/4096", "4 KiB JSON not compressed": "/json/4096"}},
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
	}
	runs := map[string][]result{}
	for round := 0; round < r.s.rounds; round++ {
		for _, sc := range scenarios {
			if !strings.Contains(sc.name, r.s.only) {
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
			res.cpuRatio = pairedRatio(rs, anchor)
			r.results = append(r.results, res)
		}
	}

	if r.s.only != "" {
		fmt.Println(r.report(scenarios, nil, nil))
		return nil
	}
	rate, err := r.constantRate(systems)
	if err != nil {
		return err
	}
	idle, err := r.idleConns(systems)
	if err != nil {
		return err
	}
	report := r.report(scenarios, rate, idle)
	fmt.Println(report)
	out := r.s.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(r.s.root, out)
	}
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		return err
	}
	r.logf("wrote %s", r.s.out)
	return nil
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
	cmd, addr, err := sys.start()
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
	if _, err := r.wrk(cmd.Process.Pid, url, sc.script, sc.conns, r.s.warmup); err != nil {
		return result{}, err
	}
	profiled := make(chan error, 1)
	if r.s.profile != "" && sys.name == "edgeproxy" {
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
func pairedRatio(rs, anchor []result) float64 {
	var ratios []float64
	for i := range min(len(rs), len(anchor)) {
		if anchor[i].cpuUs > 0 {
			ratios = append(ratios, rs[i].cpuUs/anchor[i].cpuUs)
		}
	}
	return median(ratios)
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
}

func (r *runner) constantRate(systems map[string]system) ([]rateResult, error) {
	rate := r.find("pass 128 B", "nginx").rps / 2
	var out []rateResult
	for round := 0; round < r.s.rounds; round++ {
		for _, name := range []string{"nginx", "edgeproxy"} {
			if round%2 == 1 {
				name = map[string]string{"nginx": "edgeproxy", "edgeproxy": "nginx"}[name]
			}
			sys := systems[name]
			cmd, addr, err := sys.start()
			if err != nil {
				return nil, err
			}
			r.wrk(cmd.Process.Pid, "http://"+addr+"/size/128", "", 16, r.s.warmup)
			lg := exec.Command("taskset", "-c", loadCore, r.benchBin, "-loadgen", "http://"+addr+"/size/128",
				fmt.Sprintf("%.0f", rate), r.s.duration.String(), "64")
			b, err := r.output(lg)
			r.stop(cmd)
			if err != nil {
				return nil, fmt.Errorf("loadgen: %v\n%s", err, b)
			}
			var rr rateResult
			if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d %d %d %d %d %d %d", &rr.sent, &rr.failed, &rr.missed,
				(*int64)(&rr.p50), (*int64)(&rr.p99), (*int64)(&rr.p999), (*int64)(&rr.max)); err != nil {
				return nil, fmt.Errorf("loadgen output %q: %v", b, err)
			}
			rr.rate, rr.system = rate, name
			r.logf("constant %.0f req/s  %-10s p50 %v p99 %v p99.9 %v max %v  sent %d failed %d", rate, name, rr.p50, rr.p99, rr.p999, rr.max, rr.sent, rr.failed)
			out = append(out, rr)
		}
	}
	return out, nil
}

type idleResult struct {
	system        string
	conns         int
	before, after int64 // KiB
}

// idleConns opens many keep-alive connections, one request each, and
// reads the system's RSS growth per connection.
func (r *runner) idleConns(systems map[string]system) ([]idleResult, error) {
	var out []idleResult
	for _, name := range []string{"edgeproxy", "nginx"} {
		sys := systems[name]
		cmd, addr, err := sys.start()
		if err != nil {
			return nil, err
		}
		pid := cmd.Process.Pid
		time.Sleep(300 * time.Millisecond)
		before := rssKiB(pid, "VmRSS")
		lg := exec.Command("taskset", "-c", loadCore, r.benchBin, "-idle", addr, fmt.Sprint(r.s.idle))
		stdin, _ := lg.StdinPipe()
		stdout, _ := lg.StdoutPipe()
		lg.Stderr = os.Stderr
		if err := lg.Start(); err != nil {
			return nil, err
		}
		buf := make([]byte, 64)
		n, _ := stdout.Read(buf)
		if !strings.HasPrefix(string(buf[:n]), "ready") {
			lg.Process.Kill()
			lg.Wait()
			r.stop(cmd)
			return nil, fmt.Errorf("idle connections to %s: %q", name, buf[:n])
		}
		time.Sleep(500 * time.Millisecond)
		after := rssKiB(pid, "VmRSS")
		stdin.Close()
		lg.Wait()
		r.stop(cmd)
		res := idleResult{system: name, conns: r.s.idle, before: before, after: after}
		r.logf("%d idle connections: %s RSS %d → %d KiB, %.1f KiB each", r.s.idle, name, before, after, float64(after-before)/float64(r.s.idle))
		out = append(out, res)
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
