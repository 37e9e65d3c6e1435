package nginx

import "strings"

// carryMaxBody: client_max_body_size, "" for 0 (unlimited).
func carryMaxBody(s *scope, d *Directive) error {
	n, ok := nginxSize(d.Args[0])
	if !ok {
		s.c.reject(d, `"client_max_body_size" directive invalid value`)
		return errReported
	}
	v := ""
	if n > 0 {
		v = sizeString(n)
	}
	s.set.maxBody.put(v, d)
	return nil
}

// carryAccessLog: only `off` has a meaning here; a path or format is
// edgeproxy's own log.
func carryAccessLog(s *scope, d *Directive) error {
	if d.Args[0] == "off" {
		s.set.accessLog.put(false, d)
		return nil
	}
	if strings.HasPrefix(d.Args[0], "syslog:") {
		return ignored("edgeproxy writes its access log to [log] access_log, not syslog")
	}
	s.set.accessLog.put(true, d)
	return ignored("edgeproxy writes its own access log format to [log] access_log (stdout unless set)")
}

func carryResolver(s *scope, d *Directive) error {
	addr, err := hostPort(strings.TrimSuffix(d.Args[0], ":53"))
	if err != nil {
		return err
	}
	addr = strings.TrimSuffix(addr, ":80") + ":53"
	if s.kind != cHTTP && s.kind != cServer {
		return blocking("edgeproxy has one resolver, in [server]")
	}
	s.c.resolver.put(addr, d)
	return nil
}

func carryUnderscores(s *scope, d *Directive) error {
	if d.Args[0] == "on" {
		return nil
	}
	return blocking("edgeproxy passes headers whose names contain _; nginx drops them with `off`")
}

// carryLimitRate: limit_rate N (0 = off) per response.
func carryLimitRate(s *scope, d *Directive) error {
	n, ok := nginxSize(d.Args[0])
	if !ok {
		s.c.reject(d, "invalid value %q", d.Args[0])
		return errReported
	}
	v := ""
	if n > 0 {
		v = sizeString(n)
	}
	s.set.limitRate.put(v, d)
	return nil
}
