package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cpuSets returns the CPUs of the system under test (the first cores) and
// of everything else (wrk, the upstream, Redis, the load generators): the
// cores after those, or the last core, shared, where the machine has no
// more.
func cpuSets(cores, ncpu int) (sut, load string, shared bool) {
	sut = "0"
	if cores > 1 {
		sut = fmt.Sprintf("0-%d", cores-1)
	}
	switch {
	case ncpu > cores+1:
		return sut, fmt.Sprintf("%d-%d", cores, ncpu-1), false
	case ncpu == cores+1:
		return sut, strconv.Itoa(cores), false
	}
	return sut, strconv.Itoa(ncpu - 1), true
}

type runner struct {
	s   settings
	dir string // scratch folder

	sutCPUs, loadCPUs string // taskset lists
	sharedCPU         bool   // the load shares a core with the system under test

	mu    sync.Mutex // guards procs
	procs []*exec.Cmd

	edgeBin, benchBin string
	upstreamAddr      string
	edgeAdmin         string // admin address of the last edgeproxy started
	redisAddr         string
	bodies            []string // files: coupon by id, nearby responses
	mixedAnswers      string   // file: the mixed nearby answers by request URI
	mixedScript       string   // wrk script sending the mixed nearby queries

	results []result

	contentionStart string          // contention() when the run began
	edgeServerExtra string          // TOML lines added to edgeproxy's [server] (the idle levers)
	charts          []string        // the SVG files written
	notes           []string        // what could not be measured here, and why
	syscallCounts   []syscallResult // perf stat per request (syscalls.go)
}

type result struct {
	scenario, system string
	rps, cpuUs       float64
	userUs, sysUs    float64 // cpuUs split: in the process, in the kernel for it
	cpuRatio         float64 // to the scenario's anchor, median of paired rounds
	cpuRatioMin      float64 // the lowest and highest round's
	cpuRatioMax      float64
	p50, p99         time.Duration
	rssMiB           float64
	errors           int
	requests         float64 // completed in the run
}

func newRunner(s settings) *runner {
	r := &runner{s: s}
	r.sutCPUs, r.loadCPUs, r.sharedCPU = cpuSets(s.cores, runtime.NumCPU())
	return r
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// start runs a command pinned to core, in its own process group so that
// cleanup can stop it and its children.
func (r *runner) start(core string, env []string, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command("taskset", append([]string{"-c", core, name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, _ := os.Create(filepath.Join(r.dir, filepath.Base(name)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.mu.Lock()
	r.procs = append(r.procs, cmd)
	r.mu.Unlock()
	return cmd, nil
}

// output runs a load generator (wrk, bench -loadgen) to its end, in its
// own process group and known to cleanup, so that an interrupted bench
// stops it too.
func (r *runner) output(cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.procs = append(r.procs, cmd)
	r.mu.Unlock()
	err := cmd.Wait()
	r.forget(cmd)
	return out.Bytes(), err
}

func (r *runner) stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_, _ = cmd.Process.Wait()
	r.forget(cmd)
}

// forget drops cmd from what cleanup stops.
func (r *runner) forget(cmd *exec.Cmd) {
	r.mu.Lock()
	for i, c := range r.procs {
		if c == cmd {
			r.procs = append(r.procs[:i], r.procs[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
}

func (r *runner) cleanup() {
	r.mu.Lock()
	procs := append([]*exec.Cmd(nil), r.procs...)
	r.mu.Unlock()
	for _, c := range procs {
		r.stop(c)
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %v", addr, d)
}

// ensureTools installs nginx and wrk from Debian's packages when missing.
func (r *runner) ensureTools() error {
	var missing []string
	for _, t := range []struct{ bin, pkg string }{{"nginx", "nginx"}, {"wrk", "wrk"}, {"taskset", "util-linux"}, {"redis-server", "redis-server"}} {
		if _, err := exec.LookPath(t.bin); err != nil {
			if _, err := os.Stat("/usr/sbin/" + t.bin); err != nil {
				missing = append(missing, t.pkg)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	r.logf("installing %v", missing)
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %v: %w", args, err)
		}
	}
	return nil
}

func nginxBin() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	return "/usr/sbin/nginx"
}

func (r *runner) build() error {
	r.edgeBin = filepath.Join(r.dir, "edgeproxy")
	r.benchBin = filepath.Join(r.dir, "benchhelper")
	for _, b := range []struct{ out, pkg string }{{r.edgeBin, "./cmd/edgeproxy"}, {r.benchBin, "./bench"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", b.out, b.pkg)
		cmd.Dir = r.s.root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s: %w", b.pkg, err)
		}
	}
	return nil
}

// cpuTicks is utime and stime of pid and its child processes' threads.
func cpuTicks(pid int) (user, sys int64) {
	pids := append([]int{pid}, children(pid)...)
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		u, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		user += u
		sys += st
	}
	return user, sys
}

func children(pid int) []int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		c, _ := strconv.Atoi(f)
		out = append(out, c)
		out = append(out, children(c)...)
	}
	return out
}

// rssKiB reads VmRSS or VmHWM (kB) of pid and its children.
func rssKiB(pid int, field string) int64 {
	total := int64(0)
	for _, p := range append([]int{pid}, children(pid)...) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, field+":") {
				n, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
				total += n
			}
		}
	}
	return total
}

const clockTicksPerSecond = 100 // USER_HZ on Linux

var (
	reRequests = regexp.MustCompile(`(\d+) requests in ([\d.]+)(\w+)`)
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reLatency  = regexp.MustCompile(`\s+(50|99)%\s+([\d.]+)(us|ms|s)`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSockErr  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseDur(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return time.Duration(f * float64(time.Microsecond))
	case "ms":
		return time.Duration(f * float64(time.Millisecond))
	default:
		return time.Duration(f * float64(time.Second))
	}
}

// wrk runs wrk against url and measures the system's CPU meanwhile.
func (r *runner) wrk(pid int, url, script string, conns int, d time.Duration) (result, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency", "--timeout", "5s"}
	if script != "" {
		args = append(args, "-s", script)
	}
	args = append(args, url)
	cmd := exec.Command("taskset", append([]string{"-c", r.loadCPUs, "wrk"}, args...)...)
	userBefore, sysBefore := cpuTicks(pid)
	out, err := r.output(cmd)
	userAfter, sysAfter := cpuTicks(pid)
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	var res result
	m := reRequests.FindStringSubmatch(s)
	if m == nil {
		return result{}, fmt.Errorf("wrk output not understood:\n%s", s)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	if mm := reRPS.FindStringSubmatch(s); mm != nil {
		res.rps, _ = strconv.ParseFloat(mm[1], 64)
	}
	for _, l := range reLatency.FindAllStringSubmatch(s, -1) {
		if l[1] == "50" {
			res.p50 = parseDur(l[2], l[3])
		} else {
			res.p99 = parseDur(l[2], l[3])
		}
	}
	if mm := reNon2xx.FindStringSubmatch(s); mm != nil {
		res.errors, _ = strconv.Atoi(mm[1])
	}
	if mm := reSockErr.FindStringSubmatch(s); mm != nil {
		for _, v := range mm[1:] {
			k, _ := strconv.Atoi(v)
			res.errors += k
		}
	}
	res.requests = n
	if n > 0 {
		res.userUs = float64(userAfter-userBefore) / clockTicksPerSecond * 1e6 / n
		res.sysUs = float64(sysAfter-sysBefore) / clockTicksPerSecond * 1e6 / n
		res.cpuUs = res.userUs + res.sysUs
	}
	return res, nil
}

func httpGet(url string) ([]byte, error) { return httpGetTimeout(url, 5*time.Second) }

func httpGetTimeout(url string, timeout time.Duration) ([]byte, error) {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return b, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b, err
}

func (r *runner) machine() string {
	var b bytes.Buffer
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "model name") {
				b.WriteString(strings.TrimSpace(strings.SplitN(sc.Text(), ":", 2)[1]))
				break
			}
		}
		f.Close()
	}
	out, _ := exec.Command("nproc").Output()
	fmt.Fprintf(&b, ", %s cores", strings.TrimSpace(string(out)))
	uname, _ := exec.Command("uname", "-sr").Output()
	fmt.Fprintf(&b, ", %s", strings.TrimSpace(string(uname)))
	gov, _ := exec.Command("go", "version").Output()
	fmt.Fprintf(&b, ", %s", strings.TrimSpace(string(gov)))
	nv, _ := exec.Command(nginxBin(), "-v").CombinedOutput()
	fmt.Fprintf(&b, ", %s", strings.TrimSpace(string(nv)))
	return b.String()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// probeEncoding asks a system once with Accept-Encoding ae ("" none) and
// tells what came back, so both systems are seen to send the same coding
// and about the same bytes.
func probeEncoding(ae string) func(url string) (string, error) {
	return func(url string) (string, error) {
		resp, b, err := probeGet(url, ae)
		if err != nil {
			return "", err
		}
		got := resp.Header.Get("Content-Encoding")
		if got != ae {
			return "", fmt.Errorf("GET %s with Accept-Encoding %q: Content-Encoding %q", url, ae, got)
		}
		return fmt.Sprintf("status %d, Content-Encoding %q, %d body bytes, Vary %q", resp.StatusCode, got, len(b), resp.Header.Get("Vary")), nil
	}
}

// probeFile asks a system once for the static file and fails unless it
// answers 200 with size bytes, so neither is measured serving an error.
func probeFile(size int) func(url string) (string, error) {
	return func(url string) (string, error) {
		resp, b, err := probeGet(url, "")
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK || len(b) != size {
			return "", fmt.Errorf("GET %s: status %d, %d body bytes, want 200 with %d", url, resp.StatusCode, len(b), size)
		}
		return fmt.Sprintf("status %d, %d body bytes, Content-Type %q, ETag %q, Last-Modified %q",
			resp.StatusCode, len(b), resp.Header.Get("Content-Type"), resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")), nil
	}
}

// probeGet is one GET of url with Accept-Encoding ae ("" none) whose
// body is read as sent, not decompressed.
func probeGet(url, ae string) (*http.Response, []byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, nil, err
	}
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}
