package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// parkingProxy answers "ok" at / and sweeps idle connections every every.
func parkingProxy(t *testing.T, every time.Duration, edit func(*Options)) (string, *Server) {
	t.Helper()
	o := testOptions()
	o.ParkIdleAfter = every
	o.Routes = []RouteOptions{{PathPrefix: "/", Return: 200, Body: "ok"}}
	if edit != nil {
		edit(&o)
	}
	return startProxy(t, o)
}

// keepAliveClient is one client connection sending requests in turn.
type keepAliveClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAliveClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAliveClient{c: c, br: bufio.NewReader(c)}
}

func (k *keepAliveClient) get(t *testing.T, path string) (int, string) {
	t.Helper()
	_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(k.c, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	return k.read(t, "GET "+path)
}

// read reads the next answer; what names it in a failure.
func (k *keepAliveClient) read(t *testing.T, what string) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// answers reads one answer for each body in want, in order, and checks
// its body.
func (k *keepAliveClient) answers(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if _, body := k.read(t, w); body != w {
			t.Fatalf("got %q, want %q", body, w)
		}
	}
}

func parkedConns(s *Server) int64 { return s.conns.parkedConns() }

// TestIdleConnectionParksAndResumes: a keep-alive connection left idle is
// parked, and its next requests (one whole, one arriving in pieces) are
// answered on the same connection.
func TestIdleConnectionParksAndResumes(t *testing.T) {
	addr, s := parkingProxy(t, 20*time.Millisecond, nil)
	k := dialKeepAlive(t, addr)
	for round := range 3 {
		if code, body := k.get(t, "/"); code != 200 || body != "ok" {
			t.Fatalf("round %d: %d %q", round, code, body)
		}
		if !waitFor(t, func() bool { return parkedConns(s) == 1 }, 5*time.Second) {
			t.Fatalf("round %d: the idle connection was not parked", round)
		}
	}
	// A request whose head arrives in two pieces across the resume.
	_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(k.c, "GET /split HTTP/1.1\r\nHo")
	if !waitFor(t, func() bool { return parkedConns(s) == 0 }, 5*time.Second) {
		t.Fatal("the connection was not resumed by its first byte")
	}
	io.WriteString(k.c, "st: h\r\n\r\n")
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("split request after resume: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := s.conns.open.Load(); n != 1 {
		t.Errorf("%d connections counted open, want 1", n)
	}
}

// TestCrowdedConnectionsParkAtOnce: above ParkAtOnceAbove open
// connections, a connection parks as soon as its next request is not
// there, long before a sweep, and every request on it is still answered.
func TestCrowdedConnectionsParkAtOnce(t *testing.T) {
	addr, s := parkingProxy(t, time.Hour, func(o *Options) { o.ParkAtOnceAbove = -1 })
	k := dialKeepAlive(t, addr)
	for i := range 20 {
		if code, body := k.get(t, "/"); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		if !waitFor(t, func() bool { return parkedConns(s) == 1 }, 5*time.Second) {
			t.Fatalf("request %d: not parked without a sweep", i)
		}
	}
}

// TestBusyConnectionDoesNotPark: a connection sending requests back to
// back is never parked, however many sweeps pass.
func TestBusyConnectionDoesNotPark(t *testing.T) {
	addr, s := parkingProxy(t, 100*time.Millisecond, nil)
	k := dialKeepAlive(t, addr)
	deadline := time.Now().Add(600 * time.Millisecond) // six sweeps
	for n := 0; time.Now().Before(deadline); n++ {
		if code, _ := k.get(t, "/"); code != 200 {
			t.Fatalf("request %d: %d", n, code)
		}
		if parkedConns(s) != 0 {
			t.Fatalf("request %d: a busy connection was parked", n)
		}
	}
}

// TestParkedConnectionIdleTimeout: a parked connection is closed once
// idle_timeout passes, as one held by fasthttp is.
func TestParkedConnectionIdleTimeout(t *testing.T) {
	addr, s := parkingProxy(t, 20*time.Millisecond, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
	k := dialKeepAlive(t, addr)
	k.get(t, "/")
	start := time.Now()
	_ = k.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := k.br.ReadByte(); err != io.EOF {
		t.Fatalf("read %v %v, want EOF (closed by the idle timeout)", n, err)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 2500*time.Millisecond {
		t.Errorf("closed after %v, want idle_timeout 300ms (+ up to 1s of the poll loop)", took)
	}
	if !waitFor(t, func() bool { return s.conns.open.Load() == 0 && parkedConns(s) == 0 }, 5*time.Second) {
		t.Errorf("open %d, parked %d after the close", s.conns.open.Load(), parkedConns(s))
	}
}

// TestParkedConnectionsCountTowardsMaxConns: max_conns bounds the open
// connections, parked ones included; one more is refused with 503.
func TestParkedConnectionsCountTowardsMaxConns(t *testing.T) {
	addr, s := parkingProxy(t, 20*time.Millisecond, func(o *Options) { o.MaxConns = 2 })
	for range 2 {
		dialKeepAlive(t, addr).get(t, "/")
	}
	if !waitFor(t, func() bool { return parkedConns(s) == 2 }, 5*time.Second) {
		t.Fatalf("parked %d, want 2", parkedConns(s))
	}
	out := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 503 ") {
		t.Fatalf("third connection: %q, want 503", out)
	}
}

// TestShutdownClosesParkedConnections: Shutdown closes parked connections
// at once instead of waiting for their idle timeout.
func TestShutdownClosesParkedConnections(t *testing.T) {
	addr, s := parkingProxy(t, 20*time.Millisecond, nil)
	k := dialKeepAlive(t, addr)
	k.get(t, "/")
	if !waitFor(t, func() bool { return parkedConns(s) == 1 }, 5*time.Second) {
		t.Fatal("not parked")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("shutdown took %v", took)
	}
	_ = k.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := k.br.ReadByte(); err != io.EOF {
		t.Errorf("parked connection after shutdown: %v, want EOF", err)
	}
}

// TestParkingOff: a negative ParkIdleAfter keeps idle connections with
// fasthttp.
func TestParkingOff(t *testing.T) {
	addr, s := parkingProxy(t, -1, nil)
	k := dialKeepAlive(t, addr)
	k.get(t, "/")
	if s.conns.poll != nil || s.srv.ConnState != nil {
		t.Fatal("parking is on")
	}
	if code, _ := k.get(t, "/"); code != 200 {
		t.Fatal(code)
	}
}

// TestLateKickIsUndone: when the sweeper wakes a wait whose request has
// just begun, the request's read deadline is put back and the request
// is served; a kick that wins parks the connection with no deadline left
// armed.
func TestLateKickIsUndone(t *testing.T) {
	client, sc := tcpPair(t)
	table := newConnTable(0, 0, DefaultParkAtOnceAbove, nil, nil)
	c := &clientConn{Conn: sc, sock: socketIO(sc), table: table, parkable: true}
	c.raw, _ = c.sock.(*rawSocket)
	kick := func() {
		c.park.kickMu.Lock()
		if !c.park.phase.CompareAndSwap(phaseWaiting, phaseKicked) {
			t.Fatal("not waiting")
		}
		_ = c.Conn.SetReadDeadline(aLongTimeAgo)
		c.park.kickMu.Unlock()
	}

	// The first byte came, then the kick, then fasthttp's StateActive.
	c.park.phase.Store(phaseWaiting)
	kick()
	c.activated()
	if p := c.park.phase.Load(); p != phaseBusy {
		t.Fatalf("phase %d after activated, want busy", p)
	}
	io.WriteString(client, "x")
	buf := make([]byte, 8)
	if n, err := c.Read(buf); n != 1 || err != nil {
		t.Fatalf("read after an undone kick: %d %v", n, err)
	}

	// The kick wins: the wait answers EOF, and the next read (after the
	// resume) does not trip over the waking deadline.
	c.readWant = time.Now().Add(time.Minute)
	c.park.phase.Store(phaseWaiting)
	kick()
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("kicked wait: %d %v, want EOF", n, err)
	}
	if p := c.park.phase.Load(); p != phaseParking {
		t.Fatalf("phase %d, want parking", p)
	}
	if !c.park.until.Equal(c.readWant) {
		t.Errorf("parked until %v, want the wait's deadline %v", c.park.until, c.readWant)
	}
	c.park.phase.Store(phaseBusy) // as resume leaves it once fasthttp reads
	io.WriteString(client, "y")
	if n, err := c.Read(buf); n != 1 || err != nil {
		t.Fatalf("read after parking: %d %v", n, err)
	}
}
