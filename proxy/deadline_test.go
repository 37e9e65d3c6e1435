package proxy

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func TestLazyDeadlineArmsOncePerSlack(t *testing.T) {
	const slack = 20 * time.Millisecond
	base := time.Now()
	var d lazyDeadline
	step := func(want time.Time, wantArm bool, wantArmed time.Time) {
		t.Helper()
		got, arm := d.update(want, slack)
		if arm != wantArm || !got.Equal(wantArmed) {
			t.Fatalf("update(+%v) = +%v, %v; want +%v, %v", want.Sub(base), got.Sub(base), arm, wantArmed.Sub(base), wantArm)
		}
	}
	step(time.Time{}, false, time.Time{})                                          // none wanted, none armed
	step(base, true, base.Add(slack))                                              // first: armed slack later
	step(base.Add(5*time.Millisecond), false, base.Add(slack))                     // later, still covered
	step(base.Add(slack), false, base.Add(slack))                                  // exactly covered
	step(base.Add(slack+time.Nanosecond), true, base.Add(2*slack+time.Nanosecond)) // past the armed one
	step(base.Add(-time.Second), true, base.Add(-time.Second+slack))               // much earlier: re-armed
	step(time.Time{}, true, time.Time{})                                           // cleared
}

func TestDeadlineSlack(t *testing.T) {
	for _, tc := range []struct {
		timeouts []time.Duration
		want     time.Duration
	}{
		{nil, maxDeadlineSlack},
		{[]time.Duration{10 * time.Second, 75 * time.Second}, maxDeadlineSlack},
		{[]time.Duration{0, 80 * time.Millisecond}, 10 * time.Millisecond},
	} {
		if got := deadlineSlack(tc.timeouts...); got != tc.want {
			t.Errorf("deadlineSlack(%v) = %v, want %v", tc.timeouts, got, tc.want)
		}
	}
}

// loopbackPair is a client connection and the server side of it, accepted
// through a lazyListener.
func loopbackPair(t *testing.T) (client net.Conn, server *clientConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&lazyListener{Listener: ln}).Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); c.Close() })
	return client, c.(*clientConn)
}

// A clientConn's deadlines still cut off a read that waits too long, at
// most the slack late, even after many reads that each pushed the
// deadline on.
func TestClientConnDeadlineStillFires(t *testing.T) {
	client, server := loopbackPair(t)
	server.slack = 20 * time.Millisecond
	buf := make([]byte, 100)
	for i := 0; i < 50; i++ {
		server.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		client.Write([]byte("x"))
		if _, err := server.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	server.SetReadDeadline(start.Add(100 * time.Millisecond))
	_, err := server.Read(buf)
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read ended with %v, want a timeout", err)
	}
	if took < 100*time.Millisecond || took > 100*time.Millisecond+server.slack+50*time.Millisecond {
		t.Errorf("timed out after %v, want 100 ms plus at most the slack", took)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a net.Error timeout", err)
	}
}
