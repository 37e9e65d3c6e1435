package proxy

import (
	"fmt"
	"regexp"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// route is one entry of the immutable route table: what it matches and
// its compiled pipeline (pipeline.go).
type route struct {
	name        string
	host        []byte // lower case, no port; "" any
	wildcard    bool   // host is ".example.com" matched as a suffix
	prefix      []byte // the prefix, the exact path, or a regex's anchored literal start
	kind        matchKind
	re          *regexp.Regexp // path_regex
	regexStops  bool
	captures    bool        // the regex has groups: $1…$9 are kept when it matches
	conds       *matchConds // nil: no match conditions
	internal    bool
	rewrite     *vars.Template
	stripPrefix bool
	timeout     int64 // nanoseconds; 0 = upstream's response timeout
	metrics     routeMetrics

	requestSteps  []requestStep
	target        target
	responseSteps []responseStep

	// Forwarding settings read by forward.
	requestEdit   *headerEdit
	cache         *cacheTarget // nil: no response cache; else it edits the upstream request
	errorPages    *errorPagesStep
	maxBodyBytes  int64 // Unlimited, or the limit
	streamRequest bool
	websocket     bool
	noAccessLog   bool

	limitRate int64 // bytes per second of an upstream's body (limitrate.go); 0: none

	rateLimit *rateLimitStep   // nil: none; for the status page
	auth      *authRequestStep // nil: none
}

// compileRoute builds a route's pipeline from its options, in the one
// order every route follows: what it matches, its request steps, its
// target, its response steps.
func (s *Server) compileRoute(ro RouteOptions, st *state) (*route, error) {
	r := &route{name: ro.Name, prefix: []byte(ro.PathPrefix), stripPrefix: ro.StripPrefix,
		timeout: int64(ro.Timeout), streamRequest: ro.StreamRequestBody, websocket: ro.WebSocket,
		noAccessLog: ro.NoAccessLog, maxBodyBytes: st.maxBodyBytes, limitRate: ro.LimitRate}
	r.host, r.wildcard = parseRouteHost(ro.Host)
	if r.name == "" {
		r.name = routeLabel(ro)
	}
	switch {
	case ro.MaxBodyBytes == Unlimited:
		r.maxBodyBytes = Unlimited
	case ro.MaxBodyBytes > 0:
		r.maxBodyBytes = ro.MaxBodyBytes
	}
	if err := r.compileMatching(ro); err != nil {
		return nil, err
	}
	if err := s.compileRequestSteps(r, ro, st); err != nil {
		return nil, err
	}
	if err := s.compileTarget(r, ro, st); err != nil {
		return nil, err
	}
	if err := r.compileResponseSteps(ro, st); err != nil {
		return nil, err
	}
	return r, nil
}

// compileRequestSteps: access → basic auth → auth_request → rate_limit →
// methods, each only when set.
func (s *Server) compileRequestSteps(r *route, ro RouteOptions, st *state) error {
	if len(ro.Access) > 0 {
		r.requestSteps = append(r.requestSteps, &accessStep{rules: ro.Access})
	}
	if ro.BasicAuthFile != "" {
		step, err := newBasicAuthStep(ro.BasicAuthFile, ro.Realm)
		if err != nil {
			return err
		}
		r.requestSteps = append(r.requestSteps, step)
	}
	if ro.AuthRequest != nil {
		step, err := s.newAuthRequestStep(r.name, *ro.AuthRequest, st)
		if err != nil {
			return fmt.Errorf("auth_request: %w", err)
		}
		r.auth = step
		r.requestSteps = append(r.requestSteps, step)
	}
	if ro.RateLimit != nil {
		step, err := s.newRateLimitStep(r.name, *ro.RateLimit, st)
		if err != nil {
			return fmt.Errorf("rate_limit: %w", err)
		}
		r.rateLimit = step
		r.requestSteps = append(r.requestSteps, step)
	}
	if len(ro.Methods) > 0 {
		r.requestSteps = append(r.requestSteps, newMethodsStep(ro.Methods))
	}
	return nil
}

// compileTarget sets what answers: a handler of the route's own, files, a
// fixed answer, or an upstream (behind the response cache when enabled),
// with the request header edits forwarding applies.
func (s *Server) compileTarget(r *route, ro RouteOptions, st *state) error {
	var err error
	if r.requestEdit, err = compileHeaderOps(ro.RequestHeaders); err != nil {
		return fmt.Errorf("request_headers: %w", err)
	}
	switch {
	case ro.Handler != nil:
		r.target = handlerTarget{h: ro.Handler}
	case ro.Root != "":
		r.target, err = newFileTarget(s, ro)
	case ro.Return != 0:
		r.target, err = compileAnswer(ro)
	default:
		up, ok := st.upstreams[ro.Upstream]
		if !ok {
			return fmt.Errorf("unknown upstream %q", ro.Upstream)
		}
		r.target = upstreamTarget{s: s, up: up}
		if ro.Cache.Enabled {
			if r.cache, err = s.newCacheTarget(ro.Cache, st, up, r.target, r.name); err == nil {
				r.target = r.cache
			}
		}
	}
	return err
}

// compileResponseSteps: error pages → response headers → compression.
func (r *route) compileResponseSteps(ro RouteOptions, st *state) error {
	var err error
	if r.errorPages, err = loadErrorPages(ro.ErrorPages, ro.InterceptErrors); err != nil {
		return err
	}
	if r.errorPages != nil {
		r.responseSteps = append(r.responseSteps, r.errorPages)
	}
	if !ro.ResponseHeaders.empty() {
		edit, err := compileHeaderOps(HeaderOps{Set: ro.ResponseHeaders.Set, Add: ro.ResponseHeaders.Add})
		if err != nil {
			return fmt.Errorf("response_headers: %w", err)
		}
		if edit == nil { // only removals
			edit = &headerEdit{}
		}
		step := &responseHeadersStep{edit: edit, always: ro.ResponseHeadersAlways}
		for _, n := range ro.ResponseHeaders.Remove {
			step.remove = append(step.remove, []byte(n))
		}
		r.responseSteps = append(r.responseSteps, step)
	}
	if ro.Compress && st.compress != nil {
		r.responseSteps = append(r.responseSteps, st.compress)
	}
	return nil
}

// compileMatching sets what the route matches: its path, regex, match
// conditions, and the rewrite its captures feed.
func (r *route) compileMatching(ro RouteOptions) error {
	r.internal = ro.Internal
	r.regexStops = ro.RegexStops
	switch {
	case ro.PathExact != "":
		r.kind, r.prefix = matchExact, []byte(ro.PathExact)
	case ro.PathRegex != "":
		re, anchor, err := compileRouteRegex(ro.PathRegex, ro.CaseInsensitive)
		if err != nil {
			return fmt.Errorf("path_regex: %w", err)
		}
		r.kind, r.re, r.prefix = matchRegex, re, anchor
	}
	var err error
	if r.conds, err = compileMatch(ro.Match); err != nil {
		return fmt.Errorf("match: %w", err)
	}
	if ro.Rewrite != "" {
		if r.rewrite, err = vars.Parse(ro.Rewrite); err != nil {
			return fmt.Errorf("rewrite: %w", err)
		}
	}
	r.captures = r.re != nil && r.re.NumSubexp() > 0
	return nil
}

func compileAnswer(ro RouteOptions) (*answer, error) {
	a := &answer{status: ro.Return, contentType: []byte(ro.ContentType)}
	if len(a.contentType) == 0 {
		a.contentType = []byte("text/plain; charset=utf-8")
	}
	var err error
	if ro.Location != "" {
		if a.location, err = vars.Parse(ro.Location); err != nil {
			return nil, fmt.Errorf("location: %w", err)
		}
	}
	if ro.Body != "" {
		if a.body, err = vars.Parse(ro.Body); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
	return a, nil
}

var _ target = (*answer)(nil)
