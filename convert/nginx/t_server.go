package nginx

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// serverScope is one nginx server block being read.
type serverScope struct {
	d       *Directive
	set     *settings
	listens []listenSpec
	names   []string
	// namesBad: a server_name that edgeproxy cannot match (a regex).
	namesBad bool
	cert     val[string]
	key      val[string]
	sslOn    bool
	locs     []*locScope
	// ret is a return at server level: it answers every request first.
	ret *locScope
	// redirects are server-level rewrite … permanent|redirect.
	redirects []*locScope
	// unrouted are locations read but left out (their kind is not
	// accepted yet); error_page targets are still looked up in them.
	unrouted []*locScope
	// sources caches routeSources.
	sources []*locScope
}

type listenSpec struct {
	host, port string
	ssl, def   bool
	d          *Directive
}

func carryHTTP(s *scope, d *Directive) error {
	if s.c.http != nil {
		return blocking(`nginx rejects this config: "http" directive is duplicate`)
	}
	s.c.http = s.set.child()
	s.c.walk(&scope{c: s.c, kind: cHTTP, set: s.c.http}, d.Block)
	return nil
}

// carryServer is an upstream's server line or an http server block.
func carryServer(s *scope, d *Directive) error {
	if (s.kind == cUpstream) != (len(d.Args) > 0) {
		s.c.reject(d, `invalid number of arguments in "server" directive`)
		return nil
	}
	if s.kind == cUpstream {
		if d.HasBlock {
			s.c.reject(d, `directive "server" is not terminated by ";"`)
			return nil
		}
		return carryUpstreamServer(s, d)
	}
	if !d.HasBlock {
		s.c.reject(d, `directive "server" has no opening "{"`)
		return nil
	}
	srv := &serverScope{d: d, set: s.set.child()}
	s.c.servers = append(s.c.servers, srv)
	s.c.walk(&scope{c: s.c, kind: cServer, set: srv.set, srv: srv}, d.Block)
	return nil
}

// carryListen reads listen [addr:]port [default_server] [ssl] [http2] ….
func carryListen(s *scope, d *Directive) error {
	l := listenSpec{d: d}
	addr := d.Args[0]
	if strings.HasPrefix(addr, "unix:") {
		return blocking("edgeproxy listens on TCP only")
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		l.host, l.port = host, port
	} else if isPort(addr) {
		l.port = addr
	} else {
		l.host, l.port = addr, "80"
	}
	if l.host == "*" {
		l.host = ""
	}
	if n, err := strconv.Atoi(l.port); err != nil || !isPort(l.port) || n < 1 || n > 65535 {
		s.c.reject(d, "invalid port in %q of the \"listen\" directive", addr)
		return errReported
	}
	if h := strings.Trim(l.host, "[]"); h != "" {
		if _, err := netip.ParseAddr(h); err != nil && !validHostName.MatchString(h) {
			s.c.reject(d, "host not found in %q of the \"listen\" directive", addr)
			return errReported
		}
	}
	for _, a := range d.Args[1:] {
		switch {
		case a == "default_server" || a == "default":
			l.def = true
		case a == "ssl":
			l.ssl = true
		case a == "http2" || a == "reuseport" || a == "deferred" || strings.HasPrefix(a, "backlog=") ||
			strings.HasPrefix(a, "rcvbuf=") || strings.HasPrefix(a, "sndbuf=") || strings.HasPrefix(a, "so_keepalive=") ||
			strings.HasPrefix(a, "ipv6only=") || a == "bind" || strings.HasPrefix(a, "fastopen="):
			// Socket tuning and HTTP/2: no effect on what a request gets.
		default:
			return blocking("listen parameter %q is not translated", a)
		}
	}
	s.srv.listens = append(s.srv.listens, l)
	return nil
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// carryServerName keeps names edgeproxy can match: exact, "*.domain" and
// nginx's ".domain" (both the domain and its subdomains).
func carryServerName(s *scope, d *Directive) error {
	for _, n := range d.Args {
		n = strings.ToLower(n)
		switch {
		case n == "" || n == "_":
			continue
		case strings.HasPrefix(n, "~"):
			s.srv.namesBad = true
			return blocking("regular-expression server names are not translated; this server's routes are left out")
		case strings.HasPrefix(n, "."):
			if err := checkRouteHostName(n[1:]); err != nil {
				s.srv.namesBad = true
				return err
			}
			s.srv.names = append(s.srv.names, n[1:], "*"+n)
		case strings.HasSuffix(n, ".*"):
			s.srv.namesBad = true
			return blocking("names ending in .* are not translated; this server's routes are left out")
		case n == "$hostname":
			s.srv.namesBad = true
			return blocking("$hostname is not translated; this server's routes are left out")
		default:
			if err := checkRouteHostName(n); err != nil {
				s.srv.namesBad = true
				return err
			}
			s.srv.names = append(s.srv.names, n)
		}
	}
	return nil
}

func checkRouteHostName(n string) error {
	name := strings.TrimPrefix(n, "*.")
	if strings.ContainsAny(name, "*:/ ") || !validHostName.MatchString(name) {
		return blocking("server name %q is not a host name edgeproxy can match", n)
	}
	return nil
}

func carrySSLCert(s *scope, d *Directive) error {
	if err := checkVars(d.Args[0]); err != nil || strings.Contains(d.Args[0], "$") {
		return blocking("certificates chosen by variables are not translated")
	}
	if s.srv != nil {
		s.srv.cert.put(s.c.path(d.Args[0]), d)
	} else {
		s.c.httpCert.put(s.c.path(d.Args[0]), d)
	}
	return nil
}

func carrySSLKey(s *scope, d *Directive) error {
	if strings.Contains(d.Args[0], "$") {
		return blocking("keys chosen by variables are not translated")
	}
	if s.srv != nil {
		s.srv.key.put(s.c.path(d.Args[0]), d)
	} else {
		s.c.httpKey.put(s.c.path(d.Args[0]), d)
	}
	return nil
}

func carrySSLOn(s *scope, d *Directive) error {
	if d.Args[0] == "on" {
		if s.srv == nil {
			return blocking("`ssl on` at http level is not translated; use listen … ssl")
		}
		s.srv.sslOn = true
	}
	return nil
}
