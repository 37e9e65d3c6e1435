package nginx

import (
	"fmt"
	"strings"
)

// carryAuthRequest: `auth_request URI | off`. The URI is resolved to its
// location when the routes are written (authKeys): the location may stand
// anywhere in the server.
func carryAuthRequest(s *scope, d *Directive) error {
	if d.Args[0] != "off" && !strings.HasPrefix(d.Args[0], "/") {
		return blocking("auth_request %s: only a path of this server is translated", d.Args[0])
	}
	s.set.authRequest.put(d.Args[0], d)
	return nil
}

// carryAuthRequestSet: `auth_request_set $var $upstream_http_NAME` is the
// auth answer's header NAME, which copy_headers copies into the request
// where a proxy_set_header sends $var under that same name.
func carryAuthRequestSet(s *scope, d *Directive) error {
	name, v := strings.TrimPrefix(d.Args[0], "$"), d.Args[1]
	h, ok := strings.CutPrefix(v, "$upstream_http_")
	if !ok || h == "" || strings.ContainsAny(h, "$ {}") || !strings.HasPrefix(d.Args[0], "$") {
		return blocking("only `auth_request_set $var $upstream_http_NAME` is carried (as copy_headers)")
	}
	s.set.authSets.add(header{name: name, value: strings.ReplaceAll(h, "_", "-"), d: d})
	return nil
}

// carryPassRequestBody: `off` is what edgeproxy's auth sub-request does
// (no body); anywhere else edgeproxy forwards the body (checked in
// finish, once the auth_request locations are known).
func carryPassRequestBody(s *scope, d *Directive) error {
	if d.Args[0] == "on" {
		return nil
	}
	if s.kind != cLocation || s.loc == nil {
		return blocking("edgeproxy always forwards the client's body")
	}
	s.loc.noBody = d
	return nil
}

// authSubHeaders are proxy_set_header lines of an auth location that
// edgeproxy's sub-request already sends as they say.
var authSubHeaders = map[string]string{
	"content-length":    "",
	"x-original-uri":    "$request_uri",
	"x-original-method": "$request_method",
}

// authLocation finds the location an auth_request URI lands in: an exact
// location first, then the longest prefix (nginx tries regexes in between;
// a server with regex locations is checked for them matching too).
func authLocation(srv *serverScope, uri string) *locScope {
	var best *locScope
	for _, l := range srv.locs {
		switch {
		case l.kind == locExact && l.path == uri:
			return l
		case (l.kind == locPrefix || l.kind == locStops) && strings.HasPrefix(uri, l.path):
			if best == nil || len(l.path) > len(best.path) {
				best = l
			}
		}
	}
	return best
}

// authKeys writes the route's auth_request (nginx runs it after `return`,
// so a return route gets none) and turns proxy_set_header lines that send
// an auth_request_set variable into copy_headers.
func (c *converter) authKeys(f *fields, set *settings, loc *locScope, host string) {
	_, ret := f.get("return")
	_, proxied := f.get("upstream")
	if ret {
		return
	}
	var authVars []header
	for _, h := range set.proxyHeaders.items {
		if h.authVar {
			authVars = append(authVars, h)
		}
	}
	on := set.authRequest.set && set.authRequest.v != "off"
	if !on {
		if proxied {
			for _, h := range authVars {
				c.once(h.d, host, Blocking, fmt.Sprintf("variable %s has no edgeproxy equivalent", h.value))
			}
		}
		return
	}
	d := set.authRequest.d
	uri := set.authRequest.v
	target := authLocation(loc.srv, uri)
	if target == nil || target.proxy == nil {
		c.once(d, host, Blocking, fmt.Sprintf("auth_request %s: no exact or prefix location with proxy_pass takes that path; edgeproxy's auth_request asks an upstream", uri))
		return
	}
	if hasRegex(loc.srv) && target.kind != locExact && target.kind != locStops {
		c.once(d, host, Blocking, fmt.Sprintf("auth_request %s: a regex location of this server may take that path first", uri))
		return
	}
	for _, h := range target.set.proxyHeaders.items {
		ln := strings.ToLower(h.name)
		if v, ok := authSubHeaders[ln]; ok && v == h.value || ln == "host" || contains(ownHeaders[ln], h.value) {
			continue
		}
		c.once(h.d, host, Blocking, "edgeproxy's auth sub-request sends the request's own headers (plus X-Original-URI, X-Original-Method); this header is not set on it")
	}
	p := target.proxy
	if !c.authHost(p, target.set, d, host) {
		return
	}
	path := uri
	if p.uri != "" {
		path = p.uri + strings.TrimPrefix(uri, target.path)
	}
	p.ups.used = true
	ar := &inline{}
	ar.set("upstream", p.ups.name)
	ar.set("path", path)
	var copied []string
	for _, h := range authVars {
		name := strings.TrimPrefix(h.value, "$")
		found := false
		for _, a := range set.authSets.items {
			if a.name != name {
				continue
			}
			found = true
			if strings.EqualFold(a.value, h.name) {
				copied = append(copied, h.name)
			} else {
				c.once(h.d, host, Blocking, fmt.Sprintf("edgeproxy copies the auth answer's %s under its own name, not as %s", a.value, h.name))
			}
		}
		if !found {
			c.once(h.d, host, Blocking, fmt.Sprintf("variable %s has no edgeproxy equivalent", h.value))
		}
	}
	if len(copied) > 0 {
		ar.set("copy_headers", copied)
	}
	timeout := nginxReadTimeout
	if target.set.readTimeout.set {
		timeout = target.set.readTimeout.v
	}
	ar.set("timeout", timeout)
	f.set("auth_request", ar)
	if c.authTargets == nil {
		c.authTargets = map[*locScope]bool{}
	}
	c.authTargets[target] = true
}

// bodyOff reports proxy_pass_request_body off outside auth locations.
func (c *converter) bodyOff() {
	for _, s := range c.servers {
		for _, l := range s.locs {
			if l.noBody != nil && !c.authTargets[l] {
				c.report(l.noBody, Blocking, "edgeproxy always forwards the client's body (off is carried only in a location auth_request asks)")
			}
		}
	}
}

// authHost notes the Host nginx's auth sub-request sends: the auth
// location's proxy_set_header Host, else $proxy_host. edgeproxy's
// sub-request sends the auth upstream's host.
func (c *converter) authHost(p *proxyTarget, set *settings, d *Directive, host string) bool {
	mode := p.proxyHost
	for _, h := range set.proxyHeaders.items {
		if !strings.EqualFold(h.name, "host") {
			continue
		}
		switch {
		case h.value == "$http_host":
			mode = "preserve"
		case h.value == "$proxy_host":
		case strings.Contains(h.value, "$"):
			c.once(h.d, host, Blocking, "edgeproxy's auth sub-request sends the auth upstream's host: the client's Host or a fixed name, not "+h.value)
			return false
		default:
			mode = h.value
		}
	}
	u := p.ups
	if u.authHost != "" && u.authHost != mode {
		c.once(d, host, Blocking, fmt.Sprintf("edgeproxy's auth sub-requests to %s send one Host; another auth_request sends %q", u.name, u.authHost))
		return false
	}
	u.authHost, u.authHostD = mode, d
	return true
}

// authHosts gives each auth upstream the Host nginx's sub-request sends,
// unless a route relies on the upstream's host being another.
func (c *converter) authHosts() {
	for _, u := range c.upOrder {
		switch {
		case u.authHost == "" || u.authHost == u.host:
		case u.host == "" || u.host == "preserve" && !u.preserveUsed && u.authHost != "preserve":
			u.host = u.authHost
		default:
			c.report(u.authHostD, Blocking, "nginx's auth sub-request sends Host %s; edgeproxy's sends the auth upstream's host, which %s needs to be %q for its other routes", u.authHost, u.name, u.host)
		}
	}
}
