package admin

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// TestStatusShowsResponseCache: hit ratio per route, stored bytes and
// purges received are on the page.
func TestStatusShowsResponseCache(t *testing.T) {
	reg := prometheus.NewRegistry()
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeproxy_response_cache_answers_total"}, []string{"route", "result"})
	reg.MustRegister(answers)
	answers.WithLabelValues("news", "HIT").Add(3)
	answers.WithLabelValues("news", "MISS").Add(1)
	data := func() StatusData {
		return StatusData{Started: time.Now(), Proxy: proxy.Snapshot{Routes: []proxy.RouteStatus{{Name: "news"}}},
			ResponseCache: &ResponseCacheStatus{Entries: 7, Bytes: 4096, MaxBytes: 1 << 20, Purges: 2, PurgedEntries: 5, Subscription: "live"}}
	}
	rec := httptest.NewRecorder()
	NewStatusPage(data, reg).ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	page := rec.Body.String()
	for _, want := range []string{`id="response-cache"`, "7 entries", "4096 bytes held", "2 received", "subscription live",
		`data-cache-route="news"`, "75.0%"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
