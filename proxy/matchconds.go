package proxy

import (
	"net/netip"
	"regexp"
	"sort"

	"github.com/valyala/fasthttp"
)

// MatchOptions narrow a route to some requests (SPEC §8 match): each
// header, query parameter and cookie named must match its RE2 pattern
// (an absent one is ""), and the client ($remote_addr) must be in one of
// Clients when any are given.
type MatchOptions struct {
	Headers map[string]string
	Query   map[string]string
	Cookies map[string]string
	Clients []netip.Prefix
}

func (m MatchOptions) empty() bool {
	return len(m.Headers) == 0 && len(m.Query) == 0 && len(m.Cookies) == 0 && len(m.Clients) == 0
}

// matchConds is MatchOptions compiled.
type matchConds struct {
	headers, query, cookies []cond
	clients                 []netip.Prefix
}

type cond struct {
	name []byte
	re   *regexp.Regexp
}

func compileMatch(m MatchOptions) (*matchConds, error) {
	if m.empty() {
		return nil, nil
	}
	c := &matchConds{clients: m.Clients}
	var err error
	if c.headers, err = compileConds(m.Headers); err != nil {
		return nil, err
	}
	if c.query, err = compileConds(m.Query); err != nil {
		return nil, err
	}
	if c.cookies, err = compileConds(m.Cookies); err != nil {
		return nil, err
	}
	return c, nil
}

func compileConds(m map[string]string) ([]cond, error) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []cond
	for _, n := range names {
		re, err := regexp.Compile(m[n])
		if err != nil {
			return nil, err
		}
		out = append(out, cond{name: []byte(n), re: re})
	}
	return out, nil
}

func (m *matchConds) hold(ex *exchange) bool {
	h := &ex.ctx.Request.Header
	for _, c := range m.headers {
		if !c.re.Match(peekFold(h, c.name)) {
			return false
		}
	}
	for _, c := range m.cookies {
		if !c.re.Match(h.CookieBytes(c.name)) {
			return false
		}
	}
	if len(m.query) > 0 {
		args := queryArgs(ex.ctx)
		for _, c := range m.query {
			if !c.re.Match(args.PeekBytes(c.name)) {
				return false
			}
		}
	}
	if len(m.clients) > 0 {
		a := ex.remote()
		for _, p := range m.clients {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return true
}

// queryArgs parses the request's query (once per request; fasthttp keeps
// the result).
func queryArgs(ctx *fasthttp.RequestCtx) *fasthttp.Args { return ctx.QueryArgs() }
