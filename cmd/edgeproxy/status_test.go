package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromium runs headless Chromium with args and the URL, and returns its
// standard output.
func chromium(t *testing.T, url string, args ...string) string {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed; .ci/run installs it")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errOut.String())
	}
	return out.String()
}

// row returns the text of the table row whose attribute attr is value.
func row(dom, attr, value string) string {
	re := regexp.MustCompile(`(?s)<tr[^>]*` + attr + `="` + regexp.QuoteMeta(value) + `"[^>]*>.*?</tr>`)
	return re.FindString(dom)
}

func cellTexts(rowHTML string) []string {
	var cells []string
	for _, m := range regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`).FindAllStringSubmatch(rowHTML, -1) {
		cells = append(cells, strings.TrimSpace(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], "")))
	}
	return cells
}

func TestStatusPageInChromium(t *testing.T) {
	a := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") })
	dir := t.TempDir()
	deadAddr := closedAddr(t)
	sample, _ := filepath.Abs("../../testdata/coupons.jsonl")
	cfg := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
access_log = "off"
[upstreams.news]
servers = [%q]
[upstreams.dead]
servers = [%q]
max_fails = 1
fail_timeout = "1m"
retries = 0
[[routes]]
path_prefix = "/news/"
upstream = "news"
[[routes]]
path_prefix = "/dead/"
upstream = "dead"
[coupon]
source = "file"
file = %q
fallback_upstream = ""
`, a, deadAddr, sample)
	cfgPath := writeFile(t, dir, "edge.toml", cfg)
	p := start(t, cfgPath)
	for i := 0; i < 25; i++ {
		getBody(t, "http://"+p.addr+"/news/item")
	}
	for i := 0; i < 7; i++ {
		getBody(t, "http://"+p.addr+"/coupons/nearby?lat=35.681&lon=139.767")
	}
	if code, _ := getBody(t, "http://"+p.addr+"/dead/x"); code != 502 {
		t.Fatalf("dead upstream: %d", code)
	}
	writeFile(t, dir, "edge.toml", cfg+"\nunknown_key = 1\n")
	p.signal(syscall.SIGHUP)
	p.waitLog("reload refused", 5*time.Second)

	_, metrics := getBody(t, "http://"+p.admin+"/metrics")
	for _, want := range []string{
		`edgeproxy_requests_total{code="2xx",route="/news/"} 25`,
		`edgeproxy_requests_total{code="5xx",route="/dead/"} 1`,
		`edgeproxy_request_duration_seconds_count{route="/news/"} 25`,
		`edgeproxy_upstream_server_up{server="` + deadAddr + `",upstream="dead"} 0`,
		`edgeproxy_upstream_server_up{server="` + a + `",upstream="news"} 1`,
		`edgeproxy_upstream_attempts_total{server="` + a + `",upstream="news"} 25`,
		`edgeproxy_upstream_failures_total{server="` + deadAddr + `",upstream="dead"} 1`,
		`edgeproxy_upstream_connections{server="` + a + `",state="idle",upstream="news"} 1`,
		`edgeproxy_coupon_answers_total{cache="HIT"} 7`,
		`edgeproxy_config_reloads_total{result="error"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := getBody(t, "http://"+p.admin+"/debug/pprof/cmdline"); code != 200 {
		t.Errorf("pprof: %d", code)
	}
	for _, path := range []string{"/metrics", "/status", "/debug/pprof/"} {
		if code, _ := getBody(t, "http://"+p.addr+path); code != 404 {
			t.Errorf("public listener serves %s: %d", path, code)
		}
	}

	dom := chromium(t, "http://"+p.admin+"/status", "--dump-dom")
	if !strings.Contains(dom, "<h1>edgeproxy</h1>") {
		t.Fatalf("not the status page:\n%.500s", dom)
	}
	news := row(dom, "data-server", a)
	if !strings.Contains(news, `class="up"`) || cellTexts(news)[2] != "UP" || cellTexts(news)[5] != "25" {
		t.Errorf("news server row %q", cellTexts(news))
	}
	dead := row(dom, "data-server", deadAddr)
	if !strings.Contains(dead, `class="down"`) || !strings.HasPrefix(cellTexts(dead)[2], "DOWN passive") || cellTexts(dead)[6] != "1" {
		t.Errorf("dead server row %q", cellTexts(dead))
	}
	if c := cellTexts(row(dom, "data-route", "/news/")); len(c) < 10 || c[4] != "25" || c[6] == "—" {
		t.Errorf("news route row %q", c)
	}
	if c := cellTexts(row(dom, "data-route", "/dead/")); len(c) < 10 || c[4] != "1" || c[9] != "1" {
		t.Errorf("dead route row %q", c)
	}
	if !strings.Contains(dom, "file (3000 coupons)") || !strings.Contains(dom, "HIT 7 ") || !strings.Contains(dom, `id="hit-ratio">100.0%`) {
		t.Errorf("coupon section wrong:\n%s", regexp.MustCompile(`(?s)<table id="coupons">.*?</table>`).FindString(dom))
	}
	if !strings.Contains(dom, "refused:") || !strings.Contains(dom, "unknown_key") {
		t.Errorf("last reload not shown as refused")
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	chromium(t, "http://"+p.admin+"/status", "--screenshot="+shot, "--window-size=1100,800", "--hide-scrollbars")
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v", err)
	}
	if dst := os.Getenv("EDGEPROXY_STATUS_SCREENSHOT"); dst != "" {
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func closedAddr(t *testing.T) string {
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
