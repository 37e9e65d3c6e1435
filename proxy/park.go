package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Parking idle client connections.
//
// fasthttp serves a connection with one goroutine that blocks reading the
// next request, and with StreamRequestBody it keeps the connection's read
// buffer and request context while it waits. An idle keep-alive
// connection so held a grown goroutine stack (8 KiB), a read buffer of
// max_header_bytes and a RequestCtx: 17 KiB of RSS each at 10,000
// connections, where nginx, which keeps a waiting connection as an entry
// in its epoll set, needs 0.6 KiB.
//
// A connection that waits longer than a sweep period now leaves fasthttp:
// the sweeper wakes its read with a past deadline, the read answers
// io.EOF, fasthttp ends the connection's loop as for a client that closed
// (releasing buffers, context and goroutine), and Close hands the socket
// to the connTable instead of closing it. The table waits for the next
// byte of every parked socket with one epoll set (park_linux.go) and then
// serves the socket again with ServeConn on a new goroutine. fasthttp's
// loop only reads at a request's start while the connection is idle, and
// has flushed the last response by then (ReduceMemoryUsage), so nothing
// of the connection is lost on the way.
//
// A busy connection never parks: between two requests it is marked
// waiting and counted (a few uncontended atomic operations), and only one
// the sweeper finds waiting with the same count on two sweeps in a row is
// woken. With more than ParkAtOnceAbove connections open, an idle one
// parks at its first read that finds no bytes instead, so that a crowd
// of idle connections never holds a goroutine each, even for a second.

// Connection phases. waiting → kicked → parking → parked is the way out
// of fasthttp and back; closed is final.
const (
	phaseBusy    int32 = iota // served by fasthttp, not waiting between requests
	phaseWaiting              // fasthttp waits for the next request's first byte
	phaseKicked               // the sweeper woke that wait to park the connection
	phaseParking              // the wait answered io.EOF; Close parks it
	phaseParked               // in the table's poll set, no goroutine
	phaseClosed
)

// parkState is a client connection's part in parking.
type parkState struct {
	phase atomic.Int32
	// waits counts waits between requests; the sweeper parks a
	// connection it sees waiting with the same count twice.
	waits    atomic.Uint32
	lastSeen uint32 // the count the last sweep saw; only the sweeper uses it
	// kickMu is held by the sweeper and the poll loop while they arm a
	// waking deadline, so the connection's goroutine can tell when they
	// are done. Under it: drainedWait, a held Read waits without having
	// read first; peerClosed, the poll set reported the peer's close
	// (peerclose.go).
	kickMu                  sync.Mutex
	drainedWait, peerClosed bool
	// until is when a parked connection is closed: the read deadline
	// fasthttp had set for the wait (idle or first-byte timeout).
	until time.Time
	// inSet: the socket, whose descriptor is fd, is in the poll set (it
	// stays there, disarmed or watched for its peer's close, while
	// fasthttp serves it, and leaves it when closed).
	inSet bool
	fd    int
}

// connTable holds every client connection from accept to close: it
// refuses those over max_conns and parks the idle ones.
type connTable struct {
	max   int
	every time.Duration // sweep period; 0: parking off
	// atOnceAbove: with more connections open, an idle one parks at its
	// first read that finds no bytes (clientConn.Read). Below it, the
	// connections of busy clients, which send their next request a round
	// trip after the last response, keep their goroutine and pay nothing.
	atOnceAbove int64
	serve       func(net.Conn) error
	log         *zap.Logger

	mu      sync.Mutex
	conns   map[*clientConn]struct{}
	parked  map[int]*clientConn // by file descriptor
	watched map[int]*clientConn // served, watched for the peer's close (peerclose.go)
	started bool
	stopped bool
	open    atomic.Int64
	poll    *pollSet // nil: parking is off (or not supported here); set by start

	work      chan *clientConn // resumed connections for idle workers
	resumed   sync.WaitGroup   // ServeConn calls of resumed connections
	done      chan struct{}    // closed by stop
	loopsDone sync.WaitGroup
}

func newConnTable(max int, every time.Duration, atOnceAbove int, serve func(net.Conn) error, log *zap.Logger) *connTable {
	return &connTable{max: max, every: every, atOnceAbove: int64(atOnceAbove), serve: serve, log: log,
		conns: map[*clientConn]struct{}{}, parked: map[int]*clientConn{}, watched: map[int]*clientConn{}, done: make(chan struct{}), work: make(chan *clientConn)}
}

func (t *connTable) crowded() bool { return t.open.Load() > t.atOnceAbove }

// parkedConns is how many connections wait in the poll set.
func (t *connTable) parkedConns() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int64(len(t.parked))
}

// start opens the poll set and runs the sweeper and the poll loop, once,
// before the first connection is accepted.
func (t *connTable) start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.every <= 0 || t.started || t.stopped {
		return
	}
	t.started = true
	p, err := newPollSet()
	if err != nil {
		t.log.Warn("idle connections are not parked", zap.Error(err))
		return
	}
	t.poll = p
	t.loopsDone.Add(2)
	go t.sweepLoop()
	go t.pollLoop()
}

// admit registers c, or answers 503 and closes it when max_conns
// connections are open.
func (t *connTable) admit(c *clientConn) bool {
	t.mu.Lock()
	if t.max > 0 && len(t.conns) >= t.max {
		t.mu.Unlock()
		refuseConn(c.Conn)
		return false
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	t.open.Add(1)
	return true
}

func (t *connTable) remove(c *clientConn) {
	t.mu.Lock()
	_, ok := t.conns[c]
	delete(t.conns, c)
	t.unwatchLocked(c)
	t.mu.Unlock()
	if ok {
		t.open.Add(-1)
	}
}

// refuseConn is fasthttp's answer to a connection over its Concurrency,
// given here because parked connections count towards max_conns too.
func refuseConn(c net.Conn) {
	const msg = "The connection cannot be served because max_conns connections are open"
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nServer: edgeproxy\r\nContent-Type: text/plain\r\nContent-Length: "+
		strconv.Itoa(len(msg))+"\r\nConnection: close\r\n\r\n"+msg)
	_ = c.Close()
}

// sweepLoop wakes the connections waiting since the last sweep.
func (t *connTable) sweepLoop() {
	defer t.loopsDone.Done()
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	var kick []*clientConn
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
		kick = kick[:0]
		t.mu.Lock()
		for c := range t.conns {
			if !c.parkable || c.park.phase.Load() != phaseWaiting {
				continue
			}
			if w := c.park.waits.Load(); w != c.park.lastSeen {
				c.park.lastSeen = w
				continue
			}
			kick = append(kick, c)
		}
		t.mu.Unlock()
		for _, c := range kick {
			c.park.kickMu.Lock()
			if c.park.phase.CompareAndSwap(phaseWaiting, phaseKicked) {
				_ = c.Conn.SetReadDeadline(aLongTimeAgo)
			}
			c.park.kickMu.Unlock()
		}
		clear(kick)
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// park takes c from fasthttp into the poll set; called by c.Close.
func (t *connTable) park(c *clientConn) {
	var err error
	if !c.raw.release() { // a parked socket keeps no coroutine
		err = errReadUnderWay // only fasthttp's own Close parks, between Reads
	}
	c.watching = false // parking's registration replaces the watch
	if err == nil {
		err = c.learnFd()
	}
	t.mu.Lock()
	if err == nil && t.stopped {
		err = errStopped
	}
	if err == nil {
		t.unwatchLocked(c)
		t.parked[c.park.fd] = c
		if err = t.poll.arm(c.park.fd, !c.park.inSet); err != nil {
			delete(t.parked, c.park.fd)
		}
		c.park.inSet = err == nil
	}
	t.mu.Unlock()
	if err != nil {
		t.closeConn(c)
	}
}

// learnFd reads c's descriptor before its first registration in the poll
// set: it stays the socket's until the socket closes.
func (c *clientConn) learnFd() error {
	if c.park.inSet {
		return nil
	}
	return c.raw.rc.Control(func(fd uintptr) { c.park.fd = int(fd) })
}

var (
	errStopped      = errors.New("stopped")
	errReadUnderWay = errors.New("a read is under way")
)

// pollLoop resumes parked connections as their bytes arrive and closes
// those whose timeout has passed.
func (t *connTable) pollLoop() {
	defer t.loopsDone.Done()
	var ready []int
	lastExpiry := time.Now()
	for {
		var err error
		ready, err = t.poll.wait(ready[:0], time.Second)
		select {
		case <-t.done:
			return
		default:
		}
		if err != nil {
			t.log.Error("polling parked connections", zap.Error(err))
			return
		}
		for _, fd := range ready {
			t.mu.Lock()
			c := t.parked[fd]
			w := t.watched[fd]
			if c != nil {
				delete(t.parked, fd)
				t.resumed.Add(1)
			} else if w != nil {
				delete(t.watched, fd) // the report disarmed it
			}
			t.mu.Unlock()
			switch {
			case c != nil:
				t.dispatch(c)
			case w != nil:
				w.peerMayHaveClosed()
			}
		}
		if now := time.Now(); now.Sub(lastExpiry) >= time.Second {
			lastExpiry = now
			t.expire(now)
		}
	}
}

// dispatch hands a resumed connection to an idle worker, or to a new one.
// Workers are kept because a new goroutine's stack grows from 2 KiB to
// what serving a request takes, copied on each step: 10% of the CPU
// profile when every request resumed a parked connection.
func (t *connTable) dispatch(c *clientConn) {
	select {
	case t.work <- c:
	default:
		go t.worker(c)
	}
}

// workerIdle: a resume worker without work this long ends.
const workerIdle = 10 * time.Second

func (t *connTable) worker(c *clientConn) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.resume(c)
		idle.Reset(workerIdle)
		select {
		case c = <-t.work:
		case <-idle.C:
			return
		case <-t.done:
			return
		}
	}
}

func (t *connTable) resume(c *clientConn) {
	defer t.resumed.Done()
	t.mu.Lock()
	stopped := t.stopped
	t.mu.Unlock()
	if stopped {
		// Shutting down: a parked connection is idle, and is closed as
		// fasthttp closes its idle ones, even if a request just came.
		t.closeConn(c)
		return
	}
	c.park.until = time.Time{}
	c.park.waits.Add(1) // a fresh count: not parked again before a whole sweep
	c.park.phase.Store(phaseWaiting)
	_ = t.serve(c)
}

// expire closes the parked connections whose idle or first-byte timeout
// has passed, as fasthttp would have.
func (t *connTable) expire(now time.Time) {
	var gone []*clientConn
	t.mu.Lock()
	for fd, c := range t.parked {
		if !c.park.until.IsZero() && now.After(c.park.until) {
			delete(t.parked, fd) // closing takes it out of the poll set
			gone = append(gone, c)
		}
	}
	t.mu.Unlock()
	for _, c := range gone {
		t.closeConn(c)
	}
}

// closeConn closes a connection no goroutine serves.
func (t *connTable) closeConn(c *clientConn) {
	c.park.phase.Store(phaseClosed)
	t.remove(c)
	_ = c.Conn.Close()
}

// stop ends parking for a shutdown: parked connections are closed (they
// are idle; fasthttp closes its own idle ones), and a connection that
// would park from now on is closed instead.
func (t *connTable) stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	parked := make([]*clientConn, 0, len(t.parked))
	for _, c := range t.parked {
		parked = append(parked, c)
	}
	clear(t.parked)
	t.mu.Unlock()
	close(t.done)
	if t.poll != nil {
		t.poll.close() // ends the poll loop's wait at once
	}
	t.loopsDone.Wait()
	for _, c := range parked {
		t.closeConn(c)
	}
}

// waitResumed waits for connections resumed before stop to be served.
func (t *connTable) waitResumed(ctx context.Context) {
	done := make(chan struct{})
	go func() { t.resumed.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// waitEnded is the read's part when a wait ended without bytes, with
// err: it reports whether the read must answer io.EOF so that fasthttp
// lets the connection go, which it must when the sweeper woke it.
func (c *clientConn) waitEnded(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && c.park.phase.Load() == phaseKicked && c.leaveToPark()
}

// leaveToPark marks a waiting or woken connection for parking, and
// reports whether it was (a request may have begun meanwhile).
func (c *clientConn) leaveToPark() bool {
	if c.park.phase.CompareAndSwap(phaseWaiting, phaseParking) {
		c.park.until = c.readWant
		return true
	}
	// Woken by the sweeper, which holds kickMu while it arms the waking
	// deadline: under kickMu that is done, and no deadline stays armed
	// for the next request to trip over.
	c.park.kickMu.Lock()
	defer c.park.kickMu.Unlock()
	if !c.park.phase.CompareAndSwap(phaseKicked, phaseParking) {
		return false
	}
	c.park.until = c.readWant
	c.readArmed = lazyDeadline{}
	_ = c.Conn.SetReadDeadline(time.Time{})
	return true
}

// upgraded takes a connection that became a tunnel out of the count:
// tunnels have their own cap, and fasthttp's Concurrency, which enforced
// max_conns before parking, let go of a hijacked connection too.
func (c *clientConn) upgraded() {
	if c.table != nil {
		c.table.remove(c)
	}
	// A tunnel reads and closes from goroutines of its own: plain reads.
	c.tunnel = true
	if c.parkable {
		c.holdReads(false)
	}
}

// waiting is told that fasthttp waits for the next request.
func (c *clientConn) waiting() {
	c.park.waits.Add(1)
	c.park.phase.CompareAndSwap(phaseBusy, phaseWaiting)
}

// activated is told that a request's first byte arrived: a kick that came
// too late is undone.
func (c *clientConn) activated() {
	for {
		switch p := c.park.phase.Load(); p {
		case phaseBusy, phaseClosed:
			return
		case phaseKicked:
			// The waking deadline is armed under kickMu; the one the
			// request wants is put back after it.
			c.park.kickMu.Lock()
			undone := c.park.phase.CompareAndSwap(phaseKicked, phaseBusy)
			if undone {
				_ = c.Conn.SetReadDeadline(c.readArmed.armed)
			}
			c.park.kickMu.Unlock()
			if undone {
				return
			}
		case phaseWaiting:
			if c.park.phase.CompareAndSwap(p, phaseBusy) {
				return
			}
		default:
			return // parking or parked: fasthttp is done with it
		}
	}
}

// closeOrPark is Close: a connection whose wait ended to park it goes to
// the table; any other is closed once.
func (c *clientConn) closeOrPark() error {
	if c.closeLater.CompareAndSwap(true, false) {
		// fasthttp's own Close, after its shutdown shut the connection
		// down under a held Read (closeSocket).
		return c.closeSocket()
	}
	if !c.parkable {
		if c.table != nil {
			c.table.remove(c)
		}
		return c.Conn.Close()
	}
	for {
		switch p := c.park.phase.Load(); p {
		case phaseParking:
			if c.park.phase.CompareAndSwap(p, phaseParked) {
				c.table.park(c)
				return nil
			}
		case phaseParked, phaseClosed:
			return nil // the table owns it, or it is closed already
		default:
			if c.park.phase.CompareAndSwap(p, phaseClosed) {
				c.table.remove(c)
				return c.closeSocket()
			}
		}
	}
}
