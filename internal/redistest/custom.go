package redistest

import (
	"net"
	"os/exec"
	"testing"
)

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartArgs runs redis-server with args (a Sentinel, a replica, a TLS
// port...) and waits until addr, a plain-text port of it, answers PING.
// The process is killed when the test ends; it cannot be restarted.
func StartArgs(t testing.TB, addr string, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not on PATH")
	}
	s := &Server{t: t, Addr: addr, cmd: exec.Command("redis-server", args...)}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.waitUp()
	return s
}

// BaseArgs are the arguments of every test server on addr: no
// persistence, loopback only, files in a temporary folder.
func BaseArgs(t testing.TB, addr string) []string {
	_, port, _ := net.SplitHostPort(addr)
	return []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning"}
}
