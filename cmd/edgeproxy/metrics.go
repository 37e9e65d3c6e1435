package main

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// stallMetrics are the runtime's histograms that tell a latency spike's
// cause apart: stop-the-world GC pauses (go_gc_pauses_seconds, and
// go_sched_pauses_total_gc_seconds, its successor since Go 1.22) and how
// long runnable goroutines waited for a thread (go_sched_latencies_seconds,
// the scheduler's own queueing). From runtime/metrics; each is read from
// counters the runtime keeps anyway.
var stallMetrics = collectors.GoRuntimeMetricsRule{
	Matcher: regexp.MustCompile(`^/(gc/pauses|sched/latencies|sched/pauses/total/(gc|other)):seconds$`),
}

// registerMetrics adds the process, coupon and reload series; the proxy
// registers its own.
func (a *app) registerMetrics(reg *prometheus.Registry) {
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(stallMetrics)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(a.proxy.Collector())
	reg.MustRegister(a.reloads)
	a.respCache.register(reg)
	if a.coupons == nil {
		return
	}
	counter := func(name, help string, labels prometheus.Labels, f func() uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f()) }))
	}
	c := a.coupons.handler.Counts()
	for _, r := range []struct {
		result string
		f      func() uint64
	}{{"HIT", c.Hit.Load}, {"MISS", c.Miss.Load}, {"STALE", c.Stale.Load}} {
		counter("edgeproxy_coupon_answers_total", "Coupon answers by X-Cache result.", prometheus.Labels{"cache": r.result}, r.f)
	}
	counter("edgeproxy_coupon_unavailable_total", "Coupon reads the store could not answer.", nil, c.Unavailable.Load)
	counter("edgeproxy_coupon_fallback_total", "Coupon-prefix requests sent to the fallback upstream.", nil, c.Fallback.Load)
	counter("edgeproxy_coupon_bad_requests_total", "Coupon searches refused for a bad parameter.", nil, c.BadRequest.Load)
	rs := a.coupons.redis
	if rs == nil {
		return
	}
	st := &rs.Stats
	for _, l := range []struct {
		layer string
		f     func() uint64
	}{{"l0", st.L0Hits.Load}, {"l1", st.L1Hits.Load}, {"l2", st.L2Hits.Load}, {"redis", st.Misses.Load}} {
		counter("edgeproxy_coupon_cache_lookups_total", "Coupon cache lookups by the layer that answered (l0 hot coupons and decoded cells, l1 bigcache, l2 rueidis, redis a network read).",
			prometheus.Labels{"layer": l.layer}, l.f)
	}
	counter("edgeproxy_coupon_invalidations_total", "Invalidations received from Redis.", prometheus.Labels{"kind": "key"}, st.Invalidations.Load)
	counter("edgeproxy_coupon_invalidations_total", "Invalidations received from Redis.", prometheus.Labels{"kind": "all"}, st.InvalidateAll.Load)
	counter("edgeproxy_redis_topology_changes_total", "Redis Cluster slot ownership changes seen; each makes every cached coupon entry be re-read.", nil, rs.TopologyChanges)
	counter("edgeproxy_coupon_stale_answers_total", "Answers served stale while Redis was unreachable.", nil, st.Stale.Load)
	counter("edgeproxy_redis_errors_total", "Redis reads that failed.", nil, st.RedisErrors.Load)
	counter("edgeproxy_coupon_invalid_in_redis_total", "Coupons in Redis skipped for invalid JSON.", nil, st.BadCoupons.Load)
	registerFreshness(reg, rs)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeproxy_redis_up", Help: "1 while Redis answers."},
		func() float64 {
			if rs.Connected() {
				return 1
			}
			return 0
		}))
}

func newReloadCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeproxy_config_reloads_total", Help: "Config reloads by result."}, []string{"result"})
}
