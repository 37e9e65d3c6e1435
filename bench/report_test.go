package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fakeRunner(t *testing.T) (*runner, []scenario, []rateResult, []idleResult) {
	r := newRunner(settings{rounds: 2, cores: 1, duration: time.Second, warmup: time.Second})
	scenarios := []scenario{
		{name: "pass 128 B", anchor: "nginx", systems: []string{"edgeproxy", "nginx"}},
		{name: "coupon nearby mixed", anchor: "bare fasthttp", systems: []string{"edgeproxy", "nginx proxy_cache", "bare fasthttp"}},
	}
	r.results = []result{
		{scenario: "pass 128 B", system: "edgeproxy", rps: 40000, cpuUs: 24, cpuRatio: 1.2, cpuRatioMin: 1.1, cpuRatioMax: 1.3},
		{scenario: "pass 128 B", system: "nginx", rps: 48000, cpuUs: 20},
		{scenario: "coupon nearby mixed", system: "edgeproxy", rps: 30000, cpuUs: 30, cpuRatio: 1.9, cpuRatioMin: 1.8, cpuRatioMax: 2.1},
		{scenario: "coupon nearby mixed", system: "nginx proxy_cache", rps: 50000, cpuUs: 20, cpuRatio: 1.3, cpuRatioMin: 1.2, cpuRatioMax: 1.4},
		{scenario: "coupon nearby mixed", system: "bare fasthttp", rps: 60000, cpuUs: 15},
	}
	ms := time.Millisecond
	rate := []rateResult{
		{rate: 24000, system: "nginx", p50: ms / 10, p99: 2 * ms, p999: 5 * ms, max: 9 * ms},
		{rate: 24000, system: "edgeproxy", p50: ms / 10, p99: ms, p999: 4 * ms, max: 8 * ms},
		{rate: 24000, system: "edgeproxy", p50: ms / 10, p99: 20 * ms, p999: 40 * ms, max: 50 * ms},
		{rate: 24000, system: "nginx", p50: ms / 10, p99: 3 * ms, p999: 6 * ms, max: 7 * ms},
	}
	idle := []idleResult{
		{system: "edgeproxy", conns: 10000, before: 20000, after: 180000},
		{system: "edgeproxy", lever: "after 2 forced GCs", conns: 10000, before: 20000, after: 120000},
		{system: "nginx", conns: 10000, before: 30000, after: 36000},
	}
	return r, scenarios, rate, idle
}

// The charts are SVG files drawn from the results, one per section that
// ran; the report links them and judges each round of the constant rate.
func TestChartsAndReport(t *testing.T) {
	r, scenarios, rate, idle := fakeRunner(t)
	dir := t.TempDir()
	charts, err := r.writeCharts(dir, scenarios, rate, idle)
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != 3 {
		t.Fatalf("charts: %v", charts)
	}
	for _, c := range charts {
		b, err := os.ReadFile(c)
		if err != nil || !strings.Contains(string(b), "<svg") {
			t.Fatalf("%s: %v %.100s", c, err, b)
		}
	}
	if charts, _ := r.writeCharts(t.TempDir(), scenarios, nil, nil); len(charts) != 1 {
		t.Fatalf("only the CPU chart has data, got %v", charts)
	}
	r.charts = charts
	report := r.report(scenarios, rate, idle)
	for _, want := range []string{
		"| coupon nearby mixed | edgeproxy | 30000 |", "1.80–2.10×",
		"| constant rate: edgeproxy's p99 ≤ nginx's, every round | 1 of 2 rounds | **missed** |",
		"| constant rate: no round with edgeproxy's p99 above 10 ms | 1 of 2 rounds under | **missed** |",
		"| idle keep-alive connection ≤ 4 KiB RSS at 10000 | 16.0 KiB | **missed** |",
		"![bench-cpu](bench-cpu.svg)",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// The README's summary is replaced between its markers and nothing else
// changes; a README without the markers is an error, not a silent skip.
func TestSummaryBetweenMarkers(t *testing.T) {
	r, _, rate, idle := fakeRunner(t)
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	os.WriteFile(readme, []byte("# x\n\nbefore\n"+summaryBegin+"\nold text\n"+summaryEnd+"\nafter\n"), 0o644)
	r.charts = []string{filepath.Join(dir, "docs", chartCPU)}
	if err := updateSummary(readme, r.summary(filepath.Join(dir, "docs", "benchmarks.md"), readme, rate, idle)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(readme)
	s := string(b)
	for _, want := range []string{"# x\n\nbefore\n" + summaryBegin + "\n", summaryEnd + "\nafter\n", "| coupon nearby mixed | 1.90× the bare server | 1.80–2.10× |",
		"[docs/benchmarks.md](docs/benchmarks.md)", "![bench-cpu](docs/bench-cpu.svg)", "p99 by round: edgeproxy 1.00 ms, 20.00 ms; nginx 2.00 ms, 3.00 ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("README lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "old text") {
		t.Error("the old summary is still there")
	}
	os.WriteFile(readme, []byte("# no markers\n"), 0o644)
	if err := updateSummary(readme, "x"); err == nil {
		t.Error("no error without markers")
	}
}

func TestCPUSets(t *testing.T) {
	for _, c := range []struct {
		cores, ncpu int
		sut, load   string
		shared      bool
	}{{1, 2, "0", "1", false}, {2, 2, "0-1", "1", true}, {2, 16, "0-1", "2-15", false}, {8, 16, "0-7", "8-15", false}, {1, 3, "0", "1-2", false}} {
		sut, load, shared := cpuSets(c.cores, c.ncpu)
		if sut != c.sut || load != c.load || shared != c.shared {
			t.Errorf("cpuSets(%d, %d) = %s %s %v, want %s %s %v", c.cores, c.ncpu, sut, load, shared, c.sut, c.load, c.shared)
		}
	}
}

// TestParsePerfStat: perf stat's CSV lines become counts per request,
// grouped as the report's columns; lines perf could not count are skipped.
func TestParsePerfStat(t *testing.T) {
	out := `500000,,raw_syscalls:sys_enter,5000000000,100.00,,
12000,,context-switches,5000000000,100.00,,
100000,,syscalls:sys_enter_read,5000000000,100.00,,
50000,,syscalls:sys_enter_recvfrom,5000000000,100.00,,
100000,,syscalls:sys_enter_write,5000000000,100.00,,
150000,,syscalls:sys_enter_epoll_pwait,5000000000,100.00,,
<not counted>,,syscalls:sys_enter_epoll_ctl,0,100.00,,
20000,,syscalls:sys_enter_futex,5000000000,100.00,,
`
	x := parsePerfStat(out, 100000)
	want := syscallResult{requests: 100000, all: 5, reads: 1.5, writes: 1, waits: 1.5, futex: 0.2, switches: 0.12}
	if x != want {
		t.Fatalf("got %+v\nwant %+v", x, want)
	}
	if o := x.other(); o < 0.799 || o > 0.801 {
		t.Errorf("other = %v, want 0.8", o)
	}
	x.scenario, x.system, x.userUs, x.sysUs = "pass 128 B", "edgeproxy", 7.25, 20
	if tab := syscallTable([]syscallResult{x}); !strings.Contains(tab, "| pass 128 B | edgeproxy | 7.2 | 20.0 | 5.00 | 1.50 | 1.00 | 1.50 | 0.00 | 0.20 | 0.80 | 0.12 |") {
		t.Errorf("table:\n%s", tab)
	}
}

func TestParseIPIs(t *testing.T) {
	out := "CPU0,300,,ipi:ipi_send_cpu,1,100.00,,\nCPU1,900,,ipi:ipi_send_cpu,1,100.00,,\n" +
		"CPU0,100,,irq_vectors:reschedule_entry,1,100.00,,\nCPU0,<not counted>,,irq_vectors:call_function_entry,1,0,,\n"
	sent, taken := parseIPIs(out, cpuNames("0"), 100)
	if sent != 3 || taken != 1 {
		t.Errorf("CPU0: sent %v, taken %v; want 3, 1", sent, taken)
	}
	if sent, _ := parseIPIs(out, cpuNames("0-1"), 100); sent != 12 {
		t.Errorf("CPU0-1: sent %v, want 12", sent)
	}
	if sent, taken := parseIPIs("", cpuNames("0"), 100); sent != -1 || taken != -1 {
		t.Errorf("nothing counted: %v %v, want -1 -1", sent, taken)
	}
}
