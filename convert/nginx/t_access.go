package nginx

import (
	"strings"

	"github.com/edgeproxy/edgeproxy/config"
)

// carryAllowDeny: allow/deny become access entries, first match wins as
// in nginx.
func carryAllowDeny(s *scope, d *Directive) error {
	addr := d.Args[0]
	if addr != "all" {
		if strings.HasPrefix(addr, "unix:") {
			return blocking("unix: addresses are not translated")
		}
		if _, err := config.ParsePrefix(addr); err != nil {
			s.c.reject(d, "invalid parameter %q", addr)
			return errReported
		}
	}
	if s.kind == cLimit {
		return blocking("allow/deny inside limit_except is not translated beyond `deny all`")
	}
	s.set.access.add(header{name: d.Name, value: addr, d: d})
	return nil
}

func carryAuthBasic(s *scope, d *Directive) error {
	if s.kind == cLimit {
		return blocking("auth_basic inside limit_except is not translated")
	}
	if d.Args[0] == "off" {
		s.set.authRealm.put("", d)
		return nil
	}
	if strings.Contains(d.Args[0], "$") {
		return blocking("a realm from variables is not translated")
	}
	s.set.authRealm.put(d.Args[0], d)
	return nil
}

func carryAuthBasicFile(s *scope, d *Directive) error {
	if s.kind == cLimit {
		return blocking("auth_basic_user_file inside limit_except is not translated")
	}
	if strings.Contains(d.Args[0], "$") {
		return blocking("a user file from variables is not translated")
	}
	s.set.authFile.put(s.c.path(d.Args[0]), d)
	return nil
}

func carrySatisfy(s *scope, d *Directive) error {
	if d.Args[0] == "all" {
		return nil
	}
	return blocking("satisfy any (address OR password) is not translated; edgeproxy needs both")
}

func carrySetRealIPFrom(s *scope, d *Directive) error {
	if _, err := config.ParsePrefix(d.Args[0]); err != nil {
		return blocking("set_real_ip_from %q is not a CIDR or address", d.Args[0])
	}
	if s.kind != cHTTP && s.kind != cServer {
		return blocking("edgeproxy has one trusted_proxies list, in [server]")
	}
	s.set.realIPFrom.add(header{value: d.Args[0], d: d})
	return nil
}

func carryRealIPHeader(s *scope, d *Directive) error {
	if !strings.EqualFold(d.Args[0], "X-Forwarded-For") {
		return blocking("edgeproxy reads the client address from X-Forwarded-For only (got %q)", d.Args[0])
	}
	s.set.realIPHeader.put(d.Args[0], d)
	return nil
}
