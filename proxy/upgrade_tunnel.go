package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// tunnelBufferSize is each direction's copy buffer: nginx copies upgraded
// connections through one proxy_buffer_size (4k|8k) buffer a direction.
const tunnelBufferSize = 8 << 10

// tunnelSet holds the open tunnels of a Server: the cap, the counters
// for metrics and /status, and the drain at shutdown. Tunnels belong to the
// Server, not to a state, so they outlive reloads. Safe for concurrent use.
type tunnelSet struct {
	reserved atomic.Int64 // tunnels open or being opened, for the cap
	open     atomic.Int64
	opened   atomic.Uint64 // ever
	toUp     atomic.Uint64 // bytes client → upstream, all tunnels
	toClient atomic.Uint64 // bytes upstream → client

	buffers bufferPool[[tunnelBufferSize]byte]

	mu     sync.Mutex // guards set, closed
	set    map[*tunnel]struct{}
	closed bool
	wg     sync.WaitGroup // one per tunnel in set
}

// reserve takes a slot under max (≤ 0: no cap).
func (ts *tunnelSet) reserve(max int) bool {
	if n := ts.reserved.Add(1); max > 0 && n > int64(max) {
		ts.reserved.Add(-1)
		return false
	}
	return true
}

func (ts *tunnelSet) unreserve() { ts.reserved.Add(-1) }

func (ts *tunnelSet) newTunnel(s *Server, ex *exchange, up net.Conn, upR *bufio.Reader, idle time.Duration) *tunnel {
	return &tunnel{s: s, ts: ts, ex: ex, up: up, upR: upR, idle: idle, born: time.Now()}
}

// add registers t and starts its idle clock; false once shutdown began.
func (ts *tunnelSet) add(t *tunnel) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	if ts.set == nil {
		ts.set = map[*tunnel]struct{}{}
	}
	ts.set[t] = struct{}{}
	ts.wg.Add(1)
	ts.open.Add(1)
	ts.opened.Add(1)
	if t.idle > 0 {
		// Made far off, then armed: checkIdle may read t.timer at once.
		t.timer = time.AfterFunc(time.Duration(1<<62), t.checkIdle)
		t.timer.Reset(t.idle)
	}
	return true
}

// remove deregisters t; called once per tunnel added.
func (ts *tunnelSet) remove(t *tunnel) {
	ts.mu.Lock()
	delete(ts.set, t)
	ts.mu.Unlock()
	ts.open.Add(-1)
	ts.reserved.Add(-1)
	ts.wg.Done()
}

// closeAll closes every tunnel, refuses new ones, and waits until each has
// ended and written its access-log line.
func (ts *tunnelSet) closeAll() {
	ts.mu.Lock()
	ts.closed = true
	all := make([]*tunnel, 0, len(ts.set))
	for t := range ts.set {
		all = append(all, t)
	}
	ts.mu.Unlock()
	for _, t := range all {
		t.shut("closed by shutdown")
	}
	ts.wg.Wait()
}

// waitEmpty returns once no tunnel is open or ctx ends. It polls: tunnels
// may still be added meanwhile (connections in flight can upgrade until
// they are drained), which a WaitGroup's Wait must not race with.
func (ts *tunnelSet) waitEmpty(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for ts.open.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (ts *tunnelSet) status() TunnelStatus {
	return TunnelStatus{Open: ts.open.Load(), Opened: ts.opened.Load(),
		BytesToUpstream: ts.toUp.Load(), BytesToClient: ts.toClient.Load()}
}

// tunnel is one upgraded connection pair. It is run by fasthttp's hijack
// goroutine, which copies client → upstream while a second goroutine
// copies upstream → client. The idle timer and shutdown may close it from
// other goroutines.
type tunnel struct {
	s   *Server
	ts  *tunnelSet
	ex  *exchange
	up  net.Conn
	upR *bufio.Reader // up's reader: bytes the upstream sent after its 101 wait here

	upgradeFields []byte // "Upgrade: …" and "Connection: upgrade" lines for the 101

	idle  time.Duration
	born  time.Time
	timer *time.Timer
	last  atomic.Int64 // nanoseconds since born of the last byte either way

	toUp, toClient atomic.Int64

	// claimed: whoever sets it ends the tunnel, run when it starts, else
	// the idle timer or shutdown.
	claimed atomic.Bool

	mu     sync.Mutex // guards client, closed, reason
	client net.Conn   // the connection under the hijacked one, once run starts
	closed bool
	reason string
}

// run is the hijack handler: it writes the 101, copies both ways until
// both directions end, and finishes the exchange. ctx is still the
// request's (fasthttp releases it after run returns); its response holds
// the 101's fields as the route's response steps left them.
func (t *tunnel) run(ctx *fasthttp.RequestCtx, c net.Conn) {
	if !t.claimed.CompareAndSwap(false, true) {
		return // shut before it started
	}
	if cc := clientConnOf(c); cc != nil {
		cc.upgraded() // a tunnel is not counted towards max_conns
	}
	t.mu.Lock()
	t.client = rawConn(c) // c itself goes back to fasthttp's pool after run
	closed := t.closed
	t.mu.Unlock()
	if closed { // shut between the claim and now
		t.end()
		return
	}
	head := appendClientHead(t.ex.scratch[:0], &ctx.Response.Header, t.upgradeFields)
	t.ex.scratch = head
	if _, err := c.Write(head); err != nil {
		t.shut("writing 101: " + err.Error())
		t.end()
		return
	}
	done := make(chan struct{})
	go func() {
		t.pipe(c, t.upR, &t.toClient, &t.ts.toClient)
		close(done)
	}()
	t.pipe(t.up, c, &t.toUp, &t.ts.toUp)
	<-done
	t.end()
}

// pipe copies src to dst until src ends. A clean end (EOF) is passed on
// as a half-close, so the peer still may answer; an error ends the tunnel.
func (t *tunnel) pipe(dst net.Conn, src io.Reader, n *atomic.Int64, total *atomic.Uint64) {
	buf := t.ts.buffers.get()
	defer t.ts.buffers.put(buf)
	for {
		nr, err := src.Read(buf[:])
		if nr > 0 {
			t.last.Store(int64(time.Since(t.born)))
			nw, werr := dst.Write(buf[:nr])
			n.Add(int64(nw))
			total.Add(uint64(nw))
			if werr != nil {
				t.shut("")
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && closeWrite(dst) == nil {
				return
			}
			t.shut("")
			return
		}
	}
}

// checkIdle runs on the idle timer: it closes the tunnel when no byte
// moved either way for idle, else re-arms for the rest.
func (t *tunnel) checkIdle() {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return
	}
	quiet := time.Since(t.born) - time.Duration(t.last.Load())
	if quiet < t.idle {
		t.timer.Reset(t.idle - quiet)
		return
	}
	t.shut("upgrade_idle_timeout")
}

// shut closes both connections; the copies end on their own. When run
// has not started (and so never will own the tunnel), it is ended here
// without an access-log line: the exchange may still be in its handler.
func (t *tunnel) shut(reason string) {
	t.mu.Lock()
	if t.reason == "" {
		t.reason = reason
	}
	t.mu.Unlock()
	t.closeConns()
	if t.claimed.CompareAndSwap(false, true) {
		t.stopTimer()
		t.ts.remove(t)
	}
}

func (t *tunnel) closeConns() {
	t.mu.Lock()
	t.closed = true
	c := t.client
	t.mu.Unlock()
	_ = t.up.Close()
	if c != nil {
		_ = c.Close()
	}
}

func (t *tunnel) stopTimer() {
	if t.timer != nil {
		t.timer.Stop()
	}
}

// end closes what is left, deregisters the tunnel and logs it: status
// 101, bytes each way, the whole tunnel's duration.
func (t *tunnel) end() {
	t.closeConns()
	t.stopTimer()
	ex := t.ex
	ex.status = fasthttp.StatusSwitchingProtocols
	ex.bytesIn = t.toUp.Load()
	ex.bytesOut = t.toClient.Load()
	t.mu.Lock()
	if t.reason != "" && ex.cause == "" {
		ex.cause = t.reason
	}
	t.mu.Unlock()
	t.s.finish(ex)
	t.ts.remove(t)
}

// rawConn is the connection under fasthttp's hijacked wrapper, whose
// Close does nothing while the hijack handler runs.
func rawConn(c net.Conn) net.Conn {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return c
}

// clientConnOf finds the client connection under c's wrappers (fasthttp's
// hijack, TLS), or nil.
func clientConnOf(c net.Conn) *clientConn {
	for {
		switch v := c.(type) {
		case *clientConn:
			return v
		case interface{ UnsafeConn() net.Conn }:
			c = v.UnsafeConn()
		case *guardedTLSConn:
			c = v.Conn.NetConn()
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// closeWrite half-closes c (TCP FIN, or TLS close_notify), so the peer
// reads EOF and may still answer.
func closeWrite(c net.Conn) error {
	for {
		switch v := c.(type) {
		case interface{ CloseWrite() error }:
			return v.CloseWrite()
		case interface{ UnsafeConn() net.Conn }:
			c = v.UnsafeConn()
		case *clientConn:
			c = v.Conn
		default:
			return errors.ErrUnsupported
		}
	}
}
