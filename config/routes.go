package config

import (
	"fmt"

	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// validateRoute checks one [[routes]] entry; every message names its key.
func (c *Config) validateRoute(p *problems, i int, r *Route) {
	k := "routes[" + strconv.Itoa(i) + "]"
	switch {
	case r.PathPrefix == "" && r.Name != "":
		// A named route is reached only as "@name".
	case !strings.HasPrefix(r.PathPrefix, "/"):
		p.add(k+".path_prefix", "must start with '/' (got %q)", r.PathPrefix)
	}
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
		if _, err := os.Stat(c.abs(r.BasicAuthFile)); err != nil {
			p.add(k+".basic_auth_file", "cannot read %s: %v", r.BasicAuthFile, pathCause(err))
		}
	} else if r.Realm != "" {
		p.add(k+".realm", "needs basic_auth_file")
	}
	headerOps(p, k+".request_headers", r.RequestHeaders.Set, r.RequestHeaders.Add, r.RequestHeaders.Remove)
	headerOps(p, k+".response_headers", r.ResponseHeaders.Set, r.ResponseHeaders.Add, r.ResponseHeaders.Remove)
	c.validateErrorPages(p, k, r)
	if r.PathPrefix != "" {
		for j := 0; j < i; j++ {
			o := &c.Routes[j]
			if strings.EqualFold(o.Host, r.Host) && o.PathPrefix == r.PathPrefix {
				p.add(k+".path_prefix", "host %q and prefix %q are already routed by routes[%d]", r.Host, r.PathPrefix, j)
			}
		}
		if cp := c.Coupon; cp != nil && strings.EqualFold(cp.Host, r.Host) && cp.PathPrefix == r.PathPrefix {
			p.add(k+".path_prefix", "prefix %q is already the coupon path_prefix", r.PathPrefix)
		}
	}
}

// validateRouteTarget: a route does exactly one thing.
func (c *Config) validateRouteTarget(p *problems, k string, r *Route) {
	switch {
	case r.Upstream != "" && r.Return != 0:
		p.add(k+".return", "a route either forwards (upstream) or answers (return), not both")
	case r.Upstream == "" && r.Return == 0:
		p.add(k+".upstream", "is required (or return = STATUS for a fixed answer)")
	case r.Upstream != "":
		if _, ok := c.Upstreams[r.Upstream]; !ok {
			p.add(k+".upstream", "names upstream %q, which is not defined in [upstreams]", r.Upstream)
		}
		if r.Location != "" || r.Body != "" {
			p.add(k+".location", "location and body belong to return routes")
		}
	default:
		c.validateReturn(p, k, r)
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
