package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus series. Children are resolved when a
// route or upstream is built, so recording one request is a few atomic
// adds and no allocation (BenchmarkMetricsObservation).
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	attempts  *prometheus.CounterVec
	failures  *prometheus.CounterVec
	retries   *prometheus.CounterVec
	poolWaits *prometheus.CounterVec
	resolves  *prometheus.CounterVec

	rateLimited, rateFallbacks, authOutcomes *prometheus.CounterVec
	cacheResults                             *prometheus.CounterVec
}

// DurationBuckets are the request latency buckets, in seconds.
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics registers the proxy's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	perServer := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"upstream", "server"})
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgeproxy_requests_total", Help: "Requests answered, by route and status class.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edgeproxy_request_duration_seconds", Help: "Time from request to the last byte of the response, by route.",
			Buckets: DurationBuckets,
		}, []string{"route"}),
		attempts:  perServer("edgeproxy_upstream_attempts_total", "Requests sent to an upstream server."),
		failures:  perServer("edgeproxy_upstream_failures_total", "Attempts that failed (connect, reset, timeout)."),
		retries:   perServer("edgeproxy_upstream_retries_total", "Attempts that were retries of a failed one."),
		poolWaits: perServer("edgeproxy_upstream_pool_waits_total", "Requests that found every pooled connection of a server busy."),
	}
	m.resolves = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeproxy_upstream_resolve_failures_total",
		Help: "Re-resolutions of an upstream host name that failed; its last good addresses were kept.",
	}, []string{"upstream"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeproxy_ratelimit_limited_total", Help: "Requests refused with 429 by a route's rate_limit, by route and mode.",
	}, []string{"route", "mode"})
	m.rateFallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeproxy_ratelimit_fallback_total",
		Help: "Requests of a shared or exact rate_limit decided locally because Redis was unreachable, by route and mode.",
	}, []string{"route", "mode"})
	m.authOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeproxy_auth_requests_total",
		Help: "auth_request outcomes by route: allow, deny, error (answered 500), cached_allow, cached_deny.",
	}, []string{"route", "outcome"})
	m.cacheResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeproxy_response_cache_answers_total",
		Help: "Answers of routes with a response cache, by route and X-Cache result.",
	}, []string{"route", "result"})
	reg.MustRegister(m.requests, m.duration, m.attempts, m.failures, m.retries, m.poolWaits, m.resolves,
		m.rateLimited, m.rateFallbacks, m.authOutcomes, m.cacheResults)
	return m
}

// routeMetrics are one route's resolved children; the zero value records
// nothing.
type routeMetrics struct {
	codes    [6]prometheus.Counter // by status class 1xx..5xx; [0] other
	duration prometheus.Observer
}

func (m *Metrics) forRoute(name string) routeMetrics {
	var rm routeMetrics
	if m == nil {
		return rm
	}
	for i := range rm.codes {
		class := "other"
		if i > 0 {
			class = strconv.Itoa(i) + "xx"
		}
		rm.codes[i] = m.requests.WithLabelValues(name, class)
	}
	rm.duration = m.duration.WithLabelValues(name)
	return rm
}

func (rm *routeMetrics) observe(status int, seconds float64) {
	if rm.duration == nil {
		return
	}
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	rm.codes[class].Inc()
	rm.duration.Observe(seconds)
}

// serverMetrics are one upstream server's resolved children.
type serverMetrics struct {
	attempts, failures, retries, poolWaits prometheus.Counter
}

func (m *Metrics) forServer(upstream, server string) serverMetrics {
	if m == nil {
		nop := prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
		return serverMetrics{nop, nop, nop, nop}
	}
	return serverMetrics{
		attempts:  m.attempts.WithLabelValues(upstream, server),
		failures:  m.failures.WithLabelValues(upstream, server),
		retries:   m.retries.WithLabelValues(upstream, server),
		poolWaits: m.poolWaits.WithLabelValues(upstream, server),
	}
}

// Collector reports the live state of upstream servers at scrape time.
func (s *Server) Collector() prometheus.Collector { return stateCollector{s} }

type stateCollector struct{ s *Server }

var (
	descUp = prometheus.NewDesc("edgeproxy_upstream_server_up",
		"1 while the server takes requests, 0 while health checks hold it out.", []string{"upstream", "server"}, nil)
	descInflight = prometheus.NewDesc("edgeproxy_upstream_requests_in_flight",
		"Requests on their way to or from the server.", []string{"upstream", "server"}, nil)
	descConns = prometheus.NewDesc("edgeproxy_upstream_connections",
		"Pooled connections to the server, by state.", []string{"upstream", "server", "state"}, nil)
	descMaxConns = prometheus.NewDesc("edgeproxy_upstream_connections_max",
		"max_conns_per_server.", []string{"upstream", "server"}, nil)
	descUpgraded = prometheus.NewDesc("edgeproxy_upgraded_connections",
		"Open tunnels (WebSocket and other upgrades).", nil, nil)
	descClientConns = prometheus.NewDesc("edgeproxy_client_connections",
		"Open client connections, by state: served (a request in progress or just waited for) and parked (idle, waiting in the poll set without a goroutine).",
		[]string{"state"}, nil)
	descUpgradedBytes = prometheus.NewDesc("edgeproxy_upgraded_bytes_total",
		"Bytes carried by tunnels, by direction (to_upstream, to_client).", []string{"direction"}, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUp
	ch <- descInflight
	ch <- descConns
	ch <- descMaxConns
	ch <- descUpgraded
	ch <- descUpgradedBytes
	ch <- descClientConns
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	open, parked := c.s.conns.open.Load(), c.s.conns.parkedConns()
	ch <- prometheus.MustNewConstMetric(descClientConns, prometheus.GaugeValue, float64(open-parked), "served")
	ch <- prometheus.MustNewConstMetric(descClientConns, prometheus.GaugeValue, float64(parked), "parked")
	ts := c.s.tunnels.status()
	ch <- prometheus.MustNewConstMetric(descUpgraded, prometheus.GaugeValue, float64(ts.Open))
	ch <- prometheus.MustNewConstMetric(descUpgradedBytes, prometheus.CounterValue, float64(ts.BytesToUpstream), "to_upstream")
	ch <- prometheus.MustNewConstMetric(descUpgradedBytes, prometheus.CounterValue, float64(ts.BytesToClient), "to_client")
	for _, u := range c.s.Snapshot().Upstreams {
		for _, sv := range u.Servers {
			up := 0.0
			if sv.Up {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, u.Name, sv.Addr)
			ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(sv.InFlight), u.Name, sv.Addr)
			ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(sv.Busy), u.Name, sv.Addr, "busy")
			ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(sv.IdleConns), u.Name, sv.Addr, "idle")
			ch <- prometheus.MustNewConstMetric(descMaxConns, prometheus.GaugeValue, float64(u.MaxConns), u.Name, sv.Addr)
		}
	}
}

func (m *Metrics) resolveFailure(upstream string) {
	if m != nil {
		m.resolves.WithLabelValues(upstream).Inc()
	}
}

// counter resolves one child of vec; a nil Metrics gives one that counts
// nowhere.
func (m *Metrics) counter(vec func(*Metrics) *prometheus.CounterVec, labels ...string) prometheus.Counter {
	if m == nil {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
	}
	return vec(m).WithLabelValues(labels...)
}

// cacheMetrics are one cached route's answers by X-Cache result.
type cacheMetrics struct {
	hit, miss, stale, bypass, revalidated prometheus.Counter
}

func (m *Metrics) forCache(route string) cacheMetrics {
	if m == nil {
		return cacheMetrics{}
	}
	c := func(r string) prometheus.Counter { return m.cacheResults.WithLabelValues(route, r) }
	return cacheMetrics{c("HIT"), c("MISS"), c("STALE"), c("BYPASS"), c("REVALIDATED")}
}

func (c *cacheMetrics) count(result []byte) {
	if c.hit == nil {
		return
	}
	switch string(result) {
	case "HIT":
		c.hit.Inc()
	case "MISS":
		c.miss.Inc()
	case "STALE":
		c.stale.Inc()
	case "BYPASS":
		c.bypass.Inc()
	case "REVALIDATED":
		c.revalidated.Inc()
	}
}
