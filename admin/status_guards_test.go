package admin

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// Routes with a rate_limit or auth_request get a row of their counters.
func TestStatusPageShowsRateLimitsAndAuth(t *testing.T) {
	snap := proxy.Snapshot{Routes: []proxy.RouteStatus{
		{Name: "plain", Target: "upstream app"},
		{Name: "api", Target: "upstream app", RateLimit: "10/1s burst 20 shared", Limited: 7, RateFallbacks: 3,
			Auth: &proxy.AuthStatus{Upstream: "auth", Allowed: 11, Denied: 2, Errors: 1, CachedAllowed: 5, CachedDenied: 4, CacheEntries: 9}},
	}}
	page := NewStatusPage(func() StatusData { return StatusData{Started: time.Now(), Proxy: snap} }, prometheus.NewRegistry())
	w := httptest.NewRecorder()
	page.ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	body := w.Body.String()
	row := regexp.MustCompile(`(?s)<tr data-guard="api">.*?</tr>`).FindString(body)
	if row == "" {
		t.Fatalf("no guard row for api:\n%s", body)
	}
	text := regexp.MustCompile(`<[^>]+>`).ReplaceAllString(row, "|")
	for _, want := range []string{"10/1s burst 20 shared", "|7|", "|3|", "auth", "|11|", "|2|", "|1|", "5 / 4", "|9|"} {
		if !strings.Contains(text, want) {
			t.Errorf("guard row lacks %q: %s", want, text)
		}
	}
	if strings.Contains(body, `data-guard="plain"`) {
		t.Error("a route without rate_limit or auth_request has a guard row")
	}
}
