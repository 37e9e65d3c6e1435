package nginx

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// upstreamBlock is an nginx upstream block, or an address a proxy_pass
// names directly.
type upstreamBlock struct {
	name     string
	d        *Directive
	implicit bool
	servers  []string
	// preserveUsed: a route sends the client's Host through host =
	// "preserve"; authHost is the Host nginx's auth sub-request sends
	// here (authHosts settles the two).
	preserveUsed bool
	authHost     string
	authHostD    *Directive
	// Per-server settings that edgeproxy keeps per upstream: -1/"" unset.
	maxFails    int
	failTimeout string
	maxConns    int
	balance     string
	hashKey     string
	idleTimeout string
	used        bool
	host        string // Host sent upstream, "" until a route decides
	scheme      string // "http" or "https", from the proxy_pass that uses it
	hostD       *Directive
	connect     string
	connectD    *Directive
}

func newUpstream(name string, d *Directive) *upstreamBlock {
	return &upstreamBlock{name: name, d: d, maxFails: -1, maxConns: -1}
}

func carryUpstream(s *scope, d *Directive) error {
	name := d.Args[0]
	if _, dup := s.c.upstreams[name]; dup {
		s.c.reject(d, "duplicate upstream %q", name)
		return nil
	}
	u := newUpstream(name, d)
	s.c.upstreams[name] = u
	s.c.upOrder = append(s.c.upOrder, u)
	s.c.walk(&scope{c: s.c, kind: cUpstream, set: s.set, ups: u}, d.Block)
	if len(u.servers) == 0 {
		s.c.reject(d, "no servers are inside upstream")
	}
	return nil
}

// carryUpstreamServer reads `server ADDR [weight=N] [max_fails=N] …`.
func carryUpstreamServer(s *scope, d *Directive) error {
	u := s.ups
	addr := d.Args[0]
	if strings.HasPrefix(addr, "unix:") {
		if err := s.need(CapUnixServer); err != nil {
			return err
		}
	} else {
		var err error
		if addr, err = hostPort(addr); err != nil {
			return err
		}
	}
	if contains(u.servers, addr) {
		return blocking("%s is listed twice: nginx gives it a double share, edgeproxy lists a server once", addr)
	}
	maxFails, failTimeout, maxConns := 1, "10s", 0
	for _, p := range d.Args[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "weight":
			if v != "1" {
				u.servers = append(u.servers, addr)
				return blocking("weight=%s: edgeproxy balances its servers equally", v)
			}
		case "max_fails":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.c.reject(d, "invalid parameter %q", p)
				return nil
			}
			maxFails = n
		case "fail_timeout":
			t, err := nginxDuration(v)
			if err != nil {
				s.c.reject(d, "invalid parameter %q", p)
				return nil
			}
			failTimeout = goDuration(t)
		case "max_conns":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.c.reject(d, "invalid parameter %q", p)
				return nil
			}
			maxConns = n
		case "down":
			return ignored("marked down: left out of servers, as nginx never sends to it")
		case "backup":
			u.servers = append(u.servers, addr)
			return blocking("backup servers are not translated; this one is an ordinary server in edgeproxy")
		default:
			return blocking("server parameter %q is not translated", p)
		}
	}
	if len(u.servers) == 0 {
		u.maxFails, u.failTimeout, u.maxConns = maxFails, failTimeout, maxConns
	} else if u.maxFails != maxFails || u.failTimeout != failTimeout || u.maxConns != maxConns {
		u.servers = append(u.servers, addr)
		return blocking("edgeproxy keeps max_fails, fail_timeout and max_conns per upstream; this server's differ from the first one's")
	}
	u.servers = append(u.servers, addr)
	return nil
}

// hostPort makes nginx's "host[:port]" a host:port, 80 by default.
func hostPort(a string) (string, error) { return hostPortDefault(a, "80") }

func hostPortDefault(a, def string) (string, error) {
	if strings.Contains(a, "$") {
		return "", blocking("addresses from variables are not translated")
	}
	out := a + ":" + def
	switch {
	case strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]"):
	case strings.Count(a, ":") > 1 && !strings.HasPrefix(a, "["):
		out = "[" + a + "]:" + def
	default:
		if _, _, err := net.SplitHostPort(a); err == nil {
			out = a
		}
	}
	host, port, err := net.SplitHostPort(out)
	n, perr := strconv.Atoi(port)
	_, aerr := netip.ParseAddr(host)
	if err != nil || perr != nil || n < 1 || n > 65535 || aerr != nil && !validHostName.MatchString(host) || strings.Contains(host, ":") && aerr != nil {
		return "", blocking("nginx rejects this config: invalid address %q", a)
	}
	return out, nil
}

func carryLeastConn(s *scope, d *Directive) error {
	s.ups.balance = "least_conn"
	return nil
}

func carryIPHash(s *scope, d *Directive) error {
	s.ups.balance, s.ups.hashKey = "hash", "$remote_addr"
	return nil
}

func carryHash(s *scope, d *Directive) error {
	if len(d.Args) != 2 || d.Args[1] != "consistent" {
		return blocking("only `hash KEY consistent` is translated (edgeproxy's hash is consistent)")
	}
	if err := checkVars(d.Args[0]); err != nil {
		return err
	}
	s.ups.balance, s.ups.hashKey = "hash", d.Args[0]
	return nil
}

func carryRandom(s *scope, d *Directive) error {
	if len(d.Args) == 0 || d.Args[0] != "two" || len(d.Args) == 2 && d.Args[1] != "least_conn" {
		return blocking("only `random two [least_conn]` is translated")
	}
	s.ups.balance = "random_two"
	return nil
}

// carryKeepaliveTimeout: the client side in http/server, the pooled
// upstream connections in an upstream block.
func carryKeepaliveTimeout(s *scope, d *Directive) error {
	t, err := nginxDuration(d.Args[0])
	if err != nil {
		s.c.reject(d, "invalid value %q", d.Args[0])
		return nil
	}
	if s.kind == cUpstream {
		if t <= 0 {
			return blocking("a zero upstream keepalive_timeout is not translated")
		}
		s.ups.idleTimeout = goDuration(t)
		return nil
	}
	if s.kind == cLocation {
		return blocking("edgeproxy has one client keep-alive timeout, [server] idle_timeout")
	}
	if t <= 0 {
		return blocking("keepalive_timeout 0 (no client keep-alive) is not translated")
	}
	if len(d.Args) == 2 {
		return blocking("the Keep-Alive: timeout= header (second argument) is not sent by edgeproxy")
	}
	s.set.idleTimeout.put(goDuration(t), d)
	return nil
}

func carryNoop(*scope, *Directive) error { return nil }
