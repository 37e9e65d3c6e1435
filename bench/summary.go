package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The README's performance summary lives between these markers and is
// rewritten by every full make bench: never edited by hand, never out of
// step with docs/benchmarks.md and the charts.
const (
	summaryBegin = "<!-- bench-summary:begin (written by make bench; do not edit) -->"
	summaryEnd   = "<!-- bench-summary:end -->"
)

// updateSummary replaces what lies between the markers in file.
func updateSummary(file, summary string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte(summaryBegin))
	j := bytes.Index(b, []byte(summaryEnd))
	if i < 0 || j < i {
		return errors.New(file + ": no bench summary markers (" + summaryBegin + " … " + summaryEnd + ")")
	}
	var out bytes.Buffer
	out.Write(b[:i+len(summaryBegin)])
	out.WriteString("\n")
	out.WriteString(summary)
	out.Write(b[j:])
	return os.WriteFile(file, out.Bytes(), 0o644)
}

// summary is the README's short form of the run: the ratios with their
// spread, the constant-rate tails, memory per connection, the charts.
func (r *runner) summary(report, readme string, rate []rateResult, idle []idleResult) string {
	rel := func(path string) string {
		p, err := filepath.Rel(filepath.Dir(readme), path)
		if err != nil {
			return path
		}
		return filepath.ToSlash(p)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From `make bench` on %s, %d rounds, the system under test on %d core(s) (%s; %s). Full tables: [%s](%s).\n\n",
		time.Now().UTC().Format("2006-01-02"), r.s.rounds, r.s.cores, strings.SplitN(r.machine(), ",", 2)[0], contention(), rel(report), rel(report))
	b.WriteString("| scenario | edgeproxy CPU per request | rounds' range |\n|---|---:|---:|\n")
	for _, row := range []struct{ scenario, anchor string }{
		{"pass 128 B", "nginx"}, {"pass 4 KiB", "nginx"}, {"pass 1 MiB", "nginx"}, {"POST 64 KiB", "nginx"},
		{"coupon by id", "the bare server"}, {"coupon nearby", "the bare server"}, {"coupon nearby mixed", "the bare server"},
	} {
		x := r.find(row.scenario, "edgeproxy")
		if x.rps == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %.2f× %s | %.2f–%.2f× |\n", row.scenario, x.cpuRatio, row.anchor, x.cpuRatioMin, x.cpuRatioMax)
	}
	if pairs := roundsOf(rate); len(pairs) > 0 {
		var ep99, np99, ep999, np999 []string
		for _, p := range pairs {
			np99, ep99 = append(np99, fmtDur(p[0].p99)), append(ep99, fmtDur(p[1].p99))
			np999, ep999 = append(np999, fmtDur(p[0].p999)), append(ep999, fmtDur(p[1].p999))
		}
		fmt.Fprintf(&b, "\nAt a constant %.0f req/s, p99 by round: edgeproxy %s; nginx %s. p99.9: edgeproxy %s; nginx %s.\n",
			pairs[0][0].rate, strings.Join(ep99, ", "), strings.Join(np99, ", "), strings.Join(ep999, ", "), strings.Join(np999, ", "))
	}
	if len(idle) > 0 {
		var parts []string
		for _, x := range idle {
			lever := ""
			if x.lever != "" {
				lever = ", " + x.lever
			}
			parts = append(parts, fmt.Sprintf("%s %.1f KiB (%d%s)", x.system, x.perConn(), x.conns, lever))
		}
		fmt.Fprintf(&b, "\nRSS per idle keep-alive connection: %s.\n", strings.Join(parts, "; "))
	}
	if len(r.charts) > 0 {
		b.WriteString("\n")
		for _, c := range r.charts {
			fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(filepath.Base(c), ".svg"), rel(c))
		}
	}
	return b.String()
}
