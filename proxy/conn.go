package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"
)

// dialError marks a failure to connect: nothing of the request was sent,
// so any method may be retried on another server.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dialer connects to upstream servers within connectTimeout and wraps each
// connection so that timeouts behave like nginx's proxy_*_timeout: between
// two reads or writes, not over the whole body.
type dialer struct {
	network        string      // "tcp" or "unix"
	tls            *tls.Config // https:// servers; nil for plain ones
	tlsName        string
	connectTimeout time.Duration
	// ioTimeout bounds each read or write once a response has started, and
	// each write of the request.
	ioTimeout time.Duration
	slack     time.Duration // see lazyDeadline
}

func (d *dialer) dial(addr string) (net.Conn, error) {
	return d.connect(addr, true)
}

// dialRaw connects as dial does but without the per-read timeouts, for
// a tunnel that keeps its own idle timer.
func (d *dialer) dialRaw(addr string) (net.Conn, error) {
	return d.connect(addr, false)
}

func (d *dialer) connect(addr string, timed bool) (net.Conn, error) {
	network := d.network
	if network == "" {
		network = "tcp"
	}
	start := time.Now()
	c, err := net.DialTimeout(network, addr, d.connectTimeout)
	if err != nil {
		return nil, &dialError{err: fmt.Errorf("%s: %w", addr, err)}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	conn := c
	if timed {
		tc := &timedConn{Conn: c, sock: socketIO(c), ioTimeout: d.ioTimeout, slack: d.slack}
		if tc.raw, _ = tc.sock.(*rawSocket); tc.raw != nil {
			tc.raw.held = true // see heldRead; Close ends it
		}
		conn = tc
	}
	if d.tls == nil {
		return conn, nil
	}
	// TLS is done here, not by fasthttp (HostClient.IsTLS), so requests
	// keep their origin-form target untouched: fasthttp's TLS mode wants an
	// https URI on every request, which would make it re-serialise them.
	cfg := d.tls.Clone()
	cfg.ServerName = d.tlsName
	tc := tls.Client(conn, cfg)
	_ = c.SetDeadline(start.Add(d.connectTimeout))
	if err := tc.Handshake(); err != nil {
		conn.Close() // the timed one: its reads may hold the socket (heldRead)
		return nil, &dialError{err: fmt.Errorf("%s: TLS handshake: %w", addr, err)}
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

// timedConn replaces fasthttp's absolute per-request deadlines, which would
// cut off any body that takes longer than the response timeout to stream.
// fasthttp sets a deadline before writing the request and before reading
// the response. timedConn keeps the time the response may take to start
// and counts it from the end of the request, then bounds every later read
// by ioTimeout, and every write after a request's first by ioTimeout. A
// small request and response (one write, one read) use fasthttp's own
// deadlines and never read the clock here. A connection serves one request
// at a time, so the fields need no lock.
type timedConn struct {
	net.Conn
	sock      io.ReadWriter // see socketIO
	raw       *rawSocket    // sock, when it is a TCP socket
	ioTimeout time.Duration
	slack     time.Duration

	readArmed, writeArmed lazyDeadline

	readDeadline  time.Time // asked for by fasthttp for this request
	writeDeadline time.Time
	firstWrite    time.Time // zero until a request writes twice
	lastWrite     time.Time
	writes        int  // writes of the current request
	started       bool // a response byte has arrived since the request
}

// Close may come from other goroutines than the reader's: fasthttp's
// client closes idle pooled connections from its cleaner, and interrupts
// a streaming body's Read by closing (rawSocket.closeConn).
func (c *timedConn) Close() error {
	if c.raw == nil {
		return c.Conn.Close()
	}
	return c.raw.closeConn(c.Conn.Close)
}

func (c *timedConn) SetDeadline(t time.Time) error {
	c.readDeadline, c.writeDeadline = t, t
	return nil
}

func (c *timedConn) SetReadDeadline(t time.Time) error {
	c.readDeadline = t
	return nil
}

func (c *timedConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline = t
	return nil
}

func (c *timedConn) Write(b []byte) (int, error) {
	var deadline time.Time
	if c.writes == 0 || c.started {
		// The first write of a request: fasthttp's deadline holds.
		c.writes, c.started = 0, false
		c.firstWrite, c.lastWrite = time.Time{}, time.Time{}
		deadline = c.writeDeadline
	} else {
		// A body spanning writes: each gets ioTimeout of its own.
		now := time.Now()
		if c.firstWrite.IsZero() {
			c.firstWrite = now
		}
		c.lastWrite = now
		deadline = now.Add(c.ioTimeout)
	}
	c.writes++
	if d, ok := c.writeArmed.update(deadline, c.slack); ok {
		if err := c.Conn.SetWriteDeadline(d); err != nil {
			return 0, err
		}
	}
	return c.sock.Write(b)
}

func (c *timedConn) Read(b []byte) (int, error) {
	var deadline time.Time
	switch {
	case c.started:
		// The response is streaming: each read gets ioTimeout.
		deadline = time.Now().Add(c.ioTimeout)
	case !c.lastWrite.IsZero() && !c.readDeadline.IsZero():
		// A long request body: the response may take as long to start,
		// counted from its end, as fasthttp allowed from its start.
		deadline = c.lastWrite.Add(c.readDeadline.Sub(c.firstWrite))
	default:
		deadline = c.readDeadline
	}
	if d, ok := c.readArmed.update(deadline, c.slack); ok {
		if err := c.Conn.SetReadDeadline(d); err != nil {
			return 0, err
		}
	}
	if c.raw != nil {
		c.raw.waitIfDrained = !c.started // see heldRead
	}
	n, err := c.sock.Read(b)
	if n > 0 {
		c.started = true
	}
	return n, err
}
