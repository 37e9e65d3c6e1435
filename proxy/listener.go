package proxy

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// lazyListener wraps client connections so that the three deadlines
// fasthttp sets on each request (idle, read, write) are armed lazily
// (see lazyDeadline), and only before the socket is used: a request that
// arrives whole in the read that waited for it never arms the read
// timeout fasthttp sets after its first byte.
type lazyListener struct {
	net.Listener
	slack time.Duration
	// guard: request heads are checked here (plain HTTP); under TLS the
	// bytes here are cipher text and guardedListener checks above TLS.
	guard bool
	// table counts connections for max_conns and parks idle plain ones
	// (park.go); nil: neither.
	table *connTable
}

func (l *lazyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cc := &clientConn{Conn: c, sock: socketIO(c), slack: l.slack, table: l.table}
		cc.raw, _ = cc.sock.(*rawSocket)
		if l.guard {
			cc.guard = newHeadGuard()
		}
		if l.table == nil {
			return cc, nil
		}
		// Under TLS the socket's bytes are records the TLS layer may have
		// read ahead: only plain connections park.
		if cc.raw != nil && l.guard && l.table.poll != nil {
			cc.parkable = true
			cc.park.phase.Store(phaseWaiting) // for its first request
		}
		if l.table.admit(cc) {
			return cc, nil
		}
	}
}

// clientConn is read, written and given deadlines by one goroutine at a
// time, fasthttp's connection loop (Shutdown only closes it; TLS sets its
// closing write deadline under its own write lock), so it needs no lock.
type clientConn struct {
	net.Conn
	sock                  io.ReadWriter // see socketIO
	slack                 time.Duration
	readWant, writeWant   time.Time
	readArmed, writeArmed lazyDeadline
	guard                 headGuard // see headguard.go; zero: off

	table    *connTable
	raw      *rawSocket // sock, when it is a TCP socket
	parkable bool
	park     parkState
	// watching: the poll set watches the socket for its peer's close;
	// closeLater: a close from another goroutine shut the socket down
	// under a held Read (peerclose.go).
	watching   bool
	closeLater atomic.Bool
	tunnel     bool // upgraded: a tunnel reads it plainly
}

func (c *clientConn) SetDeadline(t time.Time) error {
	c.guard.deadline(t)
	c.readWant, c.writeWant = t, t
	return nil
}

func (c *clientConn) SetReadDeadline(t time.Time) error {
	c.guard.readDeadline(t)
	c.readWant = t
	return nil
}

func (c *clientConn) SetWriteDeadline(t time.Time) error {
	c.writeWant = t
	return nil
}

func (c *clientConn) Read(p []byte) (int, error) {
	if err := c.guard.failure(); err != nil {
		return 0, err
	}
	crowded := c.parkable && c.table.crowded()
	if c.parkable && !c.tunnel {
		// From the wait after a connection's second answer on: one that
		// makes a request and then idles never has a coroutine to drop.
		c.holdReads(c.park.waits.Load() >= 2 && !crowded)
	}
	if crowded && c.park.phase.Load() == phaseWaiting {
		// Many connections are open: an idle one parks as soon as its
		// next request is not there yet, rather than after a sweep.
		n, err := c.raw.tryRead(p)
		if err != errWouldBlock {
			return c.guard.check(p, n, err)
		}
		if c.leaveToPark() {
			return 0, io.EOF
		}
	}
	if d, ok := c.readArmed.update(c.readWant, c.slack); ok {
		if err := c.Conn.SetReadDeadline(d); err != nil {
			return 0, err
		}
		// The deadline just armed may have replaced the sweeper's waking
		// one (park.go).
		if c.parkable && c.park.phase.Load() == phaseKicked && c.leaveToPark() {
			return 0, io.EOF
		}
	}
	n, err := c.readSocket(p)
	if c.parkable && n == 0 && c.waitEnded(err) {
		return 0, io.EOF // fasthttp lets the connection go; Close parks it
	}
	return c.guard.check(p, n, err)
}

func (c *clientConn) Close() error { return c.closeOrPark() }

func (c *clientConn) Write(p []byte) (int, error) {
	c.guard.wrote()
	if d, ok := c.writeArmed.update(c.writeWant, c.slack); ok {
		if err := c.Conn.SetWriteDeadline(d); err != nil {
			return 0, err
		}
	}
	return c.sock.Write(p)
}
