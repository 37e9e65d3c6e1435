// Command bench measures edgeproxy against nginx on this machine, side by
// side, in one run: `make bench` (or `make bench-short`). It builds
// edgeproxy, starts a loopback upstream, nginx with an equivalent
// configuration, a private Redis and a bare fasthttp server (the ceiling),
// pins the system under test to core 0 and everything else to core 1, runs
// each scenario for each system alternately over several rounds, and prints
// and writes (docs/benchmarks.md) a table of medians. It installs nginx and
// wrk from Debian's packages when they are missing, and stops every process
// it started, also when interrupted.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type settings struct {
	rounds   int
	duration time.Duration
	warmup   time.Duration
	conns    int
	idle     string
	out      string
	root     string
	short    bool
	profile  string // folder for CPU profiles of edgeproxy runs, "" none
	only     string // run only scenarios whose name contains this
	cores    int    // cores of the system under test
	rate     float64
	write    bool   // with -only: write the results (out, charts, README) all the same
	baseline string // an edgeproxy binary run beside the one built here, "" none
}

// idleCounts parses -idle.
func (s settings) idleCounts() []int {
	var out []int
	for _, f := range strings.Split(s.idle, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = []int{10000}
	}
	return out
}

const defaultOut = "docs/benchmarks.md"

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-serve" {
		serveChild(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "-loadgen" {
		loadgenChild(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "-idle" {
		idleChild(os.Args[2:])
		return
	}
	var s settings
	flag.BoolVar(&s.short, "short", false, "one short round (a smoke run, not a measurement)")
	flag.IntVar(&s.rounds, "rounds", 5, "rounds of every scenario")
	flag.DurationVar(&s.duration, "duration", 6*time.Second, "measured time of each run")
	flag.IntVar(&s.conns, "conns", 64, "client connections")
	flag.StringVar(&s.idle, "idle", "10000,19000,50000", "idle keep-alive connection counts for the memory test, comma-separated")
	flag.StringVar(&s.out, "out", defaultOut, "where to write the results (with -only, only when given)")
	flag.StringVar(&s.profile, "profile", "", "write a CPU profile of each edgeproxy run into this `folder` (from the admin port)")
	flag.StringVar(&s.only, "only", "", `run only what a part of this comma-separated list names: scenarios ("pass 128", "nearby mixed"), "constant rate", "idle connections", "system calls"`)
	flag.BoolVar(&s.write, "write", false, "with -only: write the report, the charts and the README summary all the same")
	flag.Float64Var(&s.rate, "rate", 0, "constant rate in req/s (default: half of nginx's pass 128 B maximum)")
	flag.StringVar(&s.baseline, "baseline", "", "also run this edgeproxy `binary` (built from another revision) wherever edgeproxy runs, alternating with it: an A/B of a change on the same noisy machine")
	flag.IntVar(&s.cores, "cores", 1, "cores of the system under test: GOMAXPROCS for edgeproxy and the bare server, workers for nginx")
	flag.Parse()
	if s.short {
		s.rounds, s.duration, s.idle = 1, 2*time.Second, "2000"
	}
	s.warmup = time.Second
	wd, _ := os.Getwd()
	s.root = wd
	if _, err := os.Stat(filepath.Join(wd, "go.mod")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: run from the repository root (make bench)")
		os.Exit(2)
	}

	raiseFileLimit(4 * 50000)
	r := newRunner(s)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\nbench: %v: stopping everything it started\n", sig)
		r.cleanup()
		os.Exit(130)
	}()
	err := r.run()
	r.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
