package proxy

import (
	"bytes"
	"sort"
	"strings"
)

// router finds the longest matching prefix among the routes whose host
// matches; at equal length a route with a host beats one without.
type router struct {
	routes []*route // sorted: longest prefix first, then host before no host
}

func newRouter(routes []*route) *router {
	sorted := append([]*route(nil), routes...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if len(a.prefix) != len(b.prefix) {
			return len(a.prefix) > len(b.prefix)
		}
		// An exact host is more specific than a wildcard, which beats none.
		return hostRank(a) > hostRank(b)
	})
	return &router{routes: sorted}
}

func hostRank(r *route) int {
	switch {
	case len(r.host) == 0:
		return 0
	case r.wildcard:
		return 1
	default:
		return 2
	}
}

// parseRouteHost turns "*.Example.com" into (".example.com", true).
func parseRouteHost(h string) ([]byte, bool) {
	h = strings.ToLower(h)
	if strings.HasPrefix(h, "*.") {
		return []byte(h[1:]), true
	}
	return []byte(h), false
}

// match returns the route for a request host (as sent, maybe with a port)
// and raw path, or nil.
func (rt *router) match(host, path []byte) *route {
	host = stripPort(host)
	for _, r := range rt.routes {
		if !bytes.HasPrefix(path, r.prefix) {
			continue
		}
		if len(r.host) == 0 {
			return r
		}
		if r.wildcard {
			if len(host) > len(r.host) && bytes.EqualFold(host[len(host)-len(r.host):], r.host) {
				return r
			}
			continue
		}
		if bytes.EqualFold(host, r.host) {
			return r
		}
	}
	return nil
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
