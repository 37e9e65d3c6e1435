package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// errBareLF: a line of a request head ended in LF without CR. SPEC §8
// answers 400. fasthttp cannot be asked to refuse it: it takes a bare LF
// at the end of the request line silently (that line is not kept, so
// checkRequestHead cannot see it), and a head whose end is bare LFs has
// no CRLFCRLF, so fasthttp waits for more until the read timeout (408).
var errBareLF = errors.New("bare LF in the request head")

// headGuard watches the bytes of each request head as they are read from
// the client, below fasthttp's parser, and stops the read at the first
// line that ends in a bare LF: the bytes before it are handed on, the next
// read fails with errBareLF, and fasthttp answers its error (400, see
// parseErrorStatus) at once.
//
// A head is known to start when the connection opens and, after that,
// at the first read deadline fasthttp sets once a response was written:
// that is the top of its request loop. A head ends at its empty line;
// what follows (a body) is not looked at. Not covered: heads that arrive
// in the same read as an earlier request's (pipelining); a pipelined
// request whose body arrives in a later read than its head may be read as
// a head. Once fasthttp hands the connection over (Hijack: it clears
// both deadlines) the guard is off for good.
type headGuard struct {
	on       bool // the zero guard does nothing
	inHead   bool // the bytes being read belong to a head
	seenLine bool // the head's request line has started
	prevCR   bool // the last byte scanned was CR
	written  bool // a response was written since the last head ended
	failed   bool // a bare LF was found: every read fails
	off      bool // the connection was handed over
	lineLen  int  // bytes of the current line before this read
}

func newHeadGuard() headGuard { return headGuard{on: true, inHead: true} }

// failure is the error every read returns once a bare LF was found.
func (g *headGuard) failure() error {
	if g.failed {
		return errBareLF
	}
	return nil
}

// check passes on the result of one read: n bytes read into p.
func (g *headGuard) check(p []byte, n int, err error) (int, error) {
	if g.inHead && n > 0 {
		if m, bad := g.scan(p[:n]); bad {
			// The bytes before the bare LF go on, and in its place a byte
			// that ends no line: fasthttp has then started a request that
			// cannot be complete, and answers the failed read that follows
			// with 400. (A request that failed before its first byte, or
			// with only CR and LF read, is dropped without an answer.)
			g.failed = true
			p[m] = 'X'
			return m + 1, nil
		}
	}
	return n, err
}

// wrote notes a write to the client: the next head follows a response.
func (g *headGuard) wrote() { g.written = true }

// readDeadline notes a read deadline fasthttp set.
func (g *headGuard) readDeadline(t time.Time) {
	if g.on && g.written && !g.inHead && !g.off && !t.IsZero() {
		*g = newHeadGuard()
	}
}

// deadline notes SetDeadline: a zero one is fasthttp letting go of the
// connection (Hijack, another protocol).
func (g *headGuard) deadline(t time.Time) {
	if t.IsZero() {
		g.off, g.inHead = true, false
	}
}

// scan follows p, the next bytes of a head. It reports, when a line ends
// in a bare LF, that bad is true and how many bytes come before that LF.
// Line ends are found with bytes.IndexByte, so a head costs a few
// vectorised searches, not a loop over its bytes.
func (g *headGuard) scan(p []byte) (n int, bad bool) {
	start := 0 // where the current line starts in p
	for g.inHead && start < len(p) {
		i := bytes.IndexByte(p[start:], '\n')
		if i < 0 {
			g.lineLen += len(p) - start
			g.prevCR = p[len(p)-1] == '\r'
			return len(p), false
		}
		lf := start + i
		cr := g.prevCR
		if lf > start {
			cr = p[lf-1] == '\r'
		} else if g.lineLen == 0 {
			cr = false // an LF starting a line: nothing before it
		}
		if !cr {
			return lf, true
		}
		empty := g.lineLen+i == 1 // the line was just CR
		g.lineLen, g.prevCR = 0, false
		start = lf + 1
		switch {
		case !empty:
			g.seenLine = true
		case g.seenLine:
			g.inHead, g.written = false, false // the empty line ending the head
		}
		// An empty line before the request line is skipped (RFC 9112 §2.2).
	}
	return len(p), false
}

// guardedListener serves TLS with a headGuard above it, where the bytes
// are plain text; fasthttp's ServeTLS would wrap connections itself.
type guardedListener struct{ net.Listener }

func (l guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*tls.Conn); ok {
		return &guardedTLSConn{Conn: tc, guard: newHeadGuard()}, nil
	}
	return c, nil
}

// guardedTLSConn is a TLS connection whose plain text is guarded. It keeps
// *tls.Conn's Handshake and ConnectionState, by which fasthttp tells TLS.
type guardedTLSConn struct {
	*tls.Conn
	guard headGuard
}

func (c *guardedTLSConn) Read(p []byte) (int, error) {
	if err := c.guard.failure(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	return c.guard.check(p, n, err)
}

func (c *guardedTLSConn) Write(p []byte) (int, error) {
	c.guard.wrote()
	return c.Conn.Write(p)
}

func (c *guardedTLSConn) SetReadDeadline(t time.Time) error {
	c.guard.readDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *guardedTLSConn) SetDeadline(t time.Time) error {
	c.guard.deadline(t)
	return c.Conn.SetDeadline(t)
}
