package config

import (
	"errors"
	"fmt"

	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// validateRoute checks one [[routes]] entry; every message names its key.
func (c *Config) validateRoute(p *problems, i int, r *Route) {
	k := "routes[" + strconv.Itoa(i) + "]"
	c.validateRouteMatch(p, k, r)
	if err := checkRouteHost(r.Host); err != nil {
		p.add(k+".host", "%v", err)
	}
	if r.Name != "" {
		if !validName.MatchString(r.Name) {
			p.add(k+".name", "must be letters, digits, '-', '_' or '.' (got %q); refer to it as \"@%s\"", r.Name, r.Name)
		}
		for j := 0; j < i; j++ {
			if c.Routes[j].Name == r.Name {
				p.add(k+".name", "%q is already the name of routes[%d]", r.Name, j)
			}
		}
	}
	c.validateRouteTarget(p, k, r)
	if r.Timeout.Duration < 0 {
		p.add(k+".timeout", "must not be negative")
	}
	if r.MaxBodyBytes != nil && *r.MaxBodyBytes < 0 {
		p.add(k+".max_body_bytes", "must not be negative (0 = unlimited)")
	}
	for j, m := range r.Methods {
		if !validToken.MatchString(m) || strings.ToUpper(m) != m {
			p.add(fmt.Sprintf("%s.methods[%d]", k, j), "%q is not an upper-case method name", m)
		}
	}
	for j, rule := range r.Access {
		if _, _, err := ParseAccessRule(rule); err != nil {
			p.add(fmt.Sprintf("%s.access[%d]", k, j), "%v", err)
		}
	}
	if r.BasicAuthFile != "" {
		if err := checkHtpasswd(c.abs(r.BasicAuthFile)); err != nil {
			p.add(k+".basic_auth_file", "%s: %v", r.BasicAuthFile, err)
		}
	} else if r.Realm != "" {
		p.add(k+".realm", "needs basic_auth_file")
	}
	if strings.ContainsFunc(r.Realm, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		p.add(k+".realm", "must not contain control characters")
	}
	headerOps(p, k+".request_headers", r.RequestHeaders.Set, r.RequestHeaders.Add, r.RequestHeaders.Remove)
	headerOps(p, k+".response_headers", r.ResponseHeaders.Set, r.ResponseHeaders.Add, r.ResponseHeaders.Remove)
	c.validateErrorPages(p, k, r)
	c.validateGuards(p, k, r)
	c.validateRouteCache(p, k, r)
	if path, kind := r.path(); path != "" {
		for j := 0; j < i; j++ {
			o := &c.Routes[j]
			if op, okind := o.path(); op == path && okind == kind && strings.EqualFold(o.Host, r.Host) && o.Match.Empty() && o.Internal == r.Internal {
				p.add(k+"."+kind, "host %q and %s %q are already routed by routes[%d], which has no match conditions: this route is never reached", r.Host, kind, path, j)
			}
		}
		if cp := c.Coupon; cp != nil && kind == "path_prefix" && strings.EqualFold(cp.Host, r.Host) && cp.PathPrefix == r.PathPrefix {
			p.add(k+".path_prefix", "prefix %q is already the coupon path_prefix", r.PathPrefix)
		}
	}
}

// path is the route's path and the key it came from.
func (r *Route) path() (string, string) {
	switch {
	case r.PathExact != "":
		return r.PathExact, "path_exact"
	case r.PathRegex != "":
		return r.PathRegex, "path_regex"
	}
	return r.PathPrefix, "path_prefix"
}

// validateRouteMatch checks what a route matches: one of path_prefix,
// path_exact, path_regex (or none for a route reached only by name), and
// its match conditions.
func (c *Config) validateRouteMatch(p *problems, k string, r *Route) {
	n := 0
	for _, s := range []string{r.PathPrefix, r.PathExact, r.PathRegex} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		p.add(k+".path_prefix", "set one of path_prefix, path_exact and path_regex")
	case n == 0 && r.Name == "":
		p.add(k+".path_prefix", "is required (or path_exact, path_regex, or name for a route reached only as \"@name\")")
	case r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/"):
		p.add(k+".path_prefix", "must start with '/' (got %q)", r.PathPrefix)
	case r.PathExact != "" && !strings.HasPrefix(r.PathExact, "/"):
		p.add(k+".path_exact", "must start with '/' (got %q)", r.PathExact)
	}
	groups := 0
	if r.PathRegex != "" {
		pattern := r.PathRegex
		if r.CaseInsensitive {
			pattern = "(?i)" + pattern
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			p.add(k+".path_regex", "%q is not an RE2 regular expression (Go regexp syntax; no lookaround or backreferences): %v", r.PathRegex, regexCause(err))
		} else {
			groups = re.NumSubexp()
		}
	}
	if r.StripPrefix && r.PathPrefix == "" {
		p.add(k+".strip_prefix", "applies to path_prefix routes only; use rewrite with path_regex")
	}
	if r.RegexStops && r.PathPrefix == "" {
		p.add(k+".regex_stops", "applies to path_prefix routes only (location ^~)")
	}
	if r.CaseInsensitive && r.PathRegex == "" {
		p.add(k+".case_insensitive", "applies to path_regex routes only (location ~*)")
	}
	if r.Rewrite != "" {
		if !strings.HasPrefix(r.Rewrite, "/") && !strings.HasPrefix(r.Rewrite, "$") {
			p.add(k+".rewrite", "must be a path starting with '/' (got %q)", r.Rewrite)
		}
		if t, err := vars.Parse(r.Rewrite); err != nil {
			p.add(k+".rewrite", "%v", err)
		} else if t.MaxCapture() > groups {
			p.add(k+".rewrite", "uses $%d but path_regex has %d capture groups", t.MaxCapture(), groups)
		}
		if r.StripPrefix {
			p.add(k+".strip_prefix", "strip_prefix and rewrite both change the path: set one")
		}
	}
	if r.Internal && r.Name == "" && n == 0 {
		p.add(k+".internal", "an internal route needs a path or a name to be reached by")
	}
	m := &r.Match
	for _, part := range []struct {
		name string
		m    map[string]string
	}{{"headers", m.Headers}, {"query", m.Query}, {"cookies", m.Cookies}} {
		for name, pattern := range part.m {
			if _, err := regexp.Compile(pattern); err != nil {
				p.add(k+".match."+part.name+"."+name, "%q is not an RE2 regular expression: %v", pattern, regexCause(err))
			}
		}
	}
	for j, cidr := range m.Clients {
		if _, err := ParsePrefix(cidr); err != nil {
			p.add(fmt.Sprintf("%s.match.clients[%d]", k, j), "%v", err)
		}
	}
}

// regexCause is the reason without the pattern the message already shows.
func regexCause(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code)
	}
	return err.Error()
}

// validateRouteTarget: a route does exactly one thing.
func (c *Config) validateRouteTarget(p *problems, k string, r *Route) {
	var targets []string
	if r.Upstream != "" {
		targets = append(targets, "upstream")
	}
	if r.Return != 0 {
		targets = append(targets, "return")
	}
	if r.Root != "" {
		targets = append(targets, "root")
	}
	switch {
	case len(targets) > 1:
		p.add(k+"."+targets[1], "a route does one thing: set one of upstream, return and root (got %s)", strings.Join(targets, ", "))
		return
	case len(targets) == 0:
		p.add(k+".upstream", "is required (or return = STATUS for a fixed answer, or root for files)")
		return
	}
	if r.Root == "" && len(r.TryFiles) > 0 {
		p.add(k+".try_files", "needs root")
	}
	switch targets[0] {
	case "upstream":
		if _, ok := c.Upstreams[r.Upstream]; !ok {
			p.add(k+".upstream", "names upstream %q, which is not defined in [upstreams]", r.Upstream)
		}
		if r.Location != "" || r.Body != "" {
			p.add(k+".location", "location and body belong to return routes")
		}
	case "return":
		c.validateReturn(p, k, r)
	case "root":
		c.validateFiles(p, k, r)
	}
}

// validateFiles checks a file route: its root is a readable folder and
// its try_files entries compile.
func (c *Config) validateFiles(p *problems, k string, r *Route) {
	if fi, err := os.Stat(c.abs(r.Root)); err != nil {
		p.add(k+".root", "cannot read %s: %v", r.Root, pathCause(err))
	} else if !fi.IsDir() {
		p.add(k+".root", "%s is not a folder", r.Root)
	}
	for j, f := range r.TryFiles {
		key := fmt.Sprintf("%s.try_files[%d]", k, j)
		last := j == len(r.TryFiles)-1
		switch {
		case strings.HasPrefix(f, "@"):
			if !last {
				p.add(key, "a named route can only be the last entry")
			} else if !c.hasRouteNamed(f[1:]) {
				p.add(key, "names route %q, but no route has name = %q", f, f[1:])
			}
		case strings.HasPrefix(f, "="):
			if n, err := strconv.Atoi(f[1:]); !last || err != nil || n < 200 || n > 599 {
				p.add(key, "\"=STATUS\" must be the last entry, with a status 200..599 (got %q)", f)
			}
		case !strings.HasPrefix(f, "/") && !strings.HasPrefix(f, "$"):
			p.add(key, "must be a path starting with '/' or a variable like $uri (got %q)", f)
		default:
			template(p, key, f)
		}
	}
	for j, name := range r.Index {
		if name == "" || strings.Contains(name, "/") {
			p.add(fmt.Sprintf("%s.index[%d]", k, j), "must be a file name (got %q)", name)
		}
	}
	if r.Expires.Duration < 0 {
		p.add(k+".expires", "must not be negative")
	}
}

func (c *Config) validateReturn(p *problems, k string, r *Route) {
	if r.Return != 444 && (r.Return < 200 || r.Return > 599) {
		p.add(k+".return", "must be a status 200..599 or 444 (close without answering) (got %d)", r.Return)
		return
	}
	redirect := r.Return == 301 || r.Return == 302 || r.Return == 303 || r.Return == 307 || r.Return == 308
	switch {
	case redirect && r.Location == "":
		p.add(k+".return", "return %d needs a location", r.Return)
	case !redirect && r.Location != "":
		p.add(k+".location", "only a redirect (301, 302, 303, 307, 308) has a location (return is %d)", r.Return)
	case r.Return == 444 && r.Body != "":
		p.add(k+".body", "return 444 closes the connection: it has no body")
	}
	template(p, k+".location", r.Location)
	template(p, k+".body", r.Body)
	if r.ContentType == "" {
		p.add(k+".content_type", "must not be empty")
	}
}

func (c *Config) validateErrorPages(p *problems, k string, r *Route) {
	for code, target := range r.ErrorPages {
		key := k + ".error_pages." + code
		n, err := strconv.Atoi(code)
		if err != nil || n < 300 || n > 599 {
			p.add(key, "must be a status 300..599 (got %q)", code)
		}
		switch {
		case strings.HasPrefix(target, "@"):
			if !c.hasRouteNamed(target[1:]) {
				p.add(key, "names route %q, but no route has name = %q", target, target[1:])
			}
		case target == "":
			p.add(key, "must be a file path or \"@route-name\"")
		default:
			if _, err := os.ReadFile(c.abs(target)); err != nil {
				p.add(key, "cannot read error page %s: %v", target, pathCause(err))
			}
		}
	}
	if r.InterceptErrors && len(r.ErrorPages) == 0 {
		p.add(k+".intercept_errors", "needs error_pages")
	}
}

func (c *Config) hasRouteNamed(name string) bool {
	for i := range c.Routes {
		if c.Routes[i].Name == name {
			return true
		}
	}
	return false
}

// headerOps checks names and compiles values of one header table.
func headerOps(p *problems, k string, set, add map[string]string, remove []string) {
	for _, part := range []struct {
		name string
		m    map[string]string
	}{{"set", set}, {"add", add}} {
		for name, value := range part.m {
			key := k + "." + part.name + "." + name
			if !validToken.MatchString(name) {
				p.add(key, "%q is not a header name", name)
			}
			template(p, key, value)
		}
	}
	for j, name := range remove {
		if !validToken.MatchString(name) {
			p.add(fmt.Sprintf("%s.remove[%d]", k, j), "%q is not a header name", name)
		}
	}
}

func template(p *problems, key, s string) {
	if _, err := vars.Parse(s); err != nil {
		p.add(key, "%v", err)
	}
}

// ParseAccessRule reads "allow CIDR", "deny CIDR", "allow all", "deny all".
// all is reported as ok with an invalid prefix.
func ParseAccessRule(rule string) (allow bool, cidr string, err error) {
	verb, arg, ok := strings.Cut(strings.TrimSpace(rule), " ")
	arg = strings.TrimSpace(arg)
	if !ok || arg == "" {
		return false, "", fmt.Errorf(`%q must be "allow ADDRESS|CIDR|all" or "deny ADDRESS|CIDR|all"`, rule)
	}
	switch verb {
	case "allow":
		allow = true
	case "deny":
	default:
		return false, "", fmt.Errorf(`%q must start with "allow" or "deny"`, rule)
	}
	if arg == "all" {
		return allow, "all", nil
	}
	if _, err := ParsePrefix(arg); err != nil {
		return false, "", err
	}
	return allow, arg, nil
}

func (c *Config) validateCompression(p *problems) {
	z := &c.Compression
	seen := map[string]bool{}
	for j, a := range z.Algorithms {
		key := fmt.Sprintf("compression.algorithms[%d]", j)
		switch a {
		case "gzip", "br", "zstd":
		default:
			p.add(key, `must be "zstd", "br" or "gzip" (got %q)`, a)
		}
		if seen[a] {
			p.add(key, "%q is listed twice", a)
		}
		seen[a] = true
	}
	if z.Enabled && len(z.Algorithms) == 0 {
		p.add("compression.algorithms", "needs at least one algorithm")
	}
	for j, t := range z.Types {
		if !validMediaRange.MatchString(t) {
			p.add(fmt.Sprintf("compression.types[%d]", j), `%q is not a media type like "text/*" or "application/json"`, t)
		}
	}
	if z.MinBytes < 0 {
		p.add("compression.min_bytes", "must not be negative")
	}
	switch z.Level {
	case "fastest", "default", "best":
	default:
		p.add("compression.level", `must be "fastest", "default" or "best" (got %q)`, z.Level)
	}
}

// abs anchors a path at the config file's folder.
func (c *Config) abs(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(c.Path), path)
}

// pathCause shortens an *os.PathError to its cause: the key already names the file.
func pathCause(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

var (
	validToken      = regexp.MustCompile(`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`)
	validMediaRange = regexp.MustCompile(`^[a-z0-9.+-]+/(\*|[a-z0-9.+-]+)$`)
)
