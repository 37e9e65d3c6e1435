package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeproxy/edgeproxy/admin"
	"github.com/edgeproxy/edgeproxy/cache"
)

// SPEC §11 wiring: the probe's and the verifier's state as metrics, on
// /readyz and on /status.

// instanceName names this process's probe key: host and pid, so several
// instances on one host probe apart.
func instanceName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "edgeproxy"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

func streamLoss(s string) cache.StreamLoss {
	if s == "serve" {
		return cache.Serve
	}
	return cache.Bypass
}

// probeCollector reports the probe per node: nodes come and go with the
// cluster's topology, so the series are built at each scrape.
type probeCollector struct{ store *cache.Store }

var (
	lagDesc = prometheus.NewDesc("edgeproxy_coupon_invalidation_lag_seconds",
		"Time from a probe write to the arrival of its invalidation, per Redis master.", []string{"node"}, nil)
	upDesc = prometheus.NewDesc("edgeproxy_coupon_invalidation_stream_up",
		"1 while this node's last invalidation probe passed.", []string{"node"}, nil)
)

func (c probeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc; ch <- upDesc }

func (c probeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, n := range c.store.Probes() {
		buckets := make(map[float64]uint64, len(cache.LagBuckets))
		for i, b := range cache.LagBuckets {
			buckets[b] = n.Counts[i]
		}
		ch <- prometheus.MustNewConstHistogram(lagDesc, n.Count, n.Sum, buckets, n.Node)
		up := 0.0
		if n.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, n.Node)
	}
}

// registerFreshness adds the §11 series for a Redis store.
func registerFreshness(reg *prometheus.Registry, rs *cache.Store) {
	reg.MustRegister(probeCollector{rs})
	for _, r := range []struct {
		result string
		f      func() uint64
	}{{"match", rs.Stats.VerifyMatch.Load}, {"mismatch", rs.Stats.VerifyMismatch.Load}} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeproxy_coupon_verify_total",
			Help: "Sampled hits re-read from Redis and compared byte for byte.", ConstLabels: prometheus.Labels{"result": r.result}},
			func() float64 { return float64(r.f()) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeproxy_coupon_stream_losses_total",
		Help: "Times the probe found the invalidation stream lost."}, func() float64 { return float64(rs.Stats.StreamLosses.Load()) }))
}

// streamState is the stream as /readyz and /status say it.
func streamState(rs *cache.Store, probing bool) string {
	if !probing {
		return "not probed (cache.probe_interval = 0)"
	}
	nodes := rs.Probes()
	if len(nodes) == 0 {
		return "not probed yet"
	}
	var down []string
	for _, n := range nodes {
		if !n.Up {
			down = append(down, n.Node+": "+n.LastErr)
		}
	}
	if len(down) > 0 {
		mode := ""
		if rs.StreamLost() {
			mode = " (degraded)"
		}
		return "down" + mode + ": " + strings.Join(down, "; ")
	}
	return fmt.Sprintf("up (%d node(s))", len(nodes))
}

// freshnessDetail adds the §11 lines to /readyz's detail.
func (c *couponService) freshnessDetail(detail map[string]string) {
	rs := c.redis
	if rs == nil {
		return
	}
	detail["coupon_invalidation_stream"] = streamState(rs, c.cfg.Cache.ProbeInterval.Duration > 0)
	if text, at := rs.LastError(); text != "" {
		detail["redis_last_error"] = text
		detail["redis_last_error_at"] = at.Format(time.RFC3339)
	}
}

// freshnessStatus fills the §11 part of /status.
func (c *couponService) freshnessStatus(cs *admin.CouponStatus) {
	rs := c.redis
	if rs == nil {
		return
	}
	cs.Stream = streamState(rs, c.cfg.Cache.ProbeInterval.Duration > 0)
	for _, n := range rs.Probes() {
		p := admin.ProbeRow{Node: n.Node, Up: n.Up, Err: n.LastErr, Probes: n.Count}
		if n.Count > 0 {
			p.LastLag = n.LastLag.String()
			p.MeanLag = time.Duration(n.Sum / float64(n.Count) * float64(time.Second)).String()
		}
		cs.Probes = append(cs.Probes, p)
	}
	cs.VerifyMatch, cs.VerifyMismatch = rs.Stats.VerifyMatch.Load(), rs.Stats.VerifyMismatch.Load()
	cs.LastRedisError, _ = rs.LastError()
}
