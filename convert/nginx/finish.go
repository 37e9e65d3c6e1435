package nginx

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// nginx's defaults, written out so that edgeproxy's own (which differ)
// do not silently take their place.
const (
	nginxMaxBody     = "1MiB" // client_max_body_size 1m
	nginxReadTimeout = "1m"   // proxy_read_timeout 60s
	nginxConnect     = "1m"   // proxy_connect_timeout 60s
	nginxIdle        = "75s"
	defaultPort      = "80"
)

type routeOut struct {
	comment string
	f       fields
	// accessLogD is the access_log off the route's access_log key is from.
	accessLogD *Directive
	// late: a prefix location written as a path_regex; it goes after the
	// server's own regex routes, which nginx tries before any prefix.
	late bool
}

// output is what finish assembles before writing it.
type output struct {
	server fields
	log    fields
	routes []*routeOut
}

var validHostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]+)?$`)

// finish turns the servers read into TOML.
func (c *converter) finish() []byte {
	var o output
	o.server.set("listen", "0.0.0.0:"+defaultPort)
	servers := c.serversOnPort(&o)
	if len(servers) > 0 {
		c.serverSettings(&o, servers[0])
	}
	hosts := c.hostsFor(servers)
	gz := c.compressionFor(servers)
	c.gz = gz
	for _, srv := range servers {
		var late []*routeOut
		for _, loc := range c.routeSources(srv) {
			for _, h := range hosts[srv] {
				r := c.route(&o, srv, loc, h, gz)
				switch {
				case r == nil:
				case r.late:
					late = append(late, r)
				default:
					o.routes = append(o.routes, r)
				}
			}
		}
		o.routes = append(o.routes, late...)
	}
	c.bodyOff()
	c.authHosts()
	c.accessLog(&o)
	return c.write(&o)
}

// serversOnPort picks the port most servers listen on (edgeproxy has one
// listener) and reports the listens and servers left out.
func (c *converter) serversOnPort(o *output) []*serverScope {
	count := map[string]int{}
	var order []string
	for _, s := range c.servers {
		if len(s.listens) == 0 {
			s.listens = []listenSpec{{port: defaultPort, d: s.d}}
		}
		seen := map[string]bool{}
		for _, l := range s.listens {
			if !seen[l.port] {
				seen[l.port] = true
				if count[l.port] == 0 {
					order = append(order, l.port)
				}
				count[l.port]++
			}
		}
	}
	if len(order) == 0 {
		return nil
	}
	port := order[0]
	for _, p := range order {
		if count[p] > count[port] {
			port = p
		}
	}
	var on []*serverScope
	hostsSeen := map[string]bool{}
	ssl := false
	for _, s := range c.servers {
		in := false
		for _, l := range s.listens {
			if l.port != port {
				c.report(l.d, Blocking, "edgeproxy has one listener, on port %s; this server's port %s is not served", port, l.port)
				continue
			}
			in = true
			hostsSeen[l.host] = true
			ssl = ssl || l.ssl
		}
		ssl = ssl || in && s.sslOn
		if in && !s.namesBad {
			on = append(on, s)
		}
	}
	host := "0.0.0.0"
	if len(hostsSeen) == 1 {
		for h := range hostsSeen {
			if h != "" {
				host = h
			}
		}
	}
	if hostsSeen["[::]"] {
		host = ""
	}
	if strings.HasPrefix(host, "[") || !strings.Contains(host, ":") {
		o.server.set("listen", host+":"+port)
	} else {
		o.server.set("listen", "["+host+"]:"+port)
	}
	if ssl {
		c.tls(o, on)
	}
	return on
}

// tls sets the one certificate edgeproxy serves.
func (c *converter) tls(o *output, on []*serverScope) {
	cert, key := c.httpCert, c.httpKey
	for _, s := range on {
		sc, sk := cert, key
		if s.cert.set {
			sc = s.cert
		}
		if s.key.set {
			sk = s.key
		}
		if !sc.set || !sk.set {
			continue
		}
		if v, ok := o.server.get("tls_cert_file"); ok {
			if v != sc.v {
				c.report(sc.d, Blocking, "edgeproxy serves one certificate; %s is left out (no SNI choice)", sc.v)
			}
			continue
		}
		o.server.set("tls_cert_file", sc.v)
		o.server.set("tls_key_file", sk.v)
	}
	if _, ok := o.server.get("tls_cert_file"); !ok && len(on) > 0 {
		c.report(on[0].d, Blocking, "listen … ssl without ssl_certificate and ssl_certificate_key")
	}
}

// serverSettings are the [server] keys, from the first server's
// effective settings; routes whose own differ carry them per route.
func (c *converter) serverSettings(o *output, first *serverScope) {
	set := first.set
	body := nginxMaxBody
	if set.maxBody.set {
		body = set.maxBody.v
		if body == "" {
			body = "1TiB" // client_max_body_size 0: unlimited
		}
	}
	o.server.set("max_body_bytes", body)
	idle := nginxIdle
	if set.idleTimeout.set {
		idle = set.idleTimeout.v
	}
	o.server.set("idle_timeout", idle)
	for _, s := range c.servers[1:] {
		if s.set.idleTimeout.set && s.set.idleTimeout.v != idle && s.set.idleTimeout.d != set.idleTimeout.d {
			c.report(s.set.idleTimeout.d, Blocking, "edgeproxy has one client keep-alive timeout; %s from the first server is used", idle)
		}
	}
	if len(set.realIPFrom.items) > 0 {
		if !set.realIPHeader.set {
			c.report(set.realIPFrom.items[0].d, Blocking, "nginx reads the address from X-Real-IP without real_ip_header; edgeproxy reads X-Forwarded-For")
		} else {
			var cidrs []string
			for _, h := range set.realIPFrom.items {
				cidrs = append(cidrs, h.value)
			}
			o.server.set("trusted_proxies", cidrs)
		}
	}
	if c.resolver.set {
		o.server.set("resolver", c.resolver.v)
	}
}

// hostsFor gives each server the host values of its routes. One server
// answers every Host, as nginx's only server does; with several, the
// default server keeps host "" only when every other server routes each of
// its paths too (else its routes would win requests nginx gave another).
func (c *converter) hostsFor(servers []*serverScope) map[*serverScope][]string {
	out := map[*serverScope][]string{}
	if len(servers) == 0 {
		return out
	}
	if len(servers) == 1 {
		out[servers[0]] = []string{""}
		return out
	}
	def := servers[0]
	for _, s := range servers {
		for _, l := range s.listens {
			if l.def {
				def = s
			}
		}
	}
	for _, s := range servers {
		if s == def {
			continue
		}
		if len(s.names) == 0 {
			c.report(s.d, Blocking, "a server without server_name that is not the default server is left out")
			continue
		}
		out[s] = s.names
	}
	keys := func(s *serverScope) map[string]bool {
		m := map[string]bool{}
		for _, l := range c.routeSources(s) {
			m[l.kind+" "+l.path] = true
		}
		return m
	}
	catchAll := true
	own := keys(def)
	for s := range out {
		other := keys(s)
		for k := range own {
			if !other[k] {
				catchAll = false
			}
		}
	}
	switch {
	case catchAll:
		out[def] = []string{""}
	case len(def.names) > 0:
		c.report(def.d, Blocking, "requests for host names no server_name lists went to this default server in nginx; edgeproxy answers them 404 (its routes get host = its names)")
		out[def] = def.names
	default:
		c.report(def.d, Blocking, "this default server has no server_name and its paths differ from the other servers'; its routes are left out")
	}
	return out
}

// routeSources lists what becomes a route, in the order edgeproxy tries
// routes of one host and path: the server-level return alone; else the
// server's redirecting rewrites, then each location's `if` copies before it.
func (c *converter) routeSources(s *serverScope) []*locScope {
	if s.sources != nil {
		return s.sources
	}
	if s.ret != nil {
		s.sources = []*locScope{s.ret}
		return s.sources
	}
	out := append([]*locScope(nil), s.redirects...)
	for _, l := range s.locs {
		out = append(out, l.ifs...)
		if r := c.slashRedirect(s, l); r != nil {
			out = append(out, r)
		}
		out = append(out, l)
	}
	s.sources = out
	return out
}

// slashRedirect is nginx's answer to "/app" for `location /app/ { proxy_pass … }`:
// a 301 to "/app/" (unless a location names "/app" itself).
func (c *converter) slashRedirect(s *serverScope, l *locScope) *locScope {
	if l.proxy == nil || l.ret != nil || (l.kind != locPrefix && l.kind != locStops) || len(l.path) < 2 || !strings.HasSuffix(l.path, "/") {
		return nil
	}
	bare := strings.TrimSuffix(l.path, "/")
	for _, o := range s.locs {
		if (o.kind == locExact || o.kind == locPrefix || o.kind == locStops) && o.path == bare {
			return nil
		}
	}
	if !c.caps.Has(CapPathExact, CapReturn) {
		c.once(l.d, "", Blocking, fmt.Sprintf("nginx answers %s with a 301 to %s; %s", bare, l.path, missingCaps(c.caps.Missing(CapPathExact, CapReturn)).why))
		return nil
	}
	return &locScope{d: l.d, srv: s, set: s.set, kind: locExact, path: bare,
		ret: &answer{code: 301, location: l.path, relative: true, d: l.d}}
}

// redirectBase is how nginx makes a redirect absolute: the Host name, and
// the port unless it is the scheme's own (port_in_redirect on).
func redirectBase(s *serverScope) string {
	port := ":$server_port"
	for _, ls := range s.listens {
		if ls.port == "80" && !ls.ssl || ls.port == "443" && ls.ssl {
			port = ""
		}
	}
	return "$scheme://$host" + port
}

func hasRegex(s *serverScope) bool {
	for _, l := range s.locs {
		if l.kind == locRegex {
			return true
		}
	}
	return len(s.redirects) > 0
}

// gzipPlan is the one [compression] table.
type gzipPlan struct {
	enabled bool
	types   []string
	min     int
	level   string
}

func (c *converter) compressionFor(servers []*serverScope) *gzipPlan {
	g := &gzipPlan{types: []string{"text/html"}, min: 20, level: "default"}
	var from *settings
	for _, s := range servers {
		for _, l := range c.routeSources(s) {
			if l.set.gzip.set && l.set.gzip.v {
				g.enabled = true
				if from == nil {
					from = l.set
				}
			}
		}
	}
	if from != nil {
		if from.gzipTypes.set {
			g.types = from.gzipTypes.v
		}
		if from.gzipMinLength.set {
			g.min = from.gzipMinLength.v
		}
		if from.gzipLevel.set {
			g.level = from.gzipLevel.v
		}
	}
	return g
}

// route builds one [[routes]] entry, or reports why there is none.
func (c *converter) route(o *output, srv *serverScope, loc *locScope, host string, gz *gzipPlan) *routeOut {
	r := &routeOut{comment: fmt.Sprintf("%s %s", loc.d.Where(), strings.TrimSpace(loc.d.Name+" "+strings.Join(loc.d.Args, " ")))}
	f := &r.f
	f.set("host", host)
	switch loc.kind {
	case locPrefix, locStops:
		f.set("path_prefix", loc.path)
		if loc.kind == locStops && hasRegex(srv) {
			if !c.caps.Has(CapRegexStops) {
				c.once(loc.d, host, Blocking, missingCaps(c.caps.Missing(CapRegexStops)).why+"; the ^~ location is left out")
				return nil
			}
			f.set("regex_stops", true)
		}
	case locExact:
		f.set("path_exact", loc.path)
	case locRegex:
		f.set("path_regex", loc.path)
		if loc.caseFold {
			f.set("case_insensitive", true)
		}
	case locNamed:
		f.set("name", loc.path)
	}
	if loc.match != nil {
		f.set("match", loc.match)
	}
	if len(loc.methods) > 0 {
		f.set("methods", loc.methods)
	}
	if loc.internal {
		f.set("internal", true)
	}
	set := loc.set
	proxy, ret := loc.proxy, loc.ret
	if loc.parent != nil && proxy == nil && ret == nil {
		proxy, ret = loc.parent.proxy, loc.parent.ret
	}
	switch {
	case ret != nil:
		if ret.relative {
			abs := *ret
			abs.location = redirectBase(srv) + ret.location
			ret = &abs
		}
		c.returnKeys(f, set, ret)
	case proxy != nil:
		if proxy.uri != "" && proxy.uri != "/" && !c.prefixAsRegex(r, srv, loc, proxy, host) {
			return nil
		}
		if !c.proxyKeys(o, f, set, proxy, host) {
			return nil
		}
	case set.root.set || set.tryFiles.set:
		need := []Capability{CapRoot}
		if set.tryFiles.set {
			need = append(need, CapTryFiles)
		}
		if set.expires.set {
			need = append(need, CapExpires)
		}
		if !c.caps.Has(need...) {
			c.once(loc.d, host, Blocking, missingCaps(c.caps.Missing(need...)).why+"; this location serves files")
			return nil
		}
		if st, err := os.Stat(set.root.v); err != nil || !st.IsDir() {
			c.once(loc.d, host, Blocking, fmt.Sprintf("root %s is not a folder here, and edgeproxy -t checks it", set.root.v))
			return nil
		}
		f.set("root", set.root.v)
		if set.tryFiles.set {
			f.set("try_files", set.tryFiles.v)
		}
		if set.index.set {
			f.set("index", set.index.v)
		}
		if set.expires.set && set.expires.v != "" {
			f.set("expires", set.expires.v)
		}
	default:
		c.once(loc.d, host, Blocking, "no proxy_pass, return or root here: nginx serves files from its default root, edgeproxy has no route for it")
		return nil
	}
	c.limitKeys(o, f, set, proxy != nil && ret == nil, gz, loc, host)
	r.accessLogD = set.accessLog.d
	return r
}

// prefixAsRegex writes `location /api/ { proxy_pass http://b/v2/; }` as
// path_regex "^/api/(.*)$" with rewrite "/v2/$1", tried after the server's
// regex routes as nginx tries a prefix after its regexes. It is exact only
// if no longer plain prefix sits under it (nginx would pick that one, the
// regex would win in edgeproxy) and, for ^~, if the server has no regexes.
func (c *converter) prefixAsRegex(r *routeOut, srv *serverScope, loc *locScope, p *proxyTarget, host string) bool {
	if loc.kind == locStops && hasRegex(srv) {
		c.once(p.d, host, Blocking, "a ^~ location whose proxy_pass replaces the prefix cannot keep its precedence over regex locations")
		return false
	}
	if loc.kind == locExact {
		return c.exactAsRegex(r, srv, loc, p, host)
	}
	for _, o := range srv.locs {
		if o != loc && (o.kind == locPrefix || o.kind == locStops) && len(o.path) > len(loc.path) && strings.HasPrefix(o.path, loc.path) {
			c.once(p.d, host, Blocking, fmt.Sprintf("proxy_pass with URI part %q replaces the prefix %q; the longer location %s under it rules out writing it as a regex route", p.uri, loc.path, o.path))
			return false
		}
	}
	f := &r.f
	delete(f.vals, "path_prefix")
	f.keys = without(f.keys, "path_prefix")
	f.set("path_regex", "^"+regexp.QuoteMeta(loc.path)+"(.*)$")
	f.set("rewrite", p.uri+"$1")
	r.late = true
	return true
}

// exactAsRegex writes `location = /auth { proxy_pass http://b/verify; }`
// as path_regex "^/auth$" with rewrite "/verify". A regex route beats
// every plain prefix, as nginx's exact location does; it is exact only
// where no regex or ^~ location could take the path first.
func (c *converter) exactAsRegex(r *routeOut, srv *serverScope, loc *locScope, p *proxyTarget, host string) bool {
	for _, o := range srv.locs {
		if o.kind == locRegex || o.kind == locStops && strings.HasPrefix(loc.path, o.path) {
			c.once(p.d, host, Blocking, fmt.Sprintf("proxy_pass with URI part %q in an exact location is written as a regex route, which location %s could take first", p.uri, o.path))
			return false
		}
	}
	f := &r.f
	delete(f.vals, "path_exact")
	f.keys = without(f.keys, "path_exact")
	f.set("path_regex", "^"+regexp.QuoteMeta(loc.path)+"$")
	f.set("rewrite", p.uri)
	return true
}

// once reports a finding about a location a single time, not per host.
func (c *converter) once(d *Directive, host string, st Status, why string) {
	for _, f := range c.findings {
		if f.File == d.File && f.Line == d.Line && f.Directive == d.Name && f.Why == why {
			return
		}
	}
	c.report(d, st, "%s", why)
}

func (c *converter) returnKeys(f *fields, set *settings, a *answer) {
	f.set("return", a.code)
	if a.location != "" {
		f.set("location", a.location)
	}
	if a.body != "" {
		f.set("body", a.body)
		ct := "text/plain"
		if set.defaultType.set {
			ct = set.defaultType.v
		}
		f.set("content_type", ct)
	}
}

// proxyKeys writes upstream, strip_prefix, timeout and the request
// headers, and settles the upstream's Host and connect timeout.
func (c *converter) proxyKeys(o *output, f *fields, set *settings, p *proxyTarget, host string) bool {
	u := p.ups
	if len(u.servers) == 0 {
		c.once(p.d, host, Blocking, fmt.Sprintf("upstream %s has no server edgeproxy can send to", u.name))
		return false
	}
	u.used = true
	f.set("upstream", u.name)
	if p.uri == "/" {
		f.set("strip_prefix", true)
	}
	timeout := nginxReadTimeout
	if set.readTimeout.set {
		timeout = set.readTimeout.v
	}
	f.set("timeout", timeout)
	connect := nginxConnect
	if set.connectTimeout.set {
		connect = set.connectTimeout.v
	}
	if u.connect == "" {
		u.connect, u.connectD = connect, set.connectTimeout.d
	} else if u.connect != connect && set.connectTimeout.d != nil {
		c.once(set.connectTimeout.d, host, Blocking, fmt.Sprintf("edgeproxy keeps connect_timeout per upstream; %s already has %s", u.name, u.connect))
	}

	hostMode := p.proxyHost // nginx's default: proxy_set_header Host $proxy_host
	var hostD *Directive
	reqSet, reqRemove := strMap{}, []string{}
	upgrade, connection := false, false
	for _, h := range set.proxyHeaders.items {
		ln := strings.ToLower(h.name)
		switch {
		case ln == "host":
			hostD = h.d
			switch h.value {
			case "$http_host":
				hostMode = "preserve"
			case "$proxy_host":
				hostMode = p.proxyHost
			default:
				hostMode = h.value
			}
		case ln == "upgrade" && h.value == "$http_upgrade":
			upgrade = true
		case ln == "connection" && h.value == "":
		case ln == "connection":
			connection = true
		case h.authVar:
		case contains(ownHeaders[ln], h.value):
		case h.value == "":
			reqRemove = append(reqRemove, h.name)
		default:
			reqSet[h.name] = h.value
		}
	}
	if !c.hostKeys(u, p, hostMode, hostD, reqSet, host) {
		return false
	}
	if _, realIP := o.server.get("trusted_proxies"); realIP {
		for _, h := range set.proxyHeaders.items {
			if strings.EqualFold(h.name, "X-Forwarded-For") && h.value == "$proxy_add_x_forwarded_for" {
				c.once(h.d, host, Blocking, "with set_real_ip_from nginx appends the real client address to X-Forwarded-For, edgeproxy appends the address of the peer (the trusted proxy)")
			}
		}
	}
	if len(reqSet) > 0 || len(reqRemove) > 0 {
		rh := &inline{}
		rh.set("set", reqSet)
		if len(reqRemove) > 0 {
			sort.Strings(reqRemove)
			rh.set("remove", reqRemove)
		}
		f.set("request_headers", rh)
	}
	if c.caps.Accepts(CapWebsocket) {
		// nginx tunnels only where the config copies Upgrade and Connection.
		f.set("websocket", upgrade && connection && c.caps.Has(CapWebsocket))
	}
	if set.bufferRequest.set && !set.bufferRequest.v {
		f.set("buffer_request", false)
	}
	return true
}

// hostKeys settles the Host nginx sends: with routes.request_headers as a
// header of the route (so locations sharing an upstream may differ);
// without it as the upstream's host, which must then agree.
func (c *converter) hostKeys(u *upstreamBlock, p *proxyTarget, hostMode string, hostD *Directive, reqSet strMap, host string) bool {
	d := hostD
	if d == nil {
		d = p.d
	}
	if c.caps.Has(CapRequestHeaders) {
		u.host = "preserve"
		u.preserveUsed = u.preserveUsed || hostMode == "preserve"
		if hostMode != "preserve" {
			reqSet["Host"] = hostMode
		}
		return true
	}
	if hostMode == "$host" {
		c.once(d, host, Blocking, "nginx's $host drops a port the client sends in Host; "+missingCaps(c.caps.Missing(CapRequestHeaders)).why)
		return false
	}
	if hostMode != "preserve" && !validHostName.MatchString(hostMode) {
		c.once(d, host, Blocking, fmt.Sprintf("nginx sends Host: %s, which is not a host name edgeproxy's upstream host can send; %s", hostMode, missingCaps(c.caps.Missing(CapRequestHeaders)).why))
		return false
	}
	if u.host == "" {
		u.host, u.hostD = hostMode, hostD
	} else if u.host != hostMode {
		c.once(d, host, Blocking, fmt.Sprintf("edgeproxy sends one Host per upstream; %s already sends %q", u.name, u.host))
		return false
	}
	return true
}

// errorPageFile finds the file nginx serves for an error_page URI: the
// root of the location that URI matches (exact first, then the longest
// prefix), or the server's root.
func (c *converter) errorPageFile(s *serverScope, uri string) (string, bool) {
	var best *locScope
	for _, l := range append(append([]*locScope(nil), s.locs...), s.unrouted...) {
		switch {
		case l.kind == locExact && l.path == uri:
			best = l
		case (l.kind == locPrefix || l.kind == locStops) && strings.HasPrefix(uri, l.path):
			if best == nil || best.kind != locExact && len(l.path) > len(best.path) {
				best = l
			}
		}
		if best != nil && best.kind == locExact {
			break
		}
	}
	set := s.set
	if best != nil {
		if best.proxy != nil || best.ret != nil {
			return "", false
		}
		set = best.set
	}
	if !set.root.set {
		return "", false
	}
	file := set.root.v + uri
	if _, err := os.Stat(file); err != nil {
		return "", false
	}
	return file, true
}

// limitKeys writes the per-route rules every kind of route shares.
func (c *converter) limitKeys(o *output, f *fields, set *settings, proxied bool, gz *gzipPlan, loc *locScope, host string) {
	body := nginxMaxBody
	if set.maxBody.set {
		body = set.maxBody.v
	}
	if sb, _ := o.server.get("max_body_bytes"); body != sb && !(body == "" && sb == "1TiB") {
		if c.caps.Has(CapRouteMaxBody) {
			if body == "" {
				body = "0"
			}
			f.set("max_body_bytes", body)
		} else {
			c.once(set.maxBody.d, host, Blocking, missingCaps(c.caps.Missing(CapRouteMaxBody)).why)
		}
	}
	if len(set.access.items) > 0 {
		var acc []string
		for _, a := range set.access.items {
			acc = append(acc, a.name+" "+a.value)
		}
		f.set("access", acc)
	}
	if set.authRealm.set && set.authRealm.v != "" && set.authFile.set {
		if _, err := os.Stat(set.authFile.v); err != nil {
			c.once(set.authFile.d, host, Blocking, fmt.Sprintf("%s cannot be read here, and edgeproxy -t checks it: %v", set.authFile.v, err))
		} else {
			f.set("basic_auth_file", set.authFile.v)
			f.set("realm", set.authRealm.v)
		}
	}
	if len(set.addHeaders.items) > 0 || len(set.hideHeaders.items) > 0 {
		rh := &inline{}
		add := strMap{}
		always := false
		for i, h := range set.addHeaders.items {
			if i == 0 {
				always = h.always
			} else if h.always != always {
				c.once(h.d, host, Blocking, "edgeproxy has one `always` per route; this add_header differs from the route's first")
				continue
			}
			if _, dup := add[h.name]; dup {
				c.once(h.d, host, Blocking, "a second add_header of the same name is not translated")
				continue
			}
			add[h.name] = h.value
		}
		if len(add) > 0 {
			rh.set("add", add)
		}
		if len(set.hideHeaders.items) > 0 {
			var rm []string
			for _, h := range set.hideHeaders.items {
				rm = append(rm, h.name)
			}
			rh.set("remove", rm)
		}
		if always {
			rh.set("always", true)
		}
		f.set("response_headers", rh)
	}
	if proxied && set.expires.set && set.expires.v != "" {
		c.once(set.expires.d, host, Blocking, "expires on proxied answers is not translated (edgeproxy's expires is for file routes)")
	}
	if gz.enabled && !(set.gzip.set && set.gzip.v) {
		f.set("compress", false)
	}
	if len(set.errorPages.items) > 0 {
		ep := strMap{}
		for _, e := range set.errorPages.items {
			target := e.target
			if !strings.HasPrefix(target, "@") {
				file, ok := c.errorPageFile(loc.srv, target)
				if !ok {
					c.once(e.d, host, Blocking, fmt.Sprintf("error page %s is not a file under a root of this server", target))
					continue
				}
				target = file
			}
			ep[e.code] = target
		}
		if len(ep) > 0 {
			f.set("error_pages", ep)
			if proxied && set.intercept.set && set.intercept.v {
				f.set("intercept_errors", true)
			}
		}
	}
	if set.accessLog.set && !set.accessLog.v {
		f.set("access_log", false)
	}
	if set.limitRate.set && set.limitRate.v != "" {
		f.set("limit_rate", set.limitRate.v)
	}
	c.rateLimitKeys(f, set, host)
	c.authKeys(f, set, loc, host)
}

// accessLog turns `access_log off` everywhere into [log] access_log = "off";
// where only some routes have it, those routes need routes.access_log.
func (c *converter) accessLog(o *output) {
	if len(o.routes) == 0 {
		return
	}
	all := true
	for _, r := range o.routes {
		if v, ok := r.f.get("access_log"); !ok || v != false {
			all = false
		}
	}
	if all {
		o.log.set("access_log", "off")
	}
	if all || c.caps.Has(CapRouteAccessLog) {
		if all {
			for _, r := range o.routes {
				delete(r.f.vals, "access_log")
				r.f.keys = without(r.f.keys, "access_log")
			}
		}
		return
	}
	for _, r := range o.routes {
		if _, ok := r.f.get("access_log"); ok {
			delete(r.f.vals, "access_log")
			r.f.keys = without(r.f.keys, "access_log")
			c.once(r.accessLogD, "", Blocking, missingCaps(c.caps.Missing(CapRouteAccessLog)).why+"; this route is logged")
		}
	}
}

// comment makes s one line of valid UTF-8 for a TOML comment.
func comment(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func without(keys []string, k string) []string {
	out := keys[:0:0]
	for _, x := range keys {
		if x != k {
			out = append(out, x)
		}
	}
	return out
}

// write renders the output as TOML.
func (c *converter) write(o *output) []byte {
	var b strings.Builder
	b.WriteString("# Written by `edgeproxy convert nginx`. Every nginx directive not carried\n")
	b.WriteString("# over was listed on stderr as FILE:LINE: DIRECTIVE: blocking|ignored: why.\n\n")
	b.WriteString("[server]\n")
	writeFields(&b, &o.server)
	b.WriteString("\n[admin]\nlisten = \"127.0.0.1:9901\"\n")
	if !o.log.empty() {
		b.WriteString("\n[log]\n")
		writeFields(&b, &o.log)
	}
	for _, u := range c.upOrder {
		if !u.used {
			continue
		}
		fmt.Fprintf(&b, "\n# %s\n[upstreams.%s]\n", comment(u.d.Where()+" "+u.d.Name+" "+strings.Join(u.d.Args, " ")), bareKey(u.name))
		var f fields
		servers := u.servers
		if u.scheme == "https" {
			servers = make([]string, len(u.servers))
			for i, a := range u.servers {
				servers[i] = "https://" + a
			}
		}
		f.set("servers", servers)
		if u.balance != "" && u.balance != "round_robin" {
			f.set("balance", u.balance)
		}
		if u.hashKey != "" {
			f.set("hash_key", u.hashKey)
		}
		maxFails, failTimeout := u.maxFails, u.failTimeout
		if maxFails < 0 {
			maxFails, failTimeout = 1, "10s"
		}
		if len(u.servers) == 1 {
			maxFails = 0 // nginx never takes its only server out
		}
		f.set("max_fails", maxFails)
		f.set("fail_timeout", failTimeout)
		if u.maxConns > 0 {
			f.set("max_conns_per_server", u.maxConns)
		}
		if u.idleTimeout != "" {
			f.set("max_idle_time", u.idleTimeout)
		}
		f.set("retries", max(len(u.servers)-1, 0))
		f.set("connect_timeout", u.connect)
		f.set("response_timeout", nginxReadTimeout)
		f.set("host", u.host)
		if u.scheme == "https" {
			// nginx's proxy_ssl_verify is off unless set.
			f.set("tls_insecure_skip_verify", true)
		}
		writeFields(&b, &f)
	}
	if gz := c.gz; gz != nil && gz.enabled {
		b.WriteString("\n[compression]\nenabled = true\nalgorithms = [\"gzip\"]\n")
		fmt.Fprintf(&b, "types = %s\nmin_bytes = %d\nlevel = %s\n", value(gz.types), gz.min, quote(gz.level))
	}
	for _, r := range o.routes {
		fmt.Fprintf(&b, "\n# %s\n[[routes]]\n", comment(r.comment))
		writeFields(&b, &r.f)
	}
	return []byte(b.String())
}
