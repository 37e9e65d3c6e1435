package proxy

import (
	"bytes"
	"regexp"
	"sort"
	"strings"
)

// router selects a route in nginx's order (SPEC §8): an exact path first;
// then the longest prefix, which wins at once when it stops regexes; then
// the first regex in file order that matches; else that longest prefix.
// Among routes of one path, a route naming the host beats a wildcard,
// which beats a route for any host; routes of the same host and path are
// tried in file order and the first whose match conditions hold wins.
//
// It is built once per config and read without locks. Prefix lookup walks
// a radix tree, so it costs O(path length) however many routes there are;
// regexes run only when nginx would run them.
type router struct {
	routes  []*route // every matchable route, in file order (status page)
	exact   map[string]*candidates
	prefix  prefixNode
	regexes []*route
}

// candidates are the routes of one path, by how they name the host.
type candidates struct {
	byHost   map[string][]*route // lower-case host → routes in file order
	wildcard []*route            // longest suffix first, then file order
	anyHost  []*route            // file order
}

func (c *candidates) add(r *route) {
	switch {
	case len(r.host) == 0:
		c.anyHost = append(c.anyHost, r)
	case r.wildcard:
		c.wildcard = append(c.wildcard, r)
		sort.SliceStable(c.wildcard, func(i, j int) bool { return len(c.wildcard[i].host) > len(c.wildcard[j].host) })
	default:
		if c.byHost == nil {
			c.byHost = map[string][]*route{}
		}
		c.byHost[string(r.host)] = append(c.byHost[string(r.host)], r)
	}
}

// pick returns the first route of c that takes this request.
func (c *candidates) pick(host []byte, ex *exchange) *route {
	if c.byHost != nil {
		if r := firstTaking(c.byHost[string(host)], ex); r != nil {
			return r
		}
	}
	for _, r := range c.wildcard {
		if len(host) > len(r.host) && bytes.Equal(host[len(host)-len(r.host):], r.host) && r.takes(ex) {
			return r
		}
	}
	return firstTaking(c.anyHost, ex)
}

func firstTaking(rs []*route, ex *exchange) *route {
	for _, r := range rs {
		if r.takes(ex) {
			return r
		}
	}
	return nil
}

// takes reports whether r may answer this request: its match conditions
// hold. An internal route is matched like any other (nginx too), and then
// refused when the request did not come by an internal redirect.
func (r *route) takes(ex *exchange) bool {
	return r.conds == nil || r.conds.hold(ex)
}

// hostMatches is the host test of a regex route (prefix and exact routes
// are indexed by host instead).
func (r *route) hostMatches(host []byte) bool {
	switch {
	case len(r.host) == 0:
		return true
	case r.wildcard:
		return len(host) > len(r.host) && bytes.Equal(host[len(host)-len(r.host):], r.host)
	}
	return bytes.Equal(host, r.host)
}

// prefixNode is a radix tree of path prefixes.
type prefixNode struct {
	label    []byte
	children []*prefixNode
	routes   *candidates // routes whose prefix ends here; nil if none
}

// child is the child whose label starts with b, or nil: labels of
// siblings never share a first byte.
func (n *prefixNode) child(b byte) *prefixNode {
	for _, c := range n.children {
		if c.label[0] == b {
			return c
		}
	}
	return nil
}

func (n *prefixNode) insert(key []byte, r *route) {
	for {
		if len(key) == 0 {
			if n.routes == nil {
				n.routes = &candidates{}
			}
			n.routes.add(r)
			return
		}
		next := n.child(key[0])
		if next == nil {
			leaf := &prefixNode{label: append([]byte(nil), key...)}
			n.children = append(n.children, leaf)
			n = leaf
			key = nil
			continue
		}
		common := commonPrefix(next.label, key)
		if common < len(next.label) {
			// Split next: a new node for the shared part above it.
			split := &prefixNode{label: next.label[:common:common], children: []*prefixNode{next}}
			next.label = next.label[common:]
			for i, c := range n.children {
				if c == next {
					n.children[i] = split
				}
			}
			next = split
		}
		n = next
		key = key[common:]
	}
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// longest returns the route of the longest prefix of path that takes the
// request. stack is scratch space for the nodes passed on the way down.
func (n *prefixNode) longest(path, host []byte, ex *exchange) *route {
	stack := ex.nodes[:0]
	for {
		if n.routes != nil {
			stack = append(stack, n)
		}
		if len(path) == 0 {
			break
		}
		next := n.child(path[0])
		if next == nil || !bytes.HasPrefix(path, next.label) {
			break
		}
		path = path[len(next.label):]
		n = next
	}
	ex.nodes = stack
	for i := len(stack) - 1; i >= 0; i-- {
		if r := stack[i].routes.pick(host, ex); r != nil {
			return r
		}
	}
	return nil
}

func newRouter(routes []*route) *router {
	rt := &router{routes: routes, exact: map[string]*candidates{}}
	for _, r := range routes {
		switch r.kind {
		case matchExact:
			c := rt.exact[string(r.prefix)]
			if c == nil {
				c = &candidates{}
				rt.exact[string(r.prefix)] = c
			}
			c.add(r)
		case matchRegex:
			rt.regexes = append(rt.regexes, r)
		default:
			rt.prefix.insert(r.prefix, r)
		}
	}
	return rt
}

// match returns the route for a request host (as sent, maybe with a port)
// and path, or nil. The path is the one to match: see matchPath.
func (rt *router) match(host, path []byte, ex *exchange) *route {
	ex.hostKey = appendLower(ex.hostKey[:0], stripPort(host))
	host = ex.hostKey
	if c := rt.exact[string(path)]; c != nil {
		if r := c.pick(host, ex); r != nil {
			return r
		}
	}
	longest := rt.prefix.longest(path, host, ex)
	if longest != nil && longest.regexStops {
		return longest
	}
	for _, r := range rt.regexes {
		if len(r.prefix) > 0 && !bytes.HasPrefix(path, r.prefix) {
			continue // an anchored regex whose literal start the path lacks
		}
		if r.hostMatches(host) && r.re.Match(path) && r.takes(ex) {
			if r.captures {
				ex.captures = r.re.FindSubmatchIndex(path)
			}
			return r
		}
	}
	return longest
}

// matchKind is how a route's path matches.
type matchKind uint8

const (
	matchPrefix matchKind = iota
	matchExact
	matchRegex
)

// compileRouteRegex compiles a path_regex; anchor is the literal text
// every match starts the path with ("" when the regex is not anchored at
// the start or begins with no literal), so most regexes of a big table
// are skipped with one comparison.
func compileRouteRegex(pattern string, caseInsensitive bool) (re *regexp.Regexp, anchor []byte, err error) {
	if caseInsensitive {
		pattern = "(?i)" + pattern
	}
	if re, err = regexp.Compile(pattern); err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(pattern, "^") || strings.HasPrefix(pattern, "(?i)^") {
		if lit, _ := re.LiteralPrefix(); lit != "" {
			anchor = []byte(lit)
		}
	}
	return re, anchor, nil
}

// parseRouteHost turns "*.Example.com" into (".example.com", true).
func parseRouteHost(h string) ([]byte, bool) {
	h = strings.ToLower(h)
	if strings.HasPrefix(h, "*.") {
		return []byte(h[1:]), true
	}
	return []byte(h), false
}

// stripPort removes ":port" from a Host value, keeping IPv6 brackets.
func stripPort(host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		if i := bytes.IndexByte(host, ']'); i > 0 {
			return host[:i+1]
		}
		return host
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// splitTarget splits a raw request-target into path and query ("?..." or
// ""), byte for byte. The absolute form "http://h/a?b" gives "/a", "?b":
// upstreams are sent the origin form.
func splitTarget(uri []byte) (path, query []byte) {
	if len(uri) > 0 && uri[0] != '/' {
		if i := bytes.Index(uri, schemeSep); i > 0 {
			rest := uri[i+len(schemeSep):]
			j := bytes.IndexAny(rest, "/?")
			if j < 0 {
				return slash, nil
			}
			uri = rest[j:]
		}
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		path, query = uri[:i], uri[i:]
	} else {
		path = uri
	}
	if len(path) == 0 {
		path = slash
	}
	return path, query
}

var (
	schemeSep = []byte("://")
	slash     = []byte("/")
)
