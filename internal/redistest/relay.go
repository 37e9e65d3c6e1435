package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// Relay is a TCP relay in front of a Redis that can drop RESP3
// "invalidate" pushes on command while every command and reply still
// passes: a silently broken invalidation path, as a test needs it.
type Relay struct {
	Addr    string
	target  string
	ln      net.Listener
	drop    atomic.Bool
	dropped atomic.Int64

	mu    sync.Mutex // guards conns
	conns []net.Conn
	wg    sync.WaitGroup
}

// StartRelay listens on a free loopback port and relays to target until
// the test ends.
func StartRelay(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: ln.Addr().String(), target: target, ln: ln}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.Close)
	return r
}

// DropInvalidations starts (true) or stops dropping invalidate pushes.
func (r *Relay) DropInvalidations(on bool) { r.drop.Store(on) }

// Dropped counts the pushes dropped so far.
func (r *Relay) Dropped() int64 { return r.dropped.Load() }

// Close stops the relay and cuts every connection.
func (r *Relay) Close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, up)
		r.mu.Unlock()
		r.wg.Add(2)
		go func() {
			defer r.wg.Done()
			_, _ = io.Copy(up, c)
			up.Close()
		}()
		go func() {
			defer r.wg.Done()
			r.replies(c, up)
			c.Close()
		}()
	}
}

// replies copies Redis's output frame by frame, leaving out invalidate
// pushes while dropping.
func (r *Relay) replies(client, server net.Conn) {
	br := bufio.NewReader(server)
	var frame bytes.Buffer
	for {
		frame.Reset()
		push, err := readFrame(br, &frame, true)
		if err != nil {
			return
		}
		if push && r.drop.Load() {
			r.dropped.Add(1)
			continue
		}
		if _, err := client.Write(frame.Bytes()); err != nil {
			return
		}
	}
}

// readFrame appends one RESP3 value to out; invalidate reports whether it
// is a top-level ">" push whose first element is "invalidate".
func readFrame(br *bufio.Reader, out *bytes.Buffer, top bool) (invalidate bool, err error) {
	line, err := br.ReadBytes('\n')
	if err != nil {
		return false, err
	}
	out.Write(line)
	if len(line) < 3 {
		return false, errors.New("short RESP line")
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '$', '!', '=':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return false, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return false, err
		}
		out.Write(buf)
		return false, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return false, err
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			start := out.Len()
			if _, err := readFrame(br, out, false); err != nil {
				return false, err
			}
			if i == 0 && top && line[0] == '>' {
				invalidate = bytes.HasSuffix(out.Bytes()[start:], []byte("\r\ninvalidate\r\n"))
			}
		}
		return invalidate, nil
	default: // + - : _ , # ( : one line
		return false, nil
	}
}
