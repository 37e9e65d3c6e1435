package nginx

import (
	"regexp"
	"strings"
)

// Location kinds, in nginx's matching terms.
const (
	locPrefix = "prefix"
	locExact  = "exact" // =
	locStops  = "stops" // ^~
	locRegex  = "regex" // ~ and ~*
	locNamed  = "named" // @name
)

// locScope is one location (or one `if` inside it) being read.
type locScope struct {
	d        *Directive
	srv      *serverScope
	set      *settings
	kind     string
	path     string
	caseFold bool
	proxy    *proxyTarget
	ret      *answer
	methods  []string
	// match and parent: an `if` copy of its parent location.
	match    *inline
	parent   *locScope
	ifs      []*locScope
	internal bool
	// noBody: proxy_pass_request_body off here.
	noBody *Directive
}

// answer is a fixed response: return, or a redirecting rewrite.
type answer struct {
	code     int
	location string
	body     string
	d        *Directive
	// relative: location is a path that nginx prefixes with
	// scheme://host[:port] (absolute_redirect on).
	relative bool
}

func carryLocation(s *scope, d *Directive) error {
	if s.kind == cLocation {
		return blocking("nested locations are not translated; their requests are answered by the outer location")
	}
	loc := &locScope{d: d, srv: s.srv, set: s.set.child()}
	mod, path := "", d.Args[0]
	if len(d.Args) == 2 {
		mod, path = d.Args[0], d.Args[1]
	} else {
		switch {
		case strings.HasPrefix(path, "@"):
			mod, path = "@", path[1:]
		case strings.HasPrefix(path, "^~"):
			mod, path = "^~", path[2:]
		case strings.HasPrefix(path, "~*"):
			mod, path = "~*", path[2:]
		case strings.HasPrefix(path, "~"):
			mod, path = "~", path[1:]
		case strings.HasPrefix(path, "="):
			mod, path = "=", path[1:]
		}
	}
	var missing error
	switch mod {
	case "":
		loc.kind = locPrefix
	case "^~":
		loc.kind = locStops
	case "=":
		loc.kind, missing = locExact, s.need(CapPathExact)
	case "~", "~*":
		loc.kind, loc.caseFold, missing = locRegex, mod == "~*", s.need(CapPathRegex)
		if path == "" {
			return blocking("an empty regular expression is not translated")
		}
		if missing == nil {
			if err := compileRE2(path); err != nil {
				return err
			}
		}
	case "@":
		loc.kind, missing = locNamed, s.need(CapNamed)
		if !namedLocation.MatchString(path) {
			return blocking("location name %q is not letters, digits, '-', '_' or '.'", path)
		}
	default:
		s.c.reject(d, "invalid location modifier %q", mod)
		return nil
	}
	for _, o := range append(append([]*locScope(nil), s.srv.locs...), s.srv.unrouted...) {
		same := o.path == path && (o.kind == loc.kind || o.kind != locExact && loc.kind != locExact && o.kind != locRegex && loc.kind != locRegex)
		if same && loc.kind != locRegex {
			s.c.reject(d, "duplicate location %q", d.Args[len(d.Args)-1])
			return nil
		}
	}
	if missing != nil {
		// Read quietly all the same: an error_page may name a file under
		// this location's root.
		loc.path = path
		s.srv.unrouted = append(s.srv.unrouted, loc)
		s.c.quiet++
		s.c.walk(&scope{c: s.c, kind: cLocation, set: loc.set, srv: s.srv, loc: loc}, d.Block)
		s.c.quiet--
		return missing
	}
	if loc.kind != locRegex && loc.kind != locNamed && !strings.HasPrefix(path, "/") {
		// nginx accepts it, but a path that does not start with "/" never matches.
		return ignored("location %q can never match a request path", path)
	}
	loc.path = path
	s.srv.locs = append(s.srv.locs, loc)
	s.c.walk(&scope{c: s.c, kind: cLocation, set: loc.set, srv: s.srv, loc: loc}, d.Block)
	return nil
}

// carryLimitExcept reads `limit_except GET POST { deny all; }`: methods.
func carryLimitExcept(s *scope, d *Directive) error {
	if len(d.Block) != 1 || d.Block[0].Name != "deny" || len(d.Block[0].Args) != 1 || d.Block[0].Args[0] != "all" {
		return blocking("only a limit_except whose block is `deny all;` is translated (methods)")
	}
	for _, m := range d.Args {
		s.loc.methods = append(s.loc.methods, strings.ToUpper(m))
	}
	return nil
}

var namedLocation = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

var ifCond = regexp.MustCompile(`^\$(http|arg|cookie)_([A-Za-z0-9_-]+)(?:\s+(=|~\*|~)\s+(.*))?$`)

// carryIf translates `if ($http_x ~ re) { … }` inside a location into a
// copy of the location with match, tried before the location itself.
func carryIf(s *scope, d *Directive) error {
	if s.kind != cLocation {
		return blocking("`if` outside a location is not translated")
	}
	cond := strings.Join(d.Args, " ")
	if !strings.HasPrefix(cond, "(") || !strings.HasSuffix(cond, ")") {
		s.c.reject(d, `invalid condition %q`, cond)
		return nil
	}
	cond = strings.TrimSpace(cond[1 : len(cond)-1])
	m := ifCond.FindStringSubmatch(cond)
	if m == nil {
		return blocking("only conditions on $http_, $arg_ and $cookie_ with =, ~ or ~* are translated (got %q)", cond)
	}
	var re string
	switch m[3] {
	case "":
		re = `^(?:[^0]|.{2,})$` // nginx: true unless empty or "0"
	case "=":
		re = "^" + regexp.QuoteMeta(unquote(m[4])) + "$"
	case "~":
		re = unquote(m[4])
	case "~*":
		re = "(?i)" + unquote(m[4])
	}
	if err := compileRE2(re); err != nil {
		return err
	}
	name := m[2]
	kind := map[string]string{"http": "headers", "arg": "query", "cookie": "cookies"}[m[1]]
	if kind == "headers" {
		name = strings.ReplaceAll(name, "_", "-")
	}
	copyLoc := &locScope{d: d, srv: s.srv, set: s.set.child(), kind: s.loc.kind, path: s.loc.path, caseFold: s.loc.caseFold, parent: s.loc}
	copyLoc.match = &inline{}
	copyLoc.match.set(kind, strMap{name: re})
	s.loc.ifs = append(s.loc.ifs, copyLoc)
	s.c.walk(&scope{c: s.c, kind: cIf, set: copyLoc.set, srv: s.srv, loc: copyLoc}, d.Block)
	return nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// compileRE2 checks that an nginx (PCRE) regex means the same in RE2.
func compileRE2(re string) error {
	if _, err := regexp.Compile(re); err != nil {
		return blocking("regular expression %q uses PCRE syntax RE2 lacks: %v", re, err)
	}
	return nil
}

func carryInternal(s *scope, d *Directive) error {
	s.loc.internal = true
	return nil
}
