package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsEcho is a WebSocket echo upstream; each message is answered with
// prefix + the message.
func wsEcho(t *testing.T, prefix string) string {
	t.Helper()
	return upstream(t, func(w http.ResponseWriter, r *http.Request) { wsEchoHandler(w, r, prefix) })
}

// wsEchoHandler accepts a WebSocket and answers each message with prefix
// + the message.
func wsEchoHandler(w http.ResponseWriter, r *http.Request, prefix string) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, msg, err := c.Read(context.Background())
		if err != nil {
			return
		}
		if err := c.Write(context.Background(), typ, append([]byte(prefix), msg...)); err != nil {
			return
		}
	}
}

func wsConfig(up, accessLog string) string {
	return fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
shutdown_timeout = "5s"
upgrade_idle_timeout = "1h"
max_conns = 100
[admin]
listen = "127.0.0.1:0"
[log]
access_log = %q
[upstreams.ws]
servers = [%q]
[[routes]]
path_prefix = "/"
upstream = "ws"
`, accessLog, up)
}

func wsDial(t *testing.T, addr, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func wsRoundTrip(t *testing.T, c *websocket.Conn, msg string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return "", err
	}
	_, got, err := c.Read(ctx)
	return string(got), err
}

// TestWebSocketReloadAndDrain runs the binary as an operator would: tunnels
// show in /metrics and /status, outlive SIGHUP, and are closed and logged
// when SIGTERM's drain ends.
func TestWebSocketReloadAndDrain(t *testing.T) {
	a, b := wsEcho(t, "a:"), wsEcho(t, "b:")
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	cfgPath := writeFile(t, dir, "edge.toml", wsConfig(a, accessLog))
	p := start(t, cfgPath)

	// More tunnels than max_conns: a tunnel is not a request in flight.
	const n = 120
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = wsDial(t, p.addr, fmt.Sprintf("/t%d", i))
		if got, err := wsRoundTrip(t, conns[i], "hi"); err != nil || got != "a:hi" {
			t.Fatalf("tunnel %d: %q %v", i, got, err)
		}
	}
	if v := metricValue(t, p, "edgeproxy_upgraded_connections"); v != n {
		t.Errorf("edgeproxy_upgraded_connections = %v, want %d", v, n)
	}
	if v := metricValue(t, p, `edgeproxy_upgraded_bytes_total{direction="to_upstream"}`); v < n*8 { // "hi" in a masked frame
		t.Errorf("bytes to upstream = %v", v)
	}
	if v := metricValue(t, p, `edgeproxy_upgraded_bytes_total{direction="to_client"}`); v < n*6 { // "a:hi" in an unmasked frame
		t.Errorf("bytes to clients = %v", v)
	}
	_, page := getBody(t, "http://"+p.admin+"/status")
	if !regexp.MustCompile(`id="tunnels-open">` + fmt.Sprint(n) + `<`).MatchString(page) {
		t.Errorf("/status does not show %d open tunnels:\n%s", n, page)
	}

	// SIGHUP points the route elsewhere: open tunnels stay on their
	// upstream, new ones go to the new one.
	writeFile(t, dir, "edge.toml", strings.Replace(wsConfig(a, accessLog), a, b, 1))
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded", 5*time.Second)
	if got, err := wsRoundTrip(t, conns[0], "after"); err != nil || got != "a:after" {
		t.Fatalf("tunnel after reload: %q %v", got, err)
	}
	if got, err := wsRoundTrip(t, wsDial(t, p.addr, "/new"), "x"); err != nil || got != "b:x" {
		t.Fatalf("new tunnel after reload: %q %v", got, err)
	}

	// SIGTERM: nothing in flight, so the drain ends at once and the
	// tunnels are closed well before shutdown_timeout.
	start := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("shutdown with open tunnels took %v", el)
	}
	if _, err := wsRoundTrip(t, conns[1], "gone?"); err == nil {
		t.Error("tunnel still open after exit")
	}
	logged, _ := os.ReadFile(accessLog)
	if c := strings.Count(string(logged), `"status":101,`); c != n+1 {
		t.Errorf("%d tunnel lines in the access log, want %d", c, n+1)
	}
	if c := strings.Count(string(logged), `"error":"closed by shutdown"`); c != n+1 {
		t.Errorf("%d tunnels logged as closed by shutdown, want %d", c, n+1)
	}
}

// TestWebSocketTunnelMemory measures the proxy process's resident memory
// per open tunnel, 1,000 tunnels at once.
func TestWebSocketTunnelMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1,000 tunnels: skipped under -short and -race (the clients and upstream in this process would take half a minute)")
	}
	const n = 1000
	raiseFileLimit(t, 4*n+1000)
	up := wsEcho(t, "")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "edge.toml", strings.Replace(wsConfig(up, "off"), "max_conns = 100", "max_conns = 2000", 1))
	p := startWith(t, plainBinary(t), cfg)
	pid := p.cmd.Process.Pid
	// Warm up: one tunnel, so the first one's one-off costs are not counted.
	warm := wsDial(t, p.addr, "/")
	if _, err := wsRoundTrip(t, warm, "warm"); err != nil {
		t.Fatal(err)
	}
	rssBefore := statusKiB(pid, "VmRSS")

	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 50)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/", nil)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			if err := c.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
				errs <- err
				return
			}
			if _, _, err := c.Read(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	}()
	for err := range errs {
		t.Fatal(err)
	}
	if v := metricValue(t, p, "edgeproxy_upgraded_connections"); v != n+1 {
		t.Fatalf("edgeproxy_upgraded_connections = %v, want %d", v, n+1)
	}
	rssAfter := statusKiB(pid, "VmRSS")
	per := float64(rssAfter-rssBefore) / n
	t.Logf("%d tunnels: proxy RSS %d → %d KiB, %.1f KiB per tunnel", n, rssBefore, rssAfter, per)
	if per > 128 {
		t.Errorf("%.1f KiB of RSS per tunnel, want at most 128", per)
	}
}
