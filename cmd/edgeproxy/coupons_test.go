package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

func redisConfig(redisAddr, fallback string, withFallbackUpstream bool) string {
	up := ""
	fb := `""`
	if withFallbackUpstream {
		up = fmt.Sprintf("[upstreams.coupon-service]\nservers = [%q]\n", fallback)
		fb = `"coupon-service"`
	}
	return fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
access_log = "off"
%s
[coupon]
source = "redis"
fallback_upstream = %s
[redis]
addrs = [%q]
command_timeout = "200ms"
dial_timeout = "200ms"
`, up, fb, redisAddr)
}

func TestImportServeAndFallBack(t *testing.T) {
	r := redistest.Start(t)
	fallback := upstream(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-From", "coupon-service")
		io.WriteString(w, "fallback "+req.URL.Path)
	})
	dir := t.TempDir()
	cfg := writeFile(t, dir, "edge.toml", redisConfig(r.Addr, fallback, true))
	data := writeFile(t, dir, "c.jsonl", strings.Join([]string{
		`{"id":"c1","lat":35.681,"lon":139.767,"title":"one"}`,
		`{"id":"c2","lat":35.682,"lon":139.767}`,
		`{"id":"bad","lat":"north","lon":139.767}`,
		``,
		`{"id":"c3","lat":35.69,"lon":139.70}`,
		`not json`,
	}, "\n"))
	out, errOut, code := runBinary(t, "coupons", "import", "-config", cfg, data)
	if code != 1 || !strings.Contains(out, "imported 3 coupons") || !strings.Contains(errOut, data+":3: lat:") || !strings.Contains(errOut, data+":6: ") {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	if v, _ := r.Do("EXISTS", "coupon:id:bad"); v != ":0" {
		t.Errorf("a bad line was written")
	}

	p := start(t, cfg)
	base := "http://" + p.addr
	resp, err := client.Get(base + "/coupons/c1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"id":"c1","lat":35.681,"lon":139.767,"title":"one"}` ||
		resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Cache") != "MISS" {
		t.Errorf("by id: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if code, body := getBody(t, base+"/coupons/nearby?lat=35.681&lon=139.767&radius_m=500"); code != 200 || !strings.HasPrefix(body, `{"count":2,"coupons":[{"id":"c1"`) {
		t.Errorf("nearby: %d %s", code, body)
	}
	// Writes show through.
	_, _, code = runBinary(t, "coupons", "delete", "-config", cfg, "c2")
	if code != 0 {
		t.Fatalf("delete exit %d", code)
	}
	waitUntil(t, func() bool {
		_, body := getBody(t, base+"/coupons/nearby?lat=35.681&lon=139.767&radius_m=500")
		return strings.HasPrefix(body, `{"count":1,`)
	}, time.Second)
	if code, body := getBody(t, base+"/coupons/c2"); code != 404 || body != `{"error":"coupon not found"}` {
		t.Errorf("deleted coupon: %d %s", code, body)
	}
	// Not a coupon read: the fallback.
	if code, body := getBody(t, base+"/coupons/c1/redeem"); code != 200 || body != "fallback /coupons/c1/redeem" {
		t.Errorf("other path: %d %q", code, body)
	}

	// Redis down: cached answers are STALE, the rest go to the fallback.
	r.Stop()
	// Once edgeproxy sees the connection drop, cached answers turn STALE.
	waitUntil(t, func() bool {
		resp, err := client.Get(base + "/coupons/c1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("cached while down: %d", resp.StatusCode)
		}
		return resp.Header.Get("X-Cache") == "STALE"
	}, 2*time.Second)
	if code, body := getBody(t, base+"/coupons/c3"); code != 200 || body != "fallback /coupons/c3" {
		t.Errorf("uncached while down: %d %q", code, body)
	}
	if code, body := getBody(t, p.admin2()+"/readyz"); code != 200 || !strings.Contains(body, "redis unreachable") {
		t.Errorf("/readyz while Redis is down: %d %s", code, body)
	}
}

func (p *proc) admin2() string { return "http://" + p.admin }

func TestRedisDownWithoutFallbackIs503(t *testing.T) {
	r := redistest.Start(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "edge.toml", redisConfig(r.Addr, "", false))
	r.Stop()
	p := start(t, cfg) // starts although Redis is down
	start := time.Now()
	resp, err := client.Get("http://" + p.addr + "/coupons/x1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(body) != `{"error":"coupon store unavailable"}` || resp.Header.Get("X-Cache") == "" {
		t.Errorf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v", took)
	}
}

func TestPrecisionMismatchRefusesStart(t *testing.T) {
	r := redistest.Start(t)
	r.Do("HSET", "coupon:meta", "precision", "7", "schema", "1")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "edge.toml", redisConfig(r.Addr, "", false))
	_, errOut, code := runBinary(t, "-t", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, "geohash_precision = 7") {
		t.Errorf("-t: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, "-config", cfg)
	if code != 1 || !strings.Contains(errOut, "precision") {
		t.Errorf("start: %d %q", code, errOut)
	}
}

// TestReloadsUnderLoad drives requests through 20 reloads, alternately
// good and bad, and counts failures.
func TestReloadsUnderLoad(t *testing.T) {
	a := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") })
	b := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	dir := t.TempDir()
	good := proxyConfig(a, b, "off")
	cfg := writeFile(t, dir, "edge.toml", good)
	p := start(t, cfg)

	var ok, failed atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100000 && !stop.Load(); n++ {
				resp, err := c.Get("http://" + p.addr + "/x")
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		if i%2 == 0 {
			target := "a"
			if i%4 == 0 {
				target = "b"
			}
			writeFile(t, dir, "edge.toml", strings.Replace(good, `upstream = "a"`, `upstream = "`+target+`"`, 1))
			p.signal(syscall.SIGHUP)
			p.waitLog("configuration reloaded", 5*time.Second)
		} else {
			writeFile(t, dir, "edge.toml", good+"\nbogus_key = 1\n")
			p.signal(syscall.SIGHUP)
			p.waitLog("reload refused", 5*time.Second)
		}
		// Let requests run on this config.
		answered := func() int64 { return ok.Load() + failed.Load() }
		target := answered() + 20
		waitUntil(t, func() bool { return answered() >= target }, 5*time.Second)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests through 20 reloads, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Errorf("%d ok, %d failed", ok.Load(), failed.Load())
	}
}
