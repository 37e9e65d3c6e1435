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
	"syscall"
	"time"
)

type settings struct {
	rounds   int
	duration time.Duration
	warmup   time.Duration
	conns    int
	idle     int
	out      string
	root     string
	short    bool
	profile  string // folder for CPU profiles of edgeproxy runs, "" none
	only     string // run only scenarios whose name contains this
}

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
	flag.IntVar(&s.idle, "idle", 10000, "idle keep-alive connections for the memory test")
	flag.StringVar(&s.out, "out", "docs/benchmarks.md", "where to write the results")
	flag.StringVar(&s.profile, "profile", "", "write a CPU profile of each edgeproxy run into this `folder` (from the admin port)")
	flag.StringVar(&s.only, "only", "", "run only the scenarios whose name contains this")
	flag.Parse()
	if s.short {
		s.rounds, s.duration, s.idle = 1, 2*time.Second, 2000
	}
	s.warmup = time.Second
	wd, _ := os.Getwd()
	s.root = wd
	if _, err := os.Stat(filepath.Join(wd, "go.mod")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: run from the repository root (make bench)")
		os.Exit(2)
	}

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
