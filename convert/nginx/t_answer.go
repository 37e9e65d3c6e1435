package nginx

import (
	"strconv"
	"strings"
)

// mapVar is a map block's variable; only the WebSocket idiom is understood.
type mapVar struct {
	upgrade bool
}

func (c *converter) isUpgradeMap(v string) bool {
	m, ok := c.maps[strings.TrimPrefix(v, "$")]
	return strings.HasPrefix(v, "$") && ok && m.upgrade
}

// carryMap understands
//
//	map $http_upgrade $connection_upgrade { default upgrade; '' close; }
//
// the idiom that makes proxy_set_header Connection $connection_upgrade
// mean "WebSocket allowed here".
func carryMap(s *scope, d *Directive) error {
	src, dst := d.Args[0], strings.TrimPrefix(d.Args[1], "$")
	vals := map[string]string{}
	for _, e := range d.Block {
		if len(e.Args) != 1 || e.HasBlock {
			return blocking("map $%s is not translated", dst)
		}
		vals[e.Name] = e.Args[0]
	}
	if src == "$http_upgrade" && strings.EqualFold(vals["default"], "upgrade") && len(vals) <= 2 {
		if c, ok := vals[""]; len(vals) == 1 || ok && (c == "close" || c == "") {
			s.c.maps[dst] = &mapVar{upgrade: true}
			return nil
		}
	}
	return blocking("map $%s is not translated (nginx variables set by the config are not supported)", dst)
}

func redirectCode(code int) bool {
	return code == 301 || code == 302 || code == 303 || code == 307 || code == 308
}

// carryReturn reads return CODE [TEXT|URL] and return URL.
func carryReturn(s *scope, d *Directive) error {
	a := &answer{d: d}
	code, err := strconv.Atoi(d.Args[0])
	switch {
	case err != nil && len(d.Args) == 1 && (strings.HasPrefix(d.Args[0], "http://") || strings.HasPrefix(d.Args[0], "https://") || strings.HasPrefix(d.Args[0], "$scheme")):
		a.code, a.location = 302, d.Args[0]
	case err != nil || code < 0 || code > 999:
		s.c.reject(d, "invalid return code %q", d.Args[0])
		return nil
	case code == 444:
		if err := s.need(CapReturn444); err != nil {
			return err
		}
		a.code = code
	case redirectCode(code) && len(d.Args) == 1:
		return blocking("return %d without a URL (no Location) is not translated", code)
	case code < 200 || code > 599:
		return blocking("return %d: edgeproxy answers with a status from 200 to 599 (or 444)", code)
	default:
		a.code = code
		if len(d.Args) == 2 {
			if redirectCode(code) {
				a.location = d.Args[1]
			} else {
				a.body = d.Args[1]
			}
		}
	}
	text := a.location + a.body
	text = strings.ReplaceAll(text, "$server_name", s.serverName())
	if err := checkVars(text); err != nil {
		return err
	}
	a.location = strings.ReplaceAll(a.location, "$server_name", s.serverName())
	a.body = strings.ReplaceAll(a.body, "$server_name", s.serverName())
	if s.loc == nil {
		s.srv.ret = &locScope{d: d, srv: s.srv, set: s.set, kind: locPrefix, path: "/", ret: a}
		return nil
	}
	// return runs in nginx's rewrite phase: the first one answers, before
	// any proxy_pass of the location.
	if s.loc.ret == nil {
		s.loc.ret = a
	}
	return nil
}

// serverName is nginx's $server_name: the server's first name.
func (s *scope) serverName() string {
	if s.srv != nil && len(s.srv.names) > 0 {
		return s.srv.names[0]
	}
	return ""
}

// carryRewrite translates server-level `rewrite REGEX URL permanent|redirect`
// (a redirect decided before any location) into a path_regex route.
func carryRewrite(s *scope, d *Directive) error {
	if len(d.Args) != 3 || (d.Args[2] != "permanent" && d.Args[2] != "redirect") {
		return blocking("only rewrite … permanent|redirect at server level is translated")
	}
	if s.loc != nil {
		return blocking("rewrite inside a location is not translated")
	}
	code := 301
	if d.Args[2] == "redirect" {
		code = 302
	}
	re, target := d.Args[0], d.Args[1]
	if err := compileRE2(re); err != nil {
		return err
	}
	target = strings.ReplaceAll(target, "$server_name", s.serverName())
	if err := checkVars(target); err != nil {
		return err
	}
	// nginx appends the request's arguments unless the target ends in "?".
	if strings.HasSuffix(target, "?") {
		target = strings.TrimSuffix(target, "?")
	} else if strings.Contains(target, "?") {
		target += "&$args"
	} else {
		return blocking("a redirect that keeps the query string needs $is_args, which edgeproxy lacks; end the target with \"?\" to drop the query")
	}
	a := &answer{code: code, location: target, d: d}
	// nginx makes a relative target absolute with the Host and its port.
	a.relative = !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "$scheme://")
	loc := &locScope{d: d, srv: s.srv, set: s.set, kind: locRegex, path: re, ret: a}
	s.srv.redirects = append(s.srv.redirects, loc)
	return nil
}

// carryErrorPage reads error_page CODE… [=[CODE]] URI|@name.
func carryErrorPage(s *scope, d *Directive) error {
	args := d.Args
	target := args[len(args)-1]
	codes := args[:len(args)-1]
	eq := ""
	if n := len(codes); n > 0 && strings.HasPrefix(codes[n-1], "=") {
		eq, codes = codes[n-1], codes[:n-1]
	}
	if len(codes) == 0 {
		s.c.reject(d, "invalid number of arguments in %q directive", d.Name)
		return nil
	}
	switch {
	case eq == "" && strings.HasPrefix(target, "/"):
	case eq == "=" && strings.HasPrefix(target, "@"):
	default:
		return blocking("only `error_page CODE… /path` and `error_page CODE… = @name` are translated")
	}
	for _, code := range codes {
		if n, err := strconv.Atoi(code); err != nil || n < 300 || n > 599 {
			s.c.reject(d, "value %q must be between 300 and 599", code)
			return nil
		}
		s.set.errorPages.add(errorPage{code: code, target: target, d: d})
	}
	return nil
}

func carryAddHeader(s *scope, d *Directive) error {
	always := len(d.Args) == 3
	if always && d.Args[2] != "always" {
		s.c.reject(d, "invalid parameter %q", d.Args[2])
		return nil
	}
	if err := checkHeaderName(d.Args[0]); err != nil {
		return err
	}
	if err := checkVars(d.Args[1]); err != nil {
		return err
	}
	s.set.addHeaders.add(addHeader{name: d.Args[0], value: d.Args[1], always: always, d: d})
	return nil
}

func carryExpires(s *scope, d *Directive) error {
	if len(d.Args) != 1 {
		return blocking("expires modified/access-based forms are not translated")
	}
	switch v := d.Args[0]; v {
	case "off":
		s.set.expires.put("", d)
	case "max":
		s.set.expires.put("87600h", d)
	case "epoch":
		return blocking("expires epoch is not translated")
	default:
		t, err := nginxDuration(strings.TrimPrefix(v, "+"))
		if err != nil {
			return blocking("expires %q is not translated", v)
		}
		s.set.expires.put(goDuration(t), d)
	}
	return nil
}

func carryDefaultType(s *scope, d *Directive) error {
	s.set.defaultType.put(d.Args[0], d)
	return nil
}
