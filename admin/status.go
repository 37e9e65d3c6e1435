package admin

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// StatusData is what the status page shows, read fresh for every view.
type StatusData struct {
	Version    string
	ConfigPath string
	Started    time.Time
	LastReload *Reload
	Proxy      proxy.Snapshot
	Coupons    *CouponStatus // nil without coupons
	// ResponseCache is the routes' response cache; nil without one.
	ResponseCache *ResponseCacheStatus
}

// ResponseCacheStatus is the response store at a glance; answers by
// route come from the edgeproxy_response_cache_answers_total series.
type ResponseCacheStatus struct {
	Entries, Bytes                       int
	MaxBytes                             int64
	Purges, PurgedEntries, Resyncs, Sets uint64
	Rejected                             uint64
	Subscription                         string // "live", "connecting", "off"
}

// cacheRow is one cached route's answers by X-Cache.
type cacheRow struct {
	Route                                 string
	Hit, Miss, Stale, Bypass, Revalidated uint64
	HitRatio                              string
}

// Reload is the outcome of the last SIGHUP.
type Reload struct {
	At  time.Time
	Err string
}

// CouponStatus is the coupon cache at a glance.
type CouponStatus struct {
	Store                           string // "file (N coupons)", "redis connected", ...
	Hit, Miss, Stale, Unavailable   uint64 // answers by X-Cache
	Fallback                        uint64
	L1Hits, L2Hits, RedisReads      uint64
	Invalidations, InvalidationsAll uint64

	// SPEC §11: the invalidation stream as the probe sees it, and the
	// verification of sampled hits.
	Stream                      string
	Probes                      []ProbeRow
	VerifyMatch, VerifyMismatch uint64
	LastRedisError              string
}

// ProbeRow is one Redis node's invalidation probe.
type ProbeRow struct {
	Node             string
	Up               bool
	Err              string
	Probes           uint64
	LastLag, MeanLag string
}

// Consistency is the share of verified hits that matched Redis, with the
// count it is taken over.
func (c *CouponStatus) Consistency() string {
	n := c.VerifyMatch + c.VerifyMismatch
	if n == 0 {
		return "— (no hit verified; see cache.verify_sample)"
	}
	return fmt.Sprintf("%.4f%% of %d verified hits (%d mismatched)", 100*float64(c.VerifyMatch)/float64(n), n, c.VerifyMismatch)
}

// StatusPage serves /status: an HTML page that refreshes itself and needs
// nothing from outside. Rates and latency percentiles are computed between
// two consecutive views (or since start on the first).
type StatusPage struct {
	data     func() StatusData
	gatherer prometheus.Gatherer

	mu      sync.Mutex // guards samples
	samples []sample   // the views of the last window, oldest first
}

// window is how far back rates and percentiles look.
const window = time.Minute

type sample struct {
	at     time.Time
	routes map[string]routeSample
}

type routeSample struct {
	count   uint64
	buckets []uint64 // cumulative, by DurationBuckets
}

// NewStatusPage builds the /status handler.
func NewStatusPage(data func() StatusData, g prometheus.Gatherer) *StatusPage {
	return &StatusPage{data: data, gatherer: g}
}

type routeRow struct {
	Route     proxy.RouteStatus
	Total     uint64
	Rate      string
	P50       string
	P90       string
	P99       string
	Errors5xx uint64
}

type view struct {
	StatusData
	Now    time.Time
	Uptime time.Duration
	Routes []routeRow
	// Guarded are the routes with a rate_limit or auth_request.
	Guarded  []proxy.RouteStatus
	Window   string
	HitRatio string
	L1Ratio  string
	Refresh  int
	Caches   []cacheRow
}

func (p *StatusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := p.data()
	now := time.Now()
	cur, fivexx, caches := p.gather(now)
	prev := p.base(now, d.Started)
	p.mu.Lock()
	p.samples = append(p.samples, cur)
	p.mu.Unlock()
	v := view{StatusData: d, Now: now, Uptime: now.Sub(d.Started).Round(time.Second), Refresh: 5}
	window := now.Sub(prev.at)
	v.Window = window.Round(time.Second).String()
	for _, rt := range d.Proxy.Routes {
		c, pr := cur.routes[rt.Name], prev.routes[rt.Name]
		row := routeRow{Route: rt, Total: c.count, Errors5xx: fivexx[rt.Name], P50: "—", P90: "—", P99: "—", Rate: "0"}
		if n := c.count - pr.count; c.count >= pr.count && window > 0 {
			row.Rate = fmt.Sprintf("%.1f", float64(n)/window.Seconds())
			if n > 0 {
				diff := make([]uint64, len(c.buckets))
				for i := range c.buckets {
					diff[i] = c.buckets[i]
					if i < len(pr.buckets) {
						diff[i] -= pr.buckets[i]
					}
				}
				row.P50 = quantile(diff, n, 0.50)
				row.P90 = quantile(diff, n, 0.90)
				row.P99 = quantile(diff, n, 0.99)
			}
		}
		v.Routes = append(v.Routes, row)
		if rt.RateLimit != "" || rt.Auth != nil {
			v.Guarded = append(v.Guarded, rt)
		}
	}
	if c := d.Coupons; c != nil {
		v.HitRatio = ratio(c.Hit, c.Hit+c.Miss+c.Stale+c.Unavailable)
		v.L1Ratio = ratio(c.L1Hits, c.L1Hits+c.L2Hits+c.RedisReads)
	}
	for _, rt := range d.Proxy.Routes {
		if c, ok := caches[rt.Name]; ok {
			c.Route = rt.Name
			c.HitRatio = ratio(c.Hit+c.Revalidated, c.Hit+c.Miss+c.Stale+c.Bypass+c.Revalidated)
			v.Caches = append(v.Caches, *c)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := statusTemplate.Execute(w, v); err != nil {
		http.Error(w, err.Error(), 500)
	}
}

func ratio(a, total uint64) string {
	if total == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(total))
}

// quantile estimates q from cumulative bucket counts by linear
// interpolation inside the bucket, as Prometheus's histogram_quantile does.
func quantile(cum []uint64, total uint64, q float64) string {
	rank := q * float64(total)
	lower, prevCount := 0.0, 0.0
	for i, c := range cum {
		upper := proxy.DurationBuckets[i]
		if float64(c) >= rank {
			frac := 0.0
			if float64(c) > prevCount {
				frac = (rank - prevCount) / (float64(c) - prevCount)
			}
			return formatSeconds(lower + (upper-lower)*frac)
		}
		lower, prevCount = upper, float64(c)
	}
	return "> " + formatSeconds(proxy.DurationBuckets[len(proxy.DurationBuckets)-1])
}

func formatSeconds(s float64) string {
	switch {
	case s < 0.001:
		return fmt.Sprintf("%.0f µs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1f ms", s*1e3)
	default:
		return fmt.Sprintf("%.2f s", s)
	}
}

// base is the sample to compare the current one with: the oldest view of
// the last minute that is at least a second old, else the start.
func (p *StatusPage) base(now, started time.Time) sample {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.samples) && now.Sub(p.samples[i].at) > window {
		i++
	}
	p.samples = p.samples[i:]
	if len(p.samples) > 0 && now.Sub(p.samples[0].at) >= time.Second {
		return p.samples[0]
	}
	return sample{at: started, routes: map[string]routeSample{}}
}

// gather reads the request counters and latency histograms per route.
func (p *StatusPage) gather(now time.Time) (sample, map[string]uint64, map[string]*cacheRow) {
	s := sample{at: now, routes: map[string]routeSample{}}
	fivexx := map[string]uint64{}
	caches := map[string]*cacheRow{}
	mfs, err := p.gatherer.Gather()
	if err != nil {
		return s, fivexx, caches
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "edgeproxy_response_cache_answers_total":
			for _, m := range mf.GetMetric() {
				r := caches[label(m, "route")]
				if r == nil {
					r = &cacheRow{}
					caches[label(m, "route")] = r
				}
				n := uint64(m.GetCounter().GetValue())
				switch label(m, "result") {
				case "HIT":
					r.Hit = n
				case "MISS":
					r.Miss = n
				case "STALE":
					r.Stale = n
				case "BYPASS":
					r.Bypass = n
				case "REVALIDATED":
					r.Revalidated = n
				}
			}
		case "edgeproxy_request_duration_seconds":
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				rs := routeSample{count: h.GetSampleCount()}
				for _, b := range h.GetBucket() {
					if !math.IsInf(b.GetUpperBound(), 1) {
						rs.buckets = append(rs.buckets, b.GetCumulativeCount())
					}
				}
				s.routes[label(m, "route")] = rs
			}
		case "edgeproxy_requests_total":
			for _, m := range mf.GetMetric() {
				if label(m, "code") == "5xx" {
					fivexx[label(m, "route")] += uint64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return s, fivexx, caches
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts": func(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>edgeproxy status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:20px;margin:0 0 .3em} h2{font-size:16px;margin:1.4em 0 .4em}
table{border-collapse:collapse;min-width:50%} th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#eee} td.num{text-align:right;font-variant-numeric:tabular-nums}
.up{background:#d8f5d8} .down{background:#f8d0d0;font-weight:bold} .err{color:#b00;font-weight:bold} .ok{color:#070}
.meta{color:#555}
</style></head><body>
<h1>edgeproxy</h1>
<p class="meta">version {{.Version}} · config <code>{{.ConfigPath}}</code> · up {{.Uptime}} · page at {{ts .Now}}, refreshes every {{.Refresh}} s · rates and percentiles over the last {{.Window}}</p>
<p id="reload">Last reload: {{with .LastReload}}{{ts .At}} — {{if .Err}}<span class="err">refused: {{.Err}}</span>{{else}}<span class="ok">OK</span>{{end}}{{else}}none since start{{end}}</p>

<h2>Upstreams</h2>
<table id="upstreams"><tr><th>upstream</th><th>server</th><th>state</th><th>in flight</th><th>pool (busy / idle / max)</th><th>requests</th><th>failures</th></tr>
{{range .Proxy.Upstreams}}{{$u := .}}{{range .Servers}}
<tr class="{{if .Up}}up{{else}}down{{end}}" data-server="{{.Addr}}"><td>{{$u.Name}} <span class="meta">({{$u.Balance}}{{if $u.ResolveInterval}}, resolved every {{$u.ResolveInterval}}{{end}}{{if $u.ResolveFailing}}, <b>resolution failing: last good addresses kept</b>{{end}})</span></td><td>{{.Addr}}</td>
<td>{{if .Up}}UP{{else}}DOWN {{.Why}}{{end}}</td><td class="num">{{.InFlight}}</td>
<td class="num">{{.Busy}} / {{.IdleConns}} / {{$u.MaxConns}}</td><td class="num">{{.Requests}}</td><td class="num">{{.Failures}}</td></tr>{{end}}{{end}}
</table>

<h2>Routes</h2>
<table id="routes"><tr><th>route</th><th>host</th><th>prefix</th><th>target</th><th>requests</th><th>req/s</th><th>p50</th><th>p90</th><th>p99</th><th>5xx</th></tr>
{{range .Routes}}<tr data-route="{{.Route.Name}}"><td>{{.Route.Name}}</td><td>{{if .Route.Host}}{{.Route.Host}}{{else}}any{{end}}</td><td><code>{{.Route.PathPrefix}}</code>{{if .Route.StripPrefix}} (stripped){{end}}</td>
<td>{{.Route.Target}}</td><td class="num">{{.Total}}</td><td class="num">{{.Rate}}</td><td class="num">{{.P50}}</td><td class="num">{{.P90}}</td><td class="num">{{.P99}}</td><td class="num">{{.Errors5xx}}</td></tr>
{{end}}</table>

{{if .Guarded}}<h2>Rate limits and auth_request</h2>
<table id="guards"><tr><th>route</th><th>rate_limit</th><th>429s</th><th>decided locally (Redis unreachable)</th><th>auth upstream</th><th>allowed</th><th>denied</th><th>errors (500)</th><th>cached allow / deny</th><th>cache entries</th></tr>
{{range .Guarded}}<tr data-guard="{{.Name}}"><td>{{.Name}}</td><td>{{if .RateLimit}}{{.RateLimit}}{{else}}—{{end}}</td><td class="num">{{.Limited}}</td><td class="num">{{.RateFallbacks}}</td>
{{with .Auth}}<td>{{.Upstream}}</td><td class="num">{{.Allowed}}</td><td class="num">{{.Denied}}</td><td class="num">{{.Errors}}</td><td class="num">{{.CachedAllowed}} / {{.CachedDenied}}</td><td class="num">{{.CacheEntries}}</td>{{else}}<td colspan="6">—</td>{{end}}</tr>
{{end}}</table>{{end}}

<h2>Tunnels (WebSocket and other upgrades)</h2>
<table id="tunnels"><tr><th>open</th><th>cap (max_upgraded_conns)</th><th>opened since start</th><th>bytes to upstream</th><th>bytes to clients</th><th>idle timeout</th></tr>
{{with .Proxy.Tunnels}}<tr><td class="num" id="tunnels-open">{{.Open}}</td><td class="num">{{if .Max}}{{.Max}}{{else}}none{{end}}</td><td class="num">{{.Opened}}</td>
<td class="num">{{.BytesToUpstream}}</td><td class="num">{{.BytesToClient}}</td><td>{{.IdleTimeout}}</td></tr>{{end}}
</table>

{{with .ResponseCache}}
<h2>Response cache</h2>
<table id="response-cache">
<tr><th>stored</th><td colspan="6">{{.Entries}} entries · {{.Bytes}} bytes held of {{.MaxBytes}} · {{.Sets}} stored · {{.Rejected}} too large for a shard</td></tr>
<tr><th>purges</th><td colspan="6" id="purges">{{.Purges}} received · {{.PurgedEntries}} entries removed · {{.Resyncs}} full drops (subscription re-established) · subscription {{.Subscription}}</td></tr>
<tr><th>route</th><th>HIT</th><th>MISS</th><th>STALE</th><th>BYPASS</th><th>REVALIDATED</th><th>hit ratio</th></tr>
{{range $.Caches}}<tr data-cache-route="{{.Route}}"><td>{{.Route}}</td><td class="num">{{.Hit}}</td><td class="num">{{.Miss}}</td><td class="num">{{.Stale}}</td><td class="num">{{.Bypass}}</td><td class="num">{{.Revalidated}}</td><td class="num">{{.HitRatio}}</td></tr>
{{end}}</table>
{{end}}

{{with .Coupons}}
<h2>Coupon cache</h2>
<table id="coupons">
<tr><th>store</th><td colspan="2">{{.Store}}</td></tr>
<tr><th>answers</th><td colspan="2">HIT {{.Hit}} · MISS {{.Miss}} · STALE {{.Stale}} · unavailable {{.Unavailable}} · fallback {{.Fallback}}</td></tr>
<tr><th>hit ratio (X-Cache: HIT)</th><td class="num" id="hit-ratio">{{$.HitRatio}}</td><td></td></tr>
<tr><th>lookups by layer</th><td colspan="2">in process (L0 + bigcache) {{.L1Hits}} · L2 (rueidis) {{.L2Hits}} · Redis reads {{.RedisReads}} — in-process ratio {{$.L1Ratio}}</td></tr>
<tr><th>invalidations</th><td colspan="2">{{.Invalidations}} keys · {{.InvalidationsAll}} full (flush or reconnect)</td></tr>
{{if .Stream}}<tr><th>invalidation stream</th><td colspan="2" id="stream">{{.Stream}}</td></tr>{{end}}
{{if .Stream}}<tr><th>consistency</th><td colspan="2" id="consistency">{{.Consistency}}</td></tr>{{end}}
{{if .LastRedisError}}<tr><th>last Redis error</th><td colspan="2" class="err" id="redis-error">{{.LastRedisError}}</td></tr>{{end}}
</table>
{{if .Probes}}
<h2>Invalidation probe</h2>
<table id="probes"><tr><th>node</th><th>state</th><th>probes</th><th>last lag</th><th>mean lag</th></tr>
{{range .Probes}}<tr class="{{if .Up}}up{{else}}down{{end}}" data-node="{{.Node}}"><td>{{.Node}}</td><td>{{if .Up}}UP{{else}}DOWN {{.Err}}{{end}}</td>
<td class="num">{{.Probes}}</td><td class="num">{{.LastLag}}</td><td class="num">{{.MeanLag}}</td></tr>
{{end}}</table>
{{end}}
{{end}}
</body></html>
`))
