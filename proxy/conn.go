package proxy

import (
	"fmt"
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
	connectTimeout time.Duration
	// ioTimeout bounds each read or write once a response has started, and
	// each write of the request.
	ioTimeout time.Duration
}

func (d *dialer) dial(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, d.connectTimeout)
	if err != nil {
		return nil, &dialError{err: fmt.Errorf("%s: %w", addr, err)}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &timedConn{Conn: c, ioTimeout: d.ioTimeout}, nil
}

// timedConn replaces fasthttp's absolute per-request deadlines, which would
// cut off any body that takes longer than the response timeout to stream.
// fasthttp sets a deadline before writing the request and before reading
// the response; timedConn keeps the time the response may take to start
// (deadline minus first write) and counts it from the last byte of the
// request, then bounds every later read by ioTimeout. A connection serves
// one request at a time, so the fields need no lock.
type timedConn struct {
	net.Conn
	ioTimeout time.Duration

	readDeadline time.Time // asked for by fasthttp for this request
	firstWrite   time.Time
	lastWrite    time.Time
	writing      bool // the last operation was a write: a request is going out
	started      bool // a response byte has arrived since the request
}

func (c *timedConn) SetDeadline(t time.Time) error {
	c.readDeadline = t
	return nil
}

func (c *timedConn) SetReadDeadline(t time.Time) error {
	c.readDeadline = t
	return nil
}

// SetWriteDeadline is ignored: every write gets ioTimeout of its own.
func (c *timedConn) SetWriteDeadline(time.Time) error { return nil }

func (c *timedConn) Write(b []byte) (int, error) {
	now := time.Now()
	if !c.writing {
		c.writing, c.started = true, false
		c.firstWrite = now
	}
	c.lastWrite = now
	if err := c.Conn.SetWriteDeadline(now.Add(c.ioTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *timedConn) Read(b []byte) (int, error) {
	var deadline time.Time
	if !c.started && !c.readDeadline.IsZero() && !c.firstWrite.IsZero() {
		// Waiting for the response to start: the request's own timeout,
		// counted from when it was fully sent.
		deadline = c.lastWrite.Add(c.readDeadline.Sub(c.firstWrite))
	} else {
		deadline = time.Now().Add(c.ioTimeout)
	}
	c.writing = false
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.started = true
	}
	return n, err
}
