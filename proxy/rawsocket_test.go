package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a connected TCP pair on loopback, closed when the test ends.
func tcpPair(t *testing.T) (client *net.TCPConn, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s
}

// rawPair is a connected TCP pair whose server side reads and writes
// through a rawSocket, held (heldRead) or not.
func rawPair(t *testing.T, held bool) (client *net.TCPConn, server net.Conn, raw *rawSocket) {
	t.Helper()
	c, s := tcpPair(t)
	raw = newRawSocket(s)
	if raw == nil {
		t.Fatal("no raw socket for a TCP connection")
	}
	raw.held, raw.waitIfDrained = held, held
	// Before tcpPair's: the socket's coroutine ends first.
	t.Cleanup(func() {
		if closed, _ := raw.closeUnlessHeld(s.Close); !closed {
			t.Error("not closed: a read is under way")
		}
	})
	return c, s, raw
}

// bothModes runs f for a plain and a held rawSocket.
func bothModes(t *testing.T, f func(t *testing.T, held bool)) {
	for _, held := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "held"}[held], func(t *testing.T) { f(t, held) })
	}
}

func TestRawSocketMovesBytesBothWays(t *testing.T) { bothModes(t, testRawSocketMovesBytesBothWays) }

func testRawSocketMovesBytesBothWays(t *testing.T, held bool) {
	client, _, raw := rawPair(t, held)
	// Larger than the socket buffers, so writes are partial and wait for
	// room, and reads wait for data.
	sent := bytes.Repeat([]byte("0123456789abcdef"), 1<<18)
	go func() {
		raw.Write(sent)
	}()
	got := make([]byte, 0, len(sent))
	buf := make([]byte, 32<<10)
	for len(got) < len(sent) {
		n, err := client.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, sent) {
		t.Fatal("bytes changed on the way out")
	}

	go client.Write(sent)
	got = got[:0]
	for len(got) < len(sent) {
		n, err := raw.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, sent) {
		t.Fatal("bytes changed on the way in")
	}
}

// The errors are net.Conn's: io.EOF itself, timeouts and resets as
// *net.OpError with net.Conn's operation names.
func TestRawSocketErrorsAreNetConns(t *testing.T) { bothModes(t, testRawSocketErrorsAreNetConns) }

func testRawSocketErrorsAreNetConns(t *testing.T, held bool) {
	t.Run("eof", func(t *testing.T) {
		client, _, raw := rawPair(t, held)
		client.CloseWrite()
		if n, err := raw.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("read after the peer's FIN: %d, %v; want 0, io.EOF", n, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		_, server, raw := rawPair(t, held)
		server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := raw.Read(make([]byte, 10))
		var oe *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "read" || !oe.Timeout() {
			t.Fatalf("read past the deadline: %#v", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		client, _, raw := rawPair(t, held)
		client.SetLinger(0) // close with RST
		client.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ { // the RST may take a moment to arrive
			_, err = raw.Write([]byte("x"))
			if err == nil {
				time.Sleep(time.Millisecond)
			}
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "write" || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			t.Fatalf("write to a reset connection: %#v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		_, server, raw := rawPair(t, held)
		server.Close()
		if _, err := raw.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read of a closed connection: %v", err)
		}
	})
}

// Reading and writing allocate nothing: the callbacks are bound once.
func TestRawSocketAllocatesNothing(t *testing.T) { bothModes(t, testRawSocketAllocatesNothing) }

func testRawSocketAllocatesNothing(t *testing.T, held bool) {
	client, _, raw := rawPair(t, held)
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(100, func() {
		client.Write([]byte("ping"))
		if _, err := raw.Read(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Write(buf[:4]); err != nil {
			t.Fatal(err)
		}
		client.Read(buf)
	})
	if allocs > 1 { // client.Write's []byte conversion may allocate
		t.Errorf("%.1f allocations per read and write", allocs)
	}
}
