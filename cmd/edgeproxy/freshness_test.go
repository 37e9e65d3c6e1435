package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// pollBody polls url until its body matches re (bounded).
func pollBody(t *testing.T, url string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := getBody(t, url)
		if re.MatchString(body) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never matched %s:\n%s", url, re, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The probe and the verifier as an operator sees them: metrics per node,
// the stream on /readyz and /status, the consistency of verified hits,
// and the last Redis error once Redis goes away.
func TestFreshnessOnAdminEndpoints(t *testing.T) {
	r := redistest.Start(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "edge.toml", redisConfig(r.Addr, "", false)+`[cache]
probe_interval = "50ms"
probe_timeout = "500ms"
verify_sample = 1.0
`)
	data := writeFile(t, dir, "c.jsonl", `{"id":"c1","lat":35.681,"lon":139.767}`+"\n")
	if out, errOut, code := runBinary(t, "coupons", "import", "-config", cfg, data); code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errOut)
	}
	p := start(t, cfg)
	for i := 0; i < 5; i++ {
		getBody(t, "http://"+p.addr+"/coupons/c1")
	}
	node := regexp.QuoteMeta(r.Addr)
	metrics := pollBody(t, "http://"+p.admin+"/metrics", regexp.MustCompile(
		`edgeproxy_coupon_invalidation_stream_up\{node="`+node+`"\} 1[\s\S]*`+
			`edgeproxy_coupon_verify_total\{result="match"\} [1-9]`))
	m := regexp.MustCompile(`edgeproxy_coupon_invalidation_lag_seconds_count\{node="` + node + `"\} (\d+)`).FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("no lag histogram for %s:\n%s", r.Addr, metrics)
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 {
		t.Fatalf("lag count %s", m[1])
	}
	for _, want := range []string{`edgeproxy_coupon_verify_total{result="mismatch"} 0`, `edgeproxy_coupon_invalidation_lag_seconds_bucket{node="` + r.Addr + `",le="0.1"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_, ready := getBody(t, "http://"+p.admin+"/readyz")
	var rz struct {
		Detail map[string]string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(ready), &rz); err != nil || rz.Detail["coupon_invalidation_stream"] != "up (1 node(s))" {
		t.Fatalf("/readyz: %v %s", err, ready)
	}
	status := pollBody(t, "http://"+p.admin+"/status", regexp.MustCompile(`id="consistency">100\.0000% of \d+ verified hits`))
	if !strings.Contains(status, `id="stream">up (1 node(s))`) || !strings.Contains(status, `data-node="`+r.Addr+`"`) {
		t.Fatalf("/status lacks the stream or the probe row:\n%s", status)
	}

	r.Stop()
	pollBody(t, "http://"+p.admin+"/readyz", regexp.MustCompile(`"coupon_invalidation_stream":"down \(degraded\): [^"]+"`))
	_, ready = getBody(t, "http://"+p.admin+"/readyz")
	if !strings.Contains(ready, `"redis_last_error":`) {
		t.Fatalf("/readyz lacks the last Redis error: %s", ready)
	}
	pollBody(t, "http://"+p.admin+"/metrics", regexp.MustCompile(`edgeproxy_coupon_invalidation_stream_up\{node="`+node+`"\} 0`))
	p.waitLog("invalidation stream lost; coupon answers degraded until probes pass", 5*time.Second)
}

// Pushes lost between Redis and the instance (a relay drops them): the
// verifier finds the stale hit, counts and logs it, /status shows it.
func TestVerifyMismatchThroughRelay(t *testing.T) {
	r := redistest.Start(t)
	relay := redistest.StartRelay(t, r.Addr)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "edge.toml", redisConfig(relay.Addr, "", false)+`[cache]
probe_interval = "0s"
verify_sample = 1.0
`)
	importOne := func(line string) {
		data := writeFile(t, dir, "c.jsonl", line+"\n")
		if out, errOut, code := runBinary(t, "coupons", "import", "-config", cfg, data); code != 0 {
			t.Fatalf("import: %d %s %s", code, out, errOut)
		}
	}
	importOne(`{"id":"c1","lat":35.681,"lon":139.767,"v":1}`)
	p := start(t, cfg)
	getBody(t, "http://"+p.addr+"/coupons/c1")
	relay.DropInvalidations(true)
	importOne(`{"id":"c1","lat":35.681,"lon":139.767,"v":2}`)
	if _, body := getBody(t, "http://"+p.addr+"/coupons/c1"); !strings.Contains(body, `"v":1`) {
		t.Fatalf("expected the stale hit a lost push leaves, got %s", body)
	}
	pollBody(t, "http://"+p.admin+"/metrics", regexp.MustCompile(`edgeproxy_coupon_verify_total\{result="mismatch"\} 1`))
	line := p.waitLog("cached coupon entry differs from Redis", 5*time.Second)
	if line["key"] != "coupon:id:c1" || line["age"] == nil {
		t.Fatalf("mismatch log line %v", line)
	}
	pollBody(t, "http://"+p.admin+"/status", regexp.MustCompile(`id="consistency">\d+\.\d+% of \d+ verified hits \(1 mismatched\)`))
	if _, body := getBody(t, "http://"+p.addr+"/coupons/c1"); !strings.Contains(body, `"v":2`) {
		t.Fatalf("after the mismatch the coupon is re-read; got %s", body)
	}
}
