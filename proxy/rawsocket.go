package proxy

import (
	"errors"
	"io"
	"iter"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// rawSocket reads and writes a TCP socket with raw system calls, through
// the runtime's poller (syscall.RawConn) like net.Conn does, but without
// telling the scheduler a system call is under way.
//
// Why: net.Conn's Read and Write go through syscall.Syscall, whose
// entersyscall wakes the runtime's monitor thread (sysmon) whenever it had
// gone to sleep, and it does every time the single P of a GOMAXPROCS=1
// process goes idle. perf stat at a constant 15,000 requests/s: 0.71 futex
// and 0.49 nanosleep calls and 2.77 context switches per proxied request,
// sysmon waking and sleeping again; with raw calls 0.00, 0.01 and 1.30,
// and CPU per request 43.5-46.3 -> 35.5-39.7 us (nginx: 0 futex calls,
// 0.87 context switches). A read or write on a non-blocking socket never
// blocks (the poller waits, with the P released, when it would), so the
// scheduler has nothing to take over while it runs.
type rawSocket struct {
	rc   syscall.RawConn
	conn net.Conn // for the addresses in errors

	// The buffer and results of the call in progress; one goroutine reads
	// and one writes at a time (the poller's locks), so each direction has
	// its own.
	rbuf, wbuf      []byte
	rn, wn          int
	rerr, werr      syscall.Errno
	readFn, writeFn func(fd uintptr) bool // bound once: no allocation per call
	noWait          bool                  // the read in progress is tryRead's

	// held: Read runs its reads in a coroutine that stays inside one
	// poller read call from Read to Read (see heldRead); the connection
	// wrapper closes through closeConn and says, before each Read, whether
	// it may wait at once after a short read (waitIfDrained).
	held          bool
	waitIfDrained bool
	// mu is held by a held Read for its whole wait, so that closeConn can
	// tell from another goroutine whether one is under way. A pooled
	// connection's coroutine is a parked goroutine: a few KiB of stack.
	mu     sync.Mutex
	next   func() (struct{}, bool)
	stop   func()
	yield  func(struct{}) bool // the coroutine's, while it runs
	heldFn func(fd uintptr) bool
	// drained: the last read came back short, the socket was empty. Only
	// the reading goroutine touches it (a close from another goroutine
	// leaves it).
	drained bool
	pollErr error // the poller's error (deadline, closed) for the held Read
}

// errWouldBlock: tryRead found no bytes.
var errWouldBlock = errors.New("no bytes yet")

// socketIO is where a connection wrapper reads and writes c's bytes: a
// rawSocket for a TCP connection, c itself otherwise.
func socketIO(c net.Conn) io.ReadWriter {
	if s := newRawSocket(c); s != nil {
		return s
	}
	return c
}

// newRawSocket returns nil when c is not a TCP connection.
func newRawSocket(c net.Conn) *rawSocket {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &rawSocket{rc: rc, conn: c}
	s.readFn, s.writeFn, s.heldFn = s.readOnce, s.writeOnce, s.heldOnce
	return s
}

func (s *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf, s.rn, s.rerr = p, 0, 0
	var err error
	if s.held {
		err = s.heldRead()
	} else {
		err = s.rc.Read(s.readFn)
	}
	s.rbuf = nil
	switch {
	case err != nil:
		return 0, renameOp(err, "read")
	case s.rerr == syscall.EAGAIN:
		return 0, errWouldBlock
	case s.rerr != 0:
		return 0, s.opError("read", s.rerr)
	case s.rn == 0:
		return 0, io.EOF
	}
	return s.rn, nil
}

// tryRead is Read that answers errWouldBlock at once when no bytes are
// there, instead of waiting for them.
func (s *rawSocket) tryRead(p []byte) (int, error) {
	s.noWait = true
	n, err := s.Read(p)
	s.noWait = false
	return n, err
}

func (s *rawSocket) readOnce(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rbuf[0])), uintptr(len(s.rbuf)))
		switch e {
		case 0:
			s.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if s.noWait {
				s.rerr = e
				return true
			}
			return false
		default:
			s.rerr = e
			return true
		}
	}
}

// heldRead reads in the socket's coroutine, which stays inside one
// syscall.RawConn.Read between Reads.
//
// Why: every RawConn.Read (and net.Conn.Read) first forgets what the
// poller saw, so it must try a read before it may wait, and an upstream's
// answer is never there yet when fasthttp asks for it right after writing
// the request: perf stat counted 4 reads per proxied request, 2 of them
// EAGAIN (this one and the client's next request), each a system call of
// about 2 µs on these machines. Inside one call nothing the poller sees is
// forgotten, so after a short read, which emptied the socket, the next
// Read may wait for the poller at once, as nginx waits for epoll after a
// short recv. Switching to the coroutine and back costs far less.
//
// A wrapper says before each Read whether the wait may skip the read
// (waitIfDrained). A short read may have taken the last bytes before a
// FIN that arrived with them, under the same readiness; a read after it
// would answer EOF at once, but a wait would wait for good. nginx learns
// of that FIN from epoll's EPOLLRDHUP, which Go's poller does not pass on.
// On an upstream connection only the wait for an answer's start skips the
// read: the FIN would have come after the previous answer's last bytes,
// on a connection fasthttp kept, and the request written into a closed
// socket draws a reset, which wakes the wait; a response body, which may
// end at the close, is read first. A client connection skips it while the
// parking poll set watches the socket for the peer's close (peerclose.go).
func (s *rawSocket) heldRead() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == nil {
		s.next, s.stop = iter.Pull(s.readLoop)
	}
	s.pollErr = nil
	if _, ok := s.next(); !ok {
		s.next, s.stop = nil, nil // the socket was closed
	}
	return s.pollErr
}

func (s *rawSocket) readLoop(yield func(struct{}) bool) {
	s.yield = yield
	for {
		err := s.rc.Read(s.heldFn)
		if s.yield == nil {
			return // released
		}
		s.drained = false // the next call reads before it waits
		s.pollErr = err
		if errors.Is(err, net.ErrClosed) {
			return // nothing more to read: no need to wait for release
		}
		if !yield(struct{}{}) {
			return
		}
	}
}

// heldOnce is the coroutine's part inside the poller's read call: it
// reads, hands the result to Read, and when Read comes back for more
// either reads again or waits.
func (s *rawSocket) heldOnce(fd uintptr) bool {
	for {
		if !s.readOnce(fd) {
			return false // nothing there: the poller waits
		}
		s.drained = s.rerr == 0 && s.rn > 0 && s.rn < len(s.rbuf)
		if !s.yield(struct{}{}) {
			s.yield = nil
			return true
		}
		// The next Read, with its buffer in rbuf.
		if s.drained && s.waitIfDrained {
			return false
		}
	}
}

// release ends the reading coroutine unless a held Read is under way in
// another goroutine; it reports whether no coroutine is left.
func (s *rawSocket) release() bool {
	if !s.mu.TryLock() {
		return false
	}
	s.stopLocked()
	s.drained = false // a new coroutine reads before it waits
	s.mu.Unlock()
	return true
}

// closeUnlessHeld ends the reading coroutine and closes with close, unless
// a held Read is under way in another goroutine, with no Read let in
// between (its coroutine could take the socket again before close ends
// it); it reports whether it closed, and close's error.
func (s *rawSocket) closeUnlessHeld(close func() error) (bool, error) {
	if !s.mu.TryLock() {
		return false, nil
	}
	defer s.mu.Unlock()
	s.stopLocked()
	return true, close()
}

func (s *rawSocket) stopLocked() {
	if s.stop != nil {
		s.stop()
		s.next, s.stop = nil, nil
	}
}

// closeConn closes the connection with close, or, while a held Read is
// under way in another goroutine, shuts the socket down and leaves the
// close to the reader's own Close. Closing under that Read would wait for
// its coroutine's hold on the descriptor, which only the reader lets go,
// and the closer may be what the reader waits for (fasthttp interrupts a
// streaming body's Read by closing its connection, then closes it again).
func (s *rawSocket) closeConn(close func() error) error {
	if closed, err := s.closeUnlessHeld(close); closed {
		return err
	}
	return s.shutdown()
}

// shutdown ends both directions of the socket without closing it: a held
// Read in another goroutine sees the end.
func (s *rawSocket) shutdown() error {
	tc := s.conn.(*net.TCPConn)
	_ = tc.CloseWrite()
	return tc.CloseRead()
}

func (s *rawSocket) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.wbuf, s.wn, s.werr = p, 0, 0
	err := s.rc.Write(s.writeFn)
	n := s.wn
	s.wbuf = nil
	switch {
	case err != nil:
		return n, renameOp(err, "write")
	case s.werr != 0:
		return n, s.opError("write", s.werr)
	}
	return n, nil
}

// writeOnce writes what it can; the poller waits for room and calls it
// again until everything is written.
func (s *rawSocket) writeOnce(fd uintptr) bool {
	for s.wn < len(s.wbuf) {
		rest := s.wbuf[s.wn:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			s.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.werr = e
			return true
		}
	}
	return true
}

// opError is the error net.Conn returns for a failed system call.
func (s *rawSocket) opError(op string, e syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.conn.LocalAddr(), Addr: s.conn.RemoteAddr(), Err: os.NewSyscallError(op, e)}
}

// renameOp gives the poller's errors (deadline, closed) the operation name
// net.Conn gives them, not "raw-read" or "raw-write".
func renameOp(err error, op string) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		oe.Op = op
	}
	return err
}
