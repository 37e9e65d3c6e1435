package proxy

import (
	"errors"
	"os"
)

// Held reads on client connections.
//
// fasthttp asks for the next request right after writing an answer, when
// it cannot be there yet: a plain read finds nothing (a system call of
// about 2 µs on these machines) before the poller waits. A parkable
// connection's socket reads in a held coroutine (rawsocket.go heldRead),
// so after a short read, which emptied the socket, the wait for the next
// request waits for the poller at once, as nginx waits for epoll after a
// short recv.
//
// The hazard: that short read may have taken a request's last bytes with
// a FIN behind them, under one readiness. A read after it would answer EOF
// at once; a wait waits for good, since Go's poller passes on no
// EPOLLRDHUP. A client that half-closes after its last request and waits
// for the close (nc -N, raw-socket test suites) would hang. So while a
// connection waits so, the parking poll set watches its socket for the
// peer's close (EPOLLRDHUP, one report, armed once per connection and
// again only after a report): a report sets peerClosed and, if the
// connection waits, wakes it with a past deadline, as the sweeper does;
// the connection then reads, which answers EOF if the peer did close. A
// report that came while the connection was busy makes its next wait read
// first. Either costs nothing per request.

// holdReads turns held reads on or off. A coroutine that a connection
// drops when it parks leaves its goroutine and stack behind as garbage:
// 0.3 KiB more RSS per idle connection at 10,000 when each held one. So a
// connection holds its reads only from the wait after its second answer
// on, and not while many connections are open (an idle one then parks at
// its first read that finds nothing: a wait never skips a read).
func (c *clientConn) holdReads(on bool) {
	if c.raw.held == on || !on && !c.raw.release() {
		return
	}
	c.raw.held = on
}

// beginDrainedWait reports whether c may wait for its next request
// without reading first: the poll set watches for its peer's close, and
// no report of one is pending.
func (c *clientConn) beginDrainedWait() bool {
	if !c.watching {
		if !c.table.watch(c) {
			return false
		}
		c.watching = true
	}
	c.park.kickMu.Lock()
	defer c.park.kickMu.Unlock()
	if c.park.peerClosed {
		c.park.peerClosed = false
		c.watching = false // the report disarmed the watch
		return false
	}
	c.park.drainedWait = true
	return true
}

// endDrainedWait ends the wait beginDrainedWait allowed, and reports
// whether a report of the peer's close came meanwhile. Its waking deadline
// is replaced by the one c wants, unless the sweeper's came too (park.go).
func (c *clientConn) endDrainedWait() bool {
	c.park.kickMu.Lock()
	defer c.park.kickMu.Unlock()
	c.park.drainedWait = false
	if !c.park.peerClosed {
		return false
	}
	c.park.peerClosed = false
	c.watching = false
	if c.park.phase.Load() != phaseKicked {
		_ = c.Conn.SetReadDeadline(c.readArmed.armed)
	}
	return true
}

// peerMayHaveClosed is the poll set's report of c's peer closing (or, for
// a descriptor just reused, a report meant for the socket before it).
func (c *clientConn) peerMayHaveClosed() {
	c.park.kickMu.Lock()
	defer c.park.kickMu.Unlock()
	c.park.peerClosed = true
	if c.park.drainedWait {
		_ = c.Conn.SetReadDeadline(aLongTimeAgo)
	}
}

// readSocket reads c's socket. A held socket that the last read emptied
// waits for the next request without reading first where it may.
func (c *clientConn) readSocket(p []byte) (int, error) {
	if c.raw == nil || !c.raw.held || !c.raw.drained || !c.beginDrainedWait() {
		return c.sock.Read(p)
	}
	c.raw.waitIfDrained = true
	n, err := c.sock.Read(p)
	c.raw.waitIfDrained = false
	if c.endDrainedWait() && n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		// Woken by the report, not by a timeout: a read tells.
		return c.sock.Read(p)
	}
	return n, err
}

// closeSocket closes c's socket. Under a held Read in another goroutine
// (fasthttp's shutdown closes idle connections so) it shuts the socket
// down instead: closing would wait for the reader's hold on the
// descriptor while fasthttp holds its lock of idle connections, which the
// reader may need before it reads again. The reader sees the end, and its
// fasthttp loop closes c again (closeOrPark), which closes the socket.
func (c *clientConn) closeSocket() error {
	if c.raw == nil {
		return c.Conn.Close()
	}
	if closed, err := c.raw.closeUnlessHeld(c.Conn.Close); closed {
		return err
	}
	c.closeLater.Store(true)
	return c.raw.shutdown()
}

// watch asks the poll set to report c's peer closing; c's goroutine only.
func (t *connTable) watch(c *clientConn) bool {
	if c.learnFd() != nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	if err := t.poll.watchClose(c.park.fd, !c.park.inSet); err != nil {
		return false
	}
	c.park.inSet = true
	t.watched[c.park.fd] = c
	return true
}

// unwatchLocked forgets c's watch; under t.mu. Its registration stays in
// the poll set until the socket closes or parks; a report that still
// comes finds no connection.
func (t *connTable) unwatchLocked(c *clientConn) {
	if c.park.inSet && t.watched[c.park.fd] == c {
		delete(t.watched, c.park.fd)
	}
}
