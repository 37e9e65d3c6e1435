package nginx

import (
	"regexp"
	"strings"
)

// proxyTarget is what a proxy_pass names.
type proxyTarget struct {
	ups *upstreamBlock
	// uri is the URI part ("" when proxy_pass has none).
	uri string
	// proxyHost is nginx's $proxy_host, the Host it sends by default.
	proxyHost string
	d         *Directive
}

var singleVar = regexp.MustCompile(`^\$[A-Za-z0-9_]+$`)

var upstreamNameChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// carryProxyPass reads proxy_pass http://NAME[:PORT][/URI].
func carryProxyPass(s *scope, d *Directive) error {
	if s.kind == cLimit {
		return blocking("proxy_pass inside limit_except is not translated")
	}
	target := d.Args[0]
	if strings.Contains(target, "$") {
		return blocking("proxy_pass with variables is not translated")
	}
	var rest, scheme string
	switch {
	case strings.HasPrefix(target, "http://"):
		rest, scheme = target[len("http://"):], "http"
	case strings.HasPrefix(target, "https://"):
		if err := s.need(CapHTTPSServer); err != nil {
			return err
		}
		rest, scheme = target[len("https://"):], "https"
	default:
		s.c.reject(d, `invalid URL prefix in "%s"`, target)
		return nil
	}
	loc := s.loc
	var t *proxyTarget
	var uri string
	if sock, ok := strings.CutPrefix(rest, "unix:"); ok {
		// http://unix:/run/app.sock[:/uri]: nginx sends Host: localhost.
		if err := s.need(CapUnixServer); err != nil {
			return err
		}
		if i := strings.Index(sock, ":"); i >= 0 {
			sock, uri = sock[:i], sock[i+1:]
		}
		if scheme != "http" || !strings.HasPrefix(sock, "/") {
			return blocking("proxy_pass %s is not translated", target)
		}
		t = &proxyTarget{uri: uri, proxyHost: "localhost", d: d, ups: s.c.implicitUpstream("unix:"+sock, d)}
	} else {
		hostport := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			hostport, uri = rest[:i], rest[i:]
		}
		t = &proxyTarget{uri: uri, proxyHost: hostport, d: d}
		if u, ok := s.c.upstreams[hostport]; ok {
			t.ups = u
		} else {
			def := "80"
			if scheme == "https" {
				def = "443"
			}
			addr, err := hostPortDefault(hostport, def)
			if err != nil {
				return err
			}
			t.ups = s.c.implicitUpstream(addr, d)
		}
		if t.ups.scheme != "" && t.ups.scheme != scheme {
			return blocking("upstream %s is reached over both http and https; edgeproxy has one scheme per upstream", t.ups.name)
		}
		t.ups.scheme = scheme
	}
	if uri != "" && (loc.kind == locRegex || loc.kind == locNamed || loc.parent != nil) {
		s.c.reject(d, `"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block`)
		return nil
	}
	if uri != "" {
		switch {
		case uri == "/" && strings.HasSuffix(loc.path, "/") && loc.kind != locExact:
			// /app/x → /x: nginx replaces the prefix by "/", as strip_prefix does.
		case uri == loc.path:
			// The prefix replaced by itself: the path is unchanged.
			t.uri = ""
		case loc.kind == locPrefix || loc.kind == locStops || loc.kind == locExact:
			// Another URI replaces the prefix (or the exact path: a path_regex route with
			// rewrite, decided when the server's routes are known.
			// An exact location's URI is all of the path: nginx sends
			// the URI part alone.
			if err := s.need(CapPathRegex, CapRewrite); err != nil {
				return blocking("proxy_pass with URI part %q replaces the location's prefix %q; %s", uri, loc.path, err.(*notCarried).why)
			}
		default:
			return blocking("proxy_pass with URI part %q in a %s location is not translated", uri, loc.kind)
		}
	}
	loc.proxy = t
	return nil
}

// implicitUpstream is the upstream a proxy_pass to an address makes.
func (c *converter) implicitUpstream(addr string, d *Directive) *upstreamBlock {
	name := upstreamNameChars.ReplaceAllString(strings.Trim(addr, "[]"), "_")
	name = strings.Trim(strings.ReplaceAll(name, ":", "_"), "_")
	if u, ok := c.upstreams[name]; ok {
		return u
	}
	u := newUpstream(name, d)
	u.implicit = true
	u.servers = []string{addr}
	c.upstreams[name] = u
	c.upOrder = append(c.upOrder, u)
	return u
}

// Headers edgeproxy sets to the upstream itself (SPEC §4), with the value
// nginx configs give them for the same meaning.
var ownHeaders = map[string][]string{
	"x-forwarded-for":   {"$proxy_add_x_forwarded_for"},
	"x-forwarded-proto": {"$scheme"},
	"x-forwarded-host":  {"$host", "$http_host"},
	"x-request-id":      {"$request_id"},
}

// carryProxySetHeader records the header; what it becomes is decided per
// route (routeHeaders), since a location inherits only if it sets none.
func carryProxySetHeader(s *scope, d *Directive) error {
	name, v := d.Args[0], d.Args[1]
	if err := checkHeaderName(name); err != nil {
		return err
	}
	lname := strings.ToLower(name)
	switch {
	case lname == "host":
		switch v {
		case "$host", "$http_host", "$proxy_host":
		default:
			if err := checkVars(v); err != nil {
				return err
			}
			if strings.Contains(v, "$") {
				if err := s.need(CapRequestHeaders); err != nil {
					return err
				}
			}
		}
	case lname == "upgrade" && v == "$http_upgrade",
		lname == "connection" && (v == "" || strings.EqualFold(v, "upgrade") || s.c.isUpgradeMap(v)):
		if lname != "connection" || v != "" {
			if err := s.need(CapWebsocket); err != nil {
				return err
			}
		}
	case contains(ownHeaders[lname], v):
	default:
		if err := s.need(CapRequestHeaders); err != nil {
			return err
		}
		if err := checkVars(v); err != nil {
			if !singleVar.MatchString(v) {
				return err
			}
			// Perhaps an auth_request_set variable: authKeys decides.
			s.set.proxyHeaders.add(header{name: name, value: v, d: d, authVar: true})
			return nil
		}
	}
	s.set.proxyHeaders.add(header{name: name, value: v, d: d})
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func carryReadTimeout(s *scope, d *Directive) error {
	t, err := nginxDuration(d.Args[0])
	if err != nil || t <= 0 {
		s.c.reject(d, "invalid value %q", d.Args[0])
		return nil
	}
	s.set.readTimeout.put(goDuration(t), d)
	return nil
}

func carryConnectTimeout(s *scope, d *Directive) error {
	t, err := nginxDuration(d.Args[0])
	if err != nil || t <= 0 {
		s.c.reject(d, "invalid value %q", d.Args[0])
		return nil
	}
	s.set.connectTimeout.put(goDuration(t), d)
	return nil
}

func carryRequestBuffering(s *scope, d *Directive) error {
	on, err := onOff(s, d)
	if err != nil {
		return err
	}
	s.set.bufferRequest.put(on, d)
	return nil
}

func carryHideHeader(s *scope, d *Directive) error {
	if err := checkHeaderName(d.Args[0]); err != nil {
		return err
	}
	s.set.hideHeaders.add(header{name: d.Args[0], d: d})
	return nil
}

func carryIntercept(s *scope, d *Directive) error {
	on, err := onOff(s, d)
	if err != nil {
		return err
	}
	s.set.intercept.put(on, d)
	return nil
}

func carryProxyRedirect(s *scope, d *Directive) error {
	if len(d.Args) == 1 && (d.Args[0] == "off" || d.Args[0] == "default") {
		if d.Args[0] == "default" && s.loc != nil && s.loc.proxy != nil && s.loc.proxy.uri != "" {
			return blocking("edgeproxy does not rewrite Location headers from the upstream")
		}
		return nil
	}
	return blocking("edgeproxy does not rewrite Location headers from the upstream")
}

func carryNextUpstream(s *scope, d *Directive) error {
	for _, a := range d.Args {
		if a != "error" && a != "timeout" {
			return blocking("edgeproxy retries on connection errors and timeouts only (got %q)", a)
		}
	}
	return nil
}

// onOff reads an on|off argument; anything else nginx rejects.
func onOff(s *scope, d *Directive) (bool, error) {
	switch d.Args[0] {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	s.c.reject(d, `invalid value %q in %q directive, it must be "on" or "off"`, d.Args[0], d.Name)
	return false, errReported
}
