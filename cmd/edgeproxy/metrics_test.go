package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// /metrics carries the runtime's stall histograms: GC pauses and the
// scheduler's latency, as Prometheus histograms with buckets.
func TestMetricsExportStallHistograms(t *testing.T) {
	a := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") })
	cfg := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
access_log = "off"
[upstreams.news]
servers = [%q]
[[routes]]
path_prefix = "/"
upstream = "news"
`, a)
	p := start(t, writeFile(t, t.TempDir(), "edge.toml", cfg))
	getBody(t, "http://"+p.addr+"/x")
	_, metrics := getBody(t, "http://"+p.admin+"/metrics")
	for _, want := range []string{
		"# TYPE go_gc_pauses_seconds histogram",
		`go_gc_pauses_seconds_bucket{le="+Inf"}`,
		"# TYPE go_sched_latencies_seconds histogram",
		`go_sched_latencies_seconds_bucket{le="+Inf"}`,
		`go_sched_pauses_total_gc_seconds_bucket{le="+Inf"}`,
		"go_goroutines ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
