package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

type idleResult struct {
	system        string
	lever         string // what was changed from the configuration, "" none
	conns         int
	before, after int64 // KiB
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
	n := r.s.idleCounts()[0]
	cs = append(cs, idleCase{system: "edgeproxy", lever: "max_header_bytes 4 KiB", conns: n, serverExtra: "max_header_bytes = \"4KiB\"\n"})
	return cs
}

// idleConns opens many keep-alive connections, one request each, and
// reads the system's RSS growth per connection.
func (r *runner) idleConns(systems map[string]system) ([]idleResult, error) {
	var out []idleResult
	for _, c := range r.idleCases() {
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
	time.Sleep(500 * time.Millisecond)
	res := []idleResult{{system: sys.name, lever: c.lever, conns: c.conns, before: before, after: rssKiB(pid, "VmRSS")}}
	if c.forceGC {
		// Two collections shrink each idle goroutine's stack twice (a stack
		// using under a quarter is halved); the runtime returns the freed
		// pages to the kernel in the background, within about a second.
		for range 2 {
			if _, err := httpGet("http://" + r.edgeAdmin + "/debug/pprof/heap?gc=1"); err != nil {
				return nil, err
			}
		}
		time.Sleep(1500 * time.Millisecond)
		res = append(res, idleResult{system: sys.name, lever: "after 2 forced GCs", conns: c.conns, before: before, after: rssKiB(pid, "VmRSS")})
	}
	for _, x := range res {
		lever := x.lever
		if lever == "" {
			lever = "as configured"
		}
		r.logf("%d idle connections: %s (%s) RSS %d → %d KiB, %.1f KiB each", x.conns, x.system, lever, x.before, x.after, x.perConn())
	}
	return res, nil
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
