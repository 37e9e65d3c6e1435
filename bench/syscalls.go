package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// syscallResult is what perf stat counted in one system's process (and
// its children: nginx's worker) while wrk saturated it, per request.
type syscallResult struct {
	scenario, system string
	requests         float64
	all, reads       float64 // every system call; read, readv, recvfrom, recvmsg
	writes, waits    float64 // write, writev, sendto, sendmsg, sendfile; epoll_wait, epoll_pwait
	ctl, futex       float64 // epoll_ctl; futex, nanosleep (the runtime's thread wake-ups)
	switches         float64 // context switches
	// Inter-processor interrupts sent and taken by the system's cores
	// (all processes on them, perf stat -a), per request; -1: not counted.
	// A write that wakes a reader sleeping on the other core sends one.
	ipisSent, ipisTaken float64
	// CPU per request of the same run, in user space and in the kernel
	// (utime and stime from /proc; perf's tracepoints add a little to the
	// kernel's share).
	userUs, sysUs float64
}

func (x syscallResult) other() float64 {
	return x.all - x.reads - x.writes - x.waits - x.ctl - x.futex
}

var syscallGroups = map[string]func(*syscallResult) *float64{
	"read": readsOf, "readv": readsOf, "recvfrom": readsOf, "recvmsg": readsOf,
	"write": writesOf, "writev": writesOf, "sendto": writesOf, "sendmsg": writesOf, "sendfile64": writesOf,
	"epoll_wait": func(x *syscallResult) *float64 { return &x.waits }, "epoll_pwait": func(x *syscallResult) *float64 { return &x.waits },
	"epoll_ctl": func(x *syscallResult) *float64 { return &x.ctl },
	"futex":     func(x *syscallResult) *float64 { return &x.futex }, "nanosleep": func(x *syscallResult) *float64 { return &x.futex },
}

func readsOf(x *syscallResult) *float64  { return &x.reads }
func writesOf(x *syscallResult) *float64 { return &x.writes }

// syscallScenarios are counted: the pass-through pair, edgeproxy against
// nginx, and the mixed nearby queries, edgeproxy against the bare server
// answering the same bytes.
var syscallScenarios = map[string][]string{
	"pass 128 B":          {"edgeproxy", "nginx"},
	"pass 4 KiB":          {"edgeproxy", "nginx"},
	"pass 1 MiB":          {"edgeproxy", "nginx"},
	"POST 64 KiB":         {"edgeproxy", "nginx"},
	"coupon nearby mixed": {"edgeproxy", "bare fasthttp"},
}

// syscalls counts system calls per request at saturation with perf stat,
// one run each; counts, unlike times, do not drift with the host's load.
func (r *runner) syscalls(systems map[string]system, scenarios []scenario) ([]syscallResult, error) {
	if !r.selected("system calls") {
		return nil, nil
	}
	if _, err := exec.LookPath("perf"); err != nil {
		r.notes = append(r.notes, "system calls per request not counted: perf is not installed (Debian: linux-perf)")
		return nil, nil
	}
	if out, err := exec.Command("perf", "stat", "-e", "raw_syscalls:sys_enter", "true").CombinedOutput(); err != nil {
		r.notes = append(r.notes, "system calls per request not counted: perf stat cannot read the raw_syscalls tracepoint here: "+firstLine(out))
		return nil, nil
	}
	var out []syscallResult
	for _, sc := range scenarios {
		for _, sysName := range syscallScenarios[sc.name] {
			x, err := r.syscallsOnce(systems[sysName], sc)
			if err != nil {
				return nil, fmt.Errorf("syscalls %s / %s: %w", sc.name, sysName, err)
			}
			r.logf("syscalls %-12s %-10s per request: %.1f µs user, %.1f µs kernel, %.2f (reads %.2f, writes %.2f, epoll waits %.2f, epoll_ctl %.2f, futex+nanosleep %.2f), %.2f context switches, IPIs sent %s, taken %s",
				sc.name, sysName, x.userUs, x.sysUs, x.all, x.reads, x.writes, x.waits, x.ctl, x.futex, x.switches, perRequest(x.ipisSent), perRequest(x.ipisTaken))
			out = append(out, x)
		}
	}
	return out, nil
}

func (r *runner) syscallsOnce(sys system, sc scenario) (syscallResult, error) {
	cmd, addr, err := sys.start(sc.data)
	if err != nil {
		return syscallResult{}, err
	}
	defer r.stop(cmd)
	pid := cmd.Process.Pid
	url := "http://" + addr + sys.paths[sc.name]
	if _, err := r.wrk(pid, url, sc.script, sc.conns, r.s.warmup); err != nil {
		return syscallResult{}, err
	}
	events := []string{"raw_syscalls:sys_enter", "context-switches"}
	for name := range syscallGroups {
		events = append(events, "syscalls:sys_enter_"+name)
	}
	pids := []string{strconv.Itoa(pid)}
	for _, c := range children(pid) {
		pids = append(pids, strconv.Itoa(c))
	}
	perf := exec.Command("perf", "stat", "-x", ",", "-e", strings.Join(events, ","), "-p", strings.Join(pids, ","))
	var perfOut bytes.Buffer
	perf.Stderr = &perfOut
	if err := perf.Start(); err != nil {
		return syscallResult{}, err
	}
	ipiPerf := exec.Command("perf", "stat", "-a", "-A", "-x", ",", "-e", strings.Join(ipiEvents, ","))
	var ipiOut bytes.Buffer
	ipiPerf.Stderr = &ipiOut
	ipiStarted := ipiPerf.Start() == nil
	time.Sleep(200 * time.Millisecond) // perf attaches before the load starts
	res, err := r.wrk(pid, url, sc.script, sc.conns, r.s.duration)
	perf.Process.Signal(syscall.SIGINT)
	perf.Wait()
	if ipiStarted {
		ipiPerf.Process.Signal(syscall.SIGINT)
		ipiPerf.Wait()
	}
	if err != nil {
		return syscallResult{}, err
	}
	if res.requests == 0 {
		return syscallResult{}, fmt.Errorf("no requests")
	}
	x := parsePerfStat(perfOut.String(), res.requests)
	x.scenario, x.system = sc.name, sys.name
	x.userUs, x.sysUs = res.userUs, res.sysUs
	x.ipisSent, x.ipisTaken = parseIPIs(ipiOut.String(), cpuNames(r.sutCPUs), res.requests)
	if x.all == 0 {
		return x, fmt.Errorf("perf stat counted nothing:\n%s", perfOut.String())
	}
	return x, nil
}

// parsePerfStat reads perf stat -x, output (value,unit,event,...) into
// counts per request.
func parsePerfStat(out string, requests float64) syscallResult {
	x := syscallResult{requests: requests}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, ",")
		if len(f) < 3 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue // "<not counted>", "<not supported>"
		}
		v /= requests
		switch ev := f[2]; {
		case ev == "raw_syscalls:sys_enter":
			x.all = v
		case ev == "context-switches":
			x.switches = v
		case strings.HasPrefix(ev, "syscalls:sys_enter_"):
			if g := syscallGroups[strings.TrimPrefix(ev, "syscalls:sys_enter_")]; g != nil {
				*g(&x) += v
			}
		}
	}
	return x
}

// ipiEvents: IPIs sent, and the kinds a core takes for wake-ups and
// remote function calls.
var ipiEvents = []string{"ipi:ipi_send_cpu", "ipi:ipi_send_cpumask",
	"irq_vectors:reschedule_entry", "irq_vectors:call_function_single_entry", "irq_vectors:call_function_entry"}

// parseIPIs reads perf stat -a -A -x, output (CPU,value,unit,event,...)
// into IPIs sent and taken per request by the cores in cpus; -1 when
// nothing was counted.
func parseIPIs(out string, cpus map[string]bool, requests float64) (sent, taken float64) {
	sent, taken = -1, -1
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, ",")
		if len(f) < 4 || !cpus[f[0]] {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		v /= requests
		if strings.HasPrefix(f[3], "ipi:") {
			sent = max(sent, 0) + v
		} else {
			taken = max(taken, 0) + v
		}
	}
	return sent, taken
}

// cpuNames turns a taskset list ("0", "0-1", "0,2") into perf's CPU names.
func cpuNames(list string) map[string]bool {
	names := map[string]bool{}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for c := a; c <= b; c++ {
			names["CPU"+strconv.Itoa(c)] = true
		}
	}
	return names
}

func perRequest(v float64) string {
	if v < 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// syscallTable is the report's section.
func syscallTable(xs []syscallResult) string {
	if len(xs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## System calls per request\n\nCounted by `perf stat` (the `raw_syscalls` and `syscalls` tracepoints, and context switches) in the process and its children while wrk saturates it, divided by the requests wrk completed; one run each. Reads are read, readv, recvfrom and recvmsg; writes are write, writev, sendto, sendmsg and sendfile; futex and nanosleep are the Go runtime waking and parking its threads. *IPIs sent* and *taken* are the inter-processor interrupts of the system's own cores (everything on them, `perf stat -a`): a write that wakes a reader sleeping on the load's core sends one, and on a virtual machine each costs the sender a trip through the hypervisor. *User* and *kernel* are the same run's CPU per request in the process and in the kernel on its behalf (utime and stime from /proc, clock-tick sampled; the tracepoints add a little to the kernel's share).\n\n| scenario | system | user µs | kernel µs | system calls | reads | writes | epoll waits | epoll_ctl | futex + nanosleep | other | context switches | IPIs sent | IPIs taken |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range xs {
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s |\n",
			x.scenario, x.system, x.userUs, x.sysUs, x.all, x.reads, x.writes, x.waits, x.ctl, x.futex, x.other(), x.switches, perRequest(x.ipisSent), perRequest(x.ipisTaken))
	}
	return b.String()
}
