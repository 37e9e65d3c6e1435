package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsUpstream is a real WebSocket echo server on loopback. It records the
// upgrade requests it saw and the close status its peers sent.
type wsUpstream struct {
	addr string

	mu      sync.Mutex // guards headers
	headers []http.Header

	closes chan websocket.CloseError
	active atomic.Int64 // handlers running
}

func startWSUpstream(t testing.TB) *wsUpstream {
	t.Helper()
	u := &wsUpstream{closes: make(chan websocket.CloseError, 16)}
	srv := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		u.active.Add(1)
		defer u.active.Add(-1)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(4 << 20)
		ctx := context.Background()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					select {
					case u.closes <- ce:
					default:
					}
				}
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	})
	u.addr = addrOf(srv)
	return u
}

func (u *wsUpstream) lastHeader() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.headers) == 0 {
		return nil
	}
	return u.headers[len(u.headers)-1]
}

// wsProxy is a proxy with one websocket-enabled route to up.
func wsProxy(t testing.TB, up string, edit func(*Options)) (string, *Server) {
	t.Helper()
	o := testOptions()
	o.UpgradeIdleTimeout = time.Hour
	o.MaxUpgradedConns = 10000
	o.Upstreams["up"] = testUpstreamOptions(up)
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", WebSocket: true}}
	if edit != nil {
		edit(&o)
	}
	return startProxy(t, o)
}

// wsClient reads on its own goroutine, as coder/websocket's Ping needs.
type wsClient struct {
	c    *websocket.Conn
	msgs chan wsMsg
}

type wsMsg struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

func dialWS(t testing.TB, proxyAddr, path string) (*wsClient, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+proxyAddr+path, nil)
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	c.SetReadLimit(4 << 20)
	wc := &wsClient{c: c, msgs: make(chan wsMsg, 4)}
	go func() {
		for {
			typ, data, err := c.Read(context.Background())
			wc.msgs <- wsMsg{typ, data, err}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return wc, resp
}

func (wc *wsClient) next(t testing.TB) wsMsg {
	t.Helper()
	select {
	case m := <-wc.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return wsMsg{}
	}
}

func (wc *wsClient) echo(t testing.TB, typ websocket.MessageType, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wc.c.Write(ctx, typ, data); err != nil {
		t.Fatalf("write %d bytes: %v", len(data), err)
	}
	m := wc.next(t)
	if m.err != nil {
		t.Fatalf("read echo of %d bytes: %v", len(data), m.err)
	}
	if m.typ != typ || !bytes.Equal(m.data, data) {
		t.Fatalf("echo of %d bytes (%v): got %d bytes (%v)", len(data), typ, len(m.data), m.typ)
	}
}

func accessLogFile(t testing.TB, o *Options) (*AccessLog, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	al, err := NewAccessLog(AccessLogOptions{Path: path, BufferSize: 64 << 10, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	o.AccessLog = al
	return al, path
}

func tunnelsOpen(s *Server) int64 { return s.Snapshot().Tunnels.Open }

func TestUpgradeWebSocketMessagesPingClose(t *testing.T) {
	u := startWSUpstream(t)
	var al *AccessLog
	var logPath string
	addr, s := wsProxy(t, u.addr, func(o *Options) { al, logPath = accessLogFile(t, o) })

	wc, resp := dialWS(t, addr, "/chat?room=1")
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") == "" {
		t.Fatalf("handshake answer: %d %v", resp.StatusCode, resp.Header)
	}
	// The upstream saw the upgrade, not a plain GET.
	h := u.lastHeader()
	if h.Get("Upgrade") != "websocket" || !strings.EqualFold(h.Get("Connection"), "upgrade") ||
		h.Get("Sec-WebSocket-Key") == "" || h.Get("X-Forwarded-For") == "" {
		t.Fatalf("upstream saw %v", h)
	}
	if n := tunnelsOpen(s); n != 1 {
		t.Fatalf("open tunnels %d, want 1", n)
	}

	for _, size := range []int{1, 125, 126, 65535, 65536, 1 << 20} {
		data := make([]byte, size)
		for i := range data {
			data[i] = 'a' + byte(i%26)
		}
		wc.echo(t, websocket.MessageText, data)
		for i := range data {
			data[i] = byte(i * 7)
		}
		wc.echo(t, websocket.MessageBinary, data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := wc.c.Ping(ctx); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}

	// Close handshake: the client's Close returns nil only once the
	// upstream's close frame came back.
	if err := wc.c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	select {
	case ce := <-u.closes:
		if ce.Code != websocket.StatusNormalClosure || ce.Reason != "bye" {
			t.Fatalf("upstream got close %v", ce)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("upstream never saw the close frame")
	}
	if !waitFor(t, func() bool { return tunnelsOpen(s) == 0 }, 5*time.Second) {
		t.Fatal("tunnel still open after the close handshake")
	}
	st := s.Snapshot().Tunnels
	if st.Opened != 1 || st.BytesToUpstream < 2*(1<<20) || st.BytesToClient < 2*(1<<20) {
		t.Fatalf("tunnel counters %+v", st)
	}

	// One access-log line, written when the tunnel ended.
	var lines []map[string]any
	for _, l := range readLogLines(t, al, logPath) {
		if l["path"] == "/chat?room=1" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("log lines for the tunnel: %v", lines)
	}
	l := lines[0]
	if l["status"] != float64(101) || l["bytes_in"].(float64) < 2<<20 || l["bytes_out"].(float64) < 2<<20 || l["error"] != nil {
		t.Fatalf("tunnel log line %v", l)
	}
}

func TestUpgradeRefusedIsRelayed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"forbidden", http.StatusForbidden, "no websockets for you"},
		{"plain 200", http.StatusOK, strings.Repeat("<html>index</html>", 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Why", "refused")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			addr, s := wsProxy(t, addrOf(srv), nil)
			resp, body := rawResponse(t, addr, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", "GET")
			if resp.StatusCode != tc.status || body != tc.body || resp.Header.Get("X-Why") != "refused" {
				t.Fatalf("got %d %q %v", resp.StatusCode, body[:min(len(body), 40)], resp.Header)
			}
			if resp.Header.Get("Upgrade") != "" {
				t.Fatalf("a refused upgrade carries Upgrade: %v", resp.Header)
			}
			// coder/websocket sees the refusal too.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, wsResp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
			if err == nil || wsResp == nil || wsResp.StatusCode != tc.status {
				t.Fatalf("dial: %v %v", err, wsResp)
			}
			if n := s.tunnels.reserved.Load(); n != 0 {
				t.Fatalf("a refused upgrade holds a tunnel slot: %d", n)
			}
		})
	}
}

func TestUpgradeWebSocketOffForwardsPlainGET(t *testing.T) {
	var got http.Header
	var mu sync.Mutex
	srv := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		io.WriteString(w, "plain")
	})
	addr, _ := wsProxy(t, addrOf(srv), func(o *Options) { o.Routes[0].WebSocket = false })
	resp, body := rawResponse(t, addr, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", "GET")
	if resp.StatusCode != 200 || body != "plain" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Get("Upgrade") != "" || got.Get("Connection") != "" || got.Get("Sec-WebSocket-Key") == "" {
		t.Fatalf("upstream saw %v", got)
	}
}

func TestUpgradeCapAnswers503(t *testing.T) {
	u := startWSUpstream(t)
	addr, s := wsProxy(t, u.addr, func(o *Options) { o.MaxUpgradedConns = 2 })
	a, _ := dialWS(t, addr, "/")
	b, _ := dialWS(t, addr, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third tunnel: %v %v", err, resp)
	}
	a.echo(t, websocket.MessageText, []byte("still here"))
	b.c.Close(websocket.StatusNormalClosure, "")
	if !waitFor(t, func() bool { return tunnelsOpen(s) == 1 }, 5*time.Second) {
		t.Fatal("closed tunnel still counted")
	}
	c, _ := dialWS(t, addr, "/")
	c.echo(t, websocket.MessageText, []byte("room again"))
}

func TestUpgradeIdleTimeoutClosesQuietTunnel(t *testing.T) {
	u := startWSUpstream(t)
	const idle = 400 * time.Millisecond
	var al *AccessLog
	var logPath string
	addr, s := wsProxy(t, u.addr, func(o *Options) {
		o.UpgradeIdleTimeout = idle
		al, logPath = accessLogFile(t, o)
	})
	quiet, _ := dialWS(t, addr, "/quiet")
	busy, _ := dialWS(t, addr, "/busy")
	start := time.Now()
	// The busy tunnel moves a message every idle/4 for 2×idle: it stays.
	for time.Since(start) < 2*idle {
		busy.echo(t, websocket.MessageText, []byte("tick"))
		time.Sleep(idle / 4)
	}
	m := quiet.next(t)
	if m.err == nil {
		t.Fatalf("quiet tunnel got a message: %q", m.data)
	}
	if el := time.Since(start); el < idle {
		t.Fatalf("quiet tunnel closed after %v, before the idle timeout %v", el, idle)
	}
	busy.echo(t, websocket.MessageText, []byte("still open"))
	if !waitFor(t, func() bool { return tunnelsOpen(s) == 1 }, 5*time.Second) {
		t.Fatalf("open tunnels %d, want 1", tunnelsOpen(s))
	}
	var found bool
	for _, l := range readLogLines(t, al, logPath) {
		if l["path"] == "/quiet" {
			found = l["status"] == float64(101) && l["error"] == "upgrade_idle_timeout"
		}
	}
	if !found {
		t.Fatal("no access-log line naming the idle timeout")
	}
}

func TestUpgradeTunnelSurvivesReload(t *testing.T) {
	u := startWSUpstream(t)
	o := testOptions()
	o.UpgradeIdleTimeout = time.Hour
	o.Upstreams["up"] = testUpstreamOptions(u.addr)
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", WebSocket: true}}
	addr, s := startProxy(t, o)
	wc, _ := dialWS(t, addr, "/")
	wc.echo(t, websocket.MessageText, []byte("before"))

	// The new config drops the upstream and the route the tunnel came by.
	other := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "new") })
	o2 := testOptions()
	o2.UpgradeIdleTimeout = time.Hour
	o2.Upstreams["other"] = testUpstreamOptions(addrOf(other))
	o2.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "other", WebSocket: true}}
	if err := s.Reload(o2); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, "http://"+addr+"/"); body != "new" {
		t.Fatalf("reload not live: %q", body)
	}
	wc.echo(t, websocket.MessageBinary, []byte("after reload"))
	if n := tunnelsOpen(s); n != 1 {
		t.Fatalf("open tunnels %d", n)
	}
}

func TestUpgradeShutdownClosesTunnels(t *testing.T) {
	u := startWSUpstream(t)
	var al *AccessLog
	var logPath string
	addr, s := wsProxy(t, u.addr, func(o *Options) { al, logPath = accessLogFile(t, o) })
	wcs := make([]*wsClient, 3)
	for i := range wcs {
		wcs[i], _ = dialWS(t, addr, fmt.Sprintf("/t%d", i))
		wcs[i].echo(t, websocket.MessageText, []byte("hi"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("shutdown took %v", el)
	}
	// Shutdown returned: every tunnel is closed and logged.
	if n := tunnelsOpen(s); n != 0 {
		t.Fatalf("open tunnels after shutdown: %d", n)
	}
	for _, wc := range wcs {
		if m := wc.next(t); m.err == nil {
			t.Fatalf("tunnel still carries messages after shutdown: %q", m.data)
		}
	}
	n := 0
	for _, l := range readLogLines(t, al, logPath) {
		if l["status"] == float64(101) && l["error"] == "closed by shutdown" {
			n++
		}
	}
	if n != len(wcs) {
		t.Fatalf("%d tunnel log lines, want %d", n, len(wcs))
	}
}

// rawUpgradeUpstream answers any upgrade with 101 and some bytes of its
// own in the same write, then echoes in upper case; when the client
// half-closes, it says "bye" and closes.
func rawUpgradeUpstream(t testing.TB, seen chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var head strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					head.WriteString(line)
					if line == "\r\n" {
						break
					}
				}
				seen <- head.String()
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo/1\r\nConnection: Upgrade\r\nX-Foo: bar\r\n\r\nhello-first")
				buf := make([]byte, 4096)
				for {
					n, err := br.Read(buf)
					if n > 0 {
						c.Write(bytes.ToUpper(buf[:n]))
					}
					if err != nil {
						io.WriteString(c, "bye")
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestUpgradeOtherProtocolRawTunnel(t *testing.T) {
	seen := make(chan string, 1)
	up := rawUpgradeUpstream(t, seen)
	addr, s := wsProxy(t, up, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The first tunnel bytes travel in the same write as the request head.
	io.WriteString(c, "GET /foo?x HTTP/1.1\r\nHost: example.com\r\nUpgrade: foo/1\r\nConnection: keep-alive, Upgrade\r\nX-Custom: 1\r\n\r\nearly")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "foo/1" || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") ||
		resp.Header.Get("X-Foo") != "bar" {
		t.Fatalf("101: %d %v", resp.StatusCode, resp.Header)
	}
	head := <-seen
	for _, want := range []string{"GET /foo?x HTTP/1.1\r\n", "\r\nUpgrade: foo/1\r\n", "\r\nConnection: upgrade\r\n", "\r\nX-Custom: 1\r\n", "\r\nHost: example.com\r\n"} {
		if !strings.Contains(head, want) {
			t.Fatalf("upstream head lacks %q:\n%s", want, head)
		}
	}
	if strings.Contains(strings.ToLower(head), "keep-alive") {
		t.Fatalf("hop-by-hop keep-alive forwarded:\n%s", head)
	}
	readN := func(n int) string {
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatalf("reading %d bytes: %v", n, err)
		}
		return string(b)
	}
	if got := readN(len("hello-first")); got != "hello-first" {
		t.Fatalf("upstream's early bytes: %q", got)
	}
	if got := readN(len("EARLY")); got != "EARLY" {
		t.Fatalf("client's early bytes: %q", got)
	}
	io.WriteString(c, "more")
	if got := readN(4); got != "MORE" {
		t.Fatalf("echo %q", got)
	}
	// Half-close: the upstream sees EOF and may still answer.
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after half-close: %q %v", rest, err)
	}
	if !waitFor(t, func() bool { return tunnelsOpen(s) == 0 }, 5*time.Second) {
		t.Fatal("tunnel still open after both sides closed")
	}
}

// memInUse is the Go memory in use after a collection (heap and stacks)
// and the process's resident set, in bytes.
func memInUse() (goBytes, rss uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				rss = kb << 10
			}
		}
	}
	return ms.HeapInuse + ms.StackInuse, rss
}

// openMany opens n WebSocket connections to addr, each echoing one
// message, 50 dials at a time.
func openMany(t *testing.T, addr string, n int) []*websocket.Conn {
	t.Helper()
	conns := make([]*websocket.Conn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			msg := []byte("tunnel " + strconv.Itoa(i))
			if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
				errs <- err
				return
			}
			if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("echo %q: %q %v", msg, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return conns
}

func closeMany(conns []*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
}

// TestUpgradeThousandTunnels holds 1,000 tunnels open at once and
// measures what each costs the proxy: the same 1,000 connections are
// opened straight to the upstream first, and the difference in Go memory
// in use (heap and stacks, after a collection) is the proxy's.
func TestUpgradeThousandTunnels(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 tunnels: skipped under -short")
	}
	n := 1000
	if raceEnabled {
		n = 200 // the race detector's cost per goroutine; the figures are not meaningful then
	}
	u := startWSUpstream(t)
	var al *AccessLog
	var logPath string
	addr, s := wsProxy(t, u.addr, func(o *Options) {
		al, logPath = accessLogFile(t, o)
		uo := testUpstreamOptions(u.addr)
		uo.ConnectTimeout, uo.ResponseTimeout = 10*time.Second, 20*time.Second // a loaded machine
		o.Upstreams["up"] = uo
	})
	defer func() {
		if t.Failed() {
			for _, l := range readLogLines(t, al, logPath) {
				if l["error"] != nil {
					t.Log(l)
				}
			}
		}
	}()

	base, baseRSS := memInUse()
	start := time.Now()
	direct := openMany(t, u.addr, n)
	tookDirect := time.Since(start)
	withDirect, directRSS := memInUse()
	closeMany(direct)
	direct = nil
	if !waitFor(t, func() bool { return u.active.Load() == 0 }, 10*time.Second) {
		t.Fatalf("%d upstream handlers still running", u.active.Load())
	}

	base2, _ := memInUse()
	start = time.Now()
	proxied := openMany(t, addr, n)
	took := time.Since(start)
	if got := tunnelsOpen(s); got != int64(n) {
		t.Fatalf("open tunnels %d, want %d", got, n)
	}
	withProxy, proxyRSS := memInUse()
	perDirect := float64(withDirect-base) / float64(n)
	perProxied := float64(withProxy-base2) / float64(n)
	perTunnel := perProxied - perDirect
	t.Logf("%d connections opened and echoed in %v direct, %v through the proxy; Go memory in use per connection: "+
		"direct %.1f KiB, through the proxy %.1f KiB, so %.1f KiB per tunnel in the proxy; process RSS (client, proxy and upstream in one process): "+
		"%.1f MiB before, %.1f MiB with %d direct, %.1f MiB with %d proxied",
		n, tookDirect.Round(time.Millisecond), took.Round(time.Millisecond), perDirect/1024, perProxied/1024, perTunnel/1024,
		float64(baseRSS)/(1<<20), float64(directRSS)/(1<<20), n, float64(proxyRSS)/(1<<20), n)
	if !raceEnabled && perTunnel > 128<<10 {
		t.Errorf("a tunnel costs the proxy %.1f KiB, want at most 128 KiB", perTunnel/1024)
	}
	closeMany(proxied)
	if !waitFor(t, func() bool { return tunnelsOpen(s) == 0 }, 10*time.Second) {
		t.Fatalf("%d tunnels still open after their clients closed", tunnelsOpen(s))
	}
}

// The route's response steps see the 101 as any answer: `always` headers
// are added, hidden fields removed; a refused upgrade is intercepted by
// error pages like any upstream error.
func TestUpgradeRouteStepsApply(t *testing.T) {
	seen := make(chan string, 2)
	up := rawUpgradeUpstream(t, seen)
	addr, _ := wsProxy(t, up, func(o *Options) {
		o.Routes[0].ResponseHeaders = HeaderOps{Set: map[string]string{"X-Edge": "1"}, Remove: []string{"X-Foo"}}
		o.Routes[0].ResponseHeadersAlways = true
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: foo/1\r\nConnection: upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	<-seen
	if resp.StatusCode != 101 || resp.Header.Get("X-Edge") != "1" || resp.Header.Get("X-Foo") != "" || resp.Header.Get("Upgrade") != "foo/1" {
		t.Fatalf("101: %d %v", resp.StatusCode, resp.Header)
	}

	page := filepath.Join(t.TempDir(), "403.html")
	if err := os.WriteFile(page, []byte("<h1>not here</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "upstream's own 403")
	})
	addr2, _ := wsProxy(t, addrOf(srv), func(o *Options) {
		o.Routes[0].ErrorPages = map[int]string{403: page}
		o.Routes[0].InterceptErrors = true
	})
	resp2, body := rawResponse(t, addr2, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", "GET")
	if resp2.StatusCode != 403 || body != "<h1>not here</h1>" {
		t.Fatalf("intercepted refusal: %d %q", resp2.StatusCode, body)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// Upgrades follow the retry and passive-health rules of SPEC §4.
func TestUpgradeRetriesAndFailures(t *testing.T) {
	u := startWSUpstream(t)
	dead := closedAddr(t)
	addr, s := wsProxy(t, u.addr, func(o *Options) {
		uo := testUpstreamOptions(dead, u.addr)
		uo.MaxFails = 1
		o.Upstreams["up"] = uo
	})
	for i := 0; i < 3; i++ { // whichever server is picked first, the upgrade lands
		wc, _ := dialWS(t, addr, "/")
		wc.echo(t, websocket.MessageText, []byte("via the live server"))
		wc.c.Close(websocket.StatusNormalClosure, "")
	}
	var deadStatus ServerStatus
	for _, sv := range s.Snapshot().Upstreams[0].Servers {
		if sv.Addr == dead {
			deadStatus = sv
		}
	}
	if deadStatus.Failures == 0 || deadStatus.Up {
		t.Fatalf("refused server not taken out: %+v", deadStatus)
	}

	addr2, s2 := wsProxy(t, dead, nil)
	resp, _ := rawResponse(t, addr2, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", "GET")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("no server: %d", resp.StatusCode)
	}
	if n := s2.tunnels.reserved.Load(); n != 0 {
		t.Fatalf("a failed upgrade holds a tunnel slot: %d", n)
	}

	// An upstream that never answers: the route's timeout gives 504.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	addr3, _ := wsProxy(t, silent.Addr().String(), func(o *Options) { o.Routes[0].Timeout = 200 * time.Millisecond })
	start := time.Now()
	resp, _ = rawResponse(t, addr3, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", "GET")
	if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 3*time.Second {
		t.Fatalf("silent upstream: %d after %v", resp.StatusCode, time.Since(start))
	}
}

// wss: the client side of the tunnel is a tls.Conn under fasthttp's
// hijacked wrapper.
func TestUpgradeOverTLS(t *testing.T) {
	u := startWSUpstream(t)
	cert, key, pool := selfSignedCert(t)
	addr, s := wsProxy(t, u.addr, func(o *Options) { o.TLSCertFile, o.TLSKeyFile = cert, key })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c, _, err := websocket.Dial(ctx, "wss://"+addr+"/secure", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(4 << 20)
	msg := bytes.Repeat([]byte("tls"), 100000)
	if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo over wss: %d bytes, %v", len(got), err)
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close handshake over wss: %v", err)
	}
	if !waitFor(t, func() bool { return tunnelsOpen(s) == 0 }, 5*time.Second) {
		t.Fatal("wss tunnel still open after the close handshake")
	}
}

// Tunnels stay open while requests in flight drain, and are closed when
// the drain ends: here at Shutdown's deadline, a request never finishing.
func TestUpgradeTunnelsClosedWhenDrainEnds(t *testing.T) {
	u := startWSUpstream(t)
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slow := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	defer close(release)
	addr, s := wsProxy(t, u.addr, func(o *Options) {
		o.Upstreams["slow"] = testUpstreamOptions(addrOf(slow))
		o.Routes = append(o.Routes, RouteOptions{PathPrefix: "/slow", Upstream: "slow"})
	})
	wc, _ := dialWS(t, addr, "/")
	wc.echo(t, websocket.MessageText, []byte("before"))
	go func() {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			defer c.Close()
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			io.Copy(io.Discard, c)
		}
	}()
	<-arrived

	const drain = 600 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	// The listener closes first; the tunnel still carries messages then.
	if !waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 5*time.Second) {
		t.Fatal("listener still open after Shutdown began")
	}
	wc.echo(t, websocket.MessageText, []byte("during the drain"))
	if err := <-done; err == nil {
		t.Fatal("Shutdown reported a finished drain with a request still in flight")
	}
	if el := time.Since(start); el < drain {
		t.Fatalf("tunnels closed after %v, before the drain ended", el)
	}
	if m := wc.next(t); m.err == nil {
		t.Fatalf("tunnel open after the drain: %q", m.data)
	}
	if n := tunnelsOpen(s); n != 0 {
		t.Fatalf("open tunnels %d", n)
	}
}

// A tunnel is not a request: the server's read, write and keep-alive
// timeouts do not cut it, only upgrade_idle_timeout does.
func TestUpgradeOutlivesServerTimeouts(t *testing.T) {
	u := startWSUpstream(t)
	const short = 150 * time.Millisecond
	addr, _ := wsProxy(t, u.addr, func(o *Options) {
		o.ReadTimeout, o.WriteTimeout, o.IdleTimeout = short, short, short
	})
	wc, _ := dialWS(t, addr, "/")
	wc.echo(t, websocket.MessageText, []byte("first"))
	time.Sleep(4 * short) // quiet past every server timeout (the point of the test, not synchronisation)
	wc.echo(t, websocket.MessageBinary, bytes.Repeat([]byte{7}, 1<<20))
}

// After a binary upgrade the old process lets its tunnels run until they
// end (or the drain's deadline), while a SIGTERM closes them at once.
func TestHandoverLetsTunnelsFinish(t *testing.T) {
	u := startWSUpstream(t)
	addr, s := wsProxy(t, u.addr, nil)
	wc, _ := dialWS(t, addr, "/chat")
	wc.echo(t, websocket.MessageText, []byte("before"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Handover(ctx, nil) }()
	// The tunnel keeps carrying messages while the old process drains.
	for i := 0; i < 5; i++ {
		wc.echo(t, websocket.MessageText, []byte(fmt.Sprint("during ", i)))
	}
	select {
	case err := <-done:
		t.Fatalf("Handover returned (%v) while a tunnel was open", err)
	default:
	}
	wc.c.Close(websocket.StatusNormalClosure, "done")
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("Handover did not return after the last tunnel ended")
	}
	if el := time.Since(start); el > 8*time.Second {
		t.Fatalf("Handover took %v: it waited for its deadline, not for the tunnel", el)
	}
	if n := tunnelsOpen(s); n != 0 {
		t.Fatalf("%d tunnels open after Handover", n)
	}
}
