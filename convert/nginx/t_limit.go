package nginx

import (
	"fmt"
	"strconv"
	"strings"
)

// reqZone is a limit_req_zone: the key and rate a limit_req naming it
// counts with.
type reqZone struct {
	key, rate string
	maxKeys   int
	// bad: why limit_req cannot use the zone ("" when it can).
	bad string
	d   *Directive
}

// limitReq is one limit_req of a level.
type limitReq struct {
	zone    string
	burst   int
	nodelay bool
	d       *Directive
}

// nginxStateBytes: nginx keeps "about 16 thousand 64-byte states" per
// megabyte of zone; max_keys gets the same capacity.
const nginxStateBytes = 64

// carryLimitReqZone: `limit_req_zone KEY zone=NAME:SIZE rate=Nr/s|Nr/m`.
// The zone is what a limit_req naming it writes; a key edgeproxy cannot
// count the same way is reported here and at each limit_req using it.
func carryLimitReqZone(s *scope, d *Directive) error {
	z := &reqZone{d: d}
	var name string
	for _, a := range d.Args[1:] {
		switch {
		case strings.HasPrefix(a, "zone="):
			n, size, ok := strings.Cut(strings.TrimPrefix(a, "zone="), ":")
			b, sok := nginxSize(size)
			if !ok || n == "" || !sok || b <= 0 {
				s.c.reject(d, "invalid zone size %q", a)
				return errReported
			}
			name, z.maxKeys = n, int(b/nginxStateBytes)
		case strings.HasPrefix(a, "rate="):
			r, ok := nginxRate(strings.TrimPrefix(a, "rate="))
			if !ok {
				s.c.reject(d, "invalid rate %q", a)
				return errReported
			}
			z.rate = r
		case a == "sync":
			z.bad = "`sync` (NGINX Plus zone synchronisation) is not translated; rate_limit mode \"shared\" is edgeproxy's own way"
		default:
			s.c.reject(d, "invalid parameter %q", a)
			return errReported
		}
	}
	if name == "" {
		s.c.reject(d, `"zone" parameter is required`)
		return errReported
	}
	if z.rate == "" {
		z.rate = "1/s" // nginx's default rate=1r/s
	}
	if z.bad == "" {
		z.key, z.bad = rateKey(d.Args[0])
	}
	if s.c.zones == nil {
		s.c.zones = map[string]*reqZone{}
	}
	s.c.zones[name] = z
	if z.bad != "" {
		return blocking("%s", z.bad)
	}
	return nil
}

// nginxRate turns "10r/s" or "30r/m" (the only units nginx reads) into
// rate_limit's "10/s", "30/m".
func nginxRate(s string) (string, bool) {
	for _, unit := range []string{"r/s", "r/m"} {
		if n, ok := strings.CutSuffix(s, unit); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v <= 0 {
				return "", false
			}
			return strconv.Itoa(v) + "/" + unit[2:], true
		}
	}
	return "", false
}

// neverEmpty are variables that always have a value; nginx leaves a
// request uncounted when its key is empty, edgeproxy counts it under "".
var neverEmpty = []string{"remote_addr", "host", "uri", "request_uri", "request_method", "scheme", "server_port"}

// rateKey maps an nginx zone key onto rate_limit's key template, or says
// why it cannot be: $binary_remote_addr is $remote_addr in 4 or 16 bytes,
// so both count the same clients.
func rateKey(k string) (key, bad string) {
	key = strings.ReplaceAll(k, "$binary_remote_addr", "$remote_addr")
	if err := checkVars(key); err != nil {
		return "", "key " + k + ": " + err.(*notCarried).why
	}
	literal := varRef.ReplaceAllString(key, "")
	if literal != "" {
		return key, ""
	}
	for _, m := range varRef.FindAllStringSubmatch(key, -1) {
		if contains(neverEmpty, strings.Trim(m[1], "{}")) {
			return key, ""
		}
	}
	return "", "key " + k + " can be empty: nginx does not count requests with an empty key, edgeproxy counts them all under one"
}

// carryLimitReq: `limit_req zone=NAME [burst=N] [nodelay | delay=N]`.
// edgeproxy delays all of the burst or none of it, so delay=N is carried
// only where it means one of the two.
func carryLimitReq(s *scope, d *Directive) error {
	lr := limitReq{d: d}
	delay := -1
	for _, a := range d.Args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "zone":
			lr.zone = v
		case "burst", "delay":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.c.reject(d, "invalid %s value %q", k, v)
				return errReported
			}
			if k == "burst" {
				lr.burst = n
			} else {
				delay = n
			}
		case "nodelay":
			lr.nodelay = true
		default:
			s.c.reject(d, "invalid parameter %q", a)
			return errReported
		}
	}
	z, ok := s.c.zones[lr.zone]
	if lr.zone == "" || !ok {
		s.c.reject(d, "zone %q is unknown", lr.zone)
		return errReported
	}
	if z.bad != "" {
		return blocking("zone %s (line %d) is not carried over: %s", lr.zone, z.d.Line, z.bad)
	}
	switch {
	case delay < 0, lr.nodelay:
	case delay == 0:
	case delay >= lr.burst:
		lr.nodelay = true
	default:
		return blocking("delay=%d serves the first %d of the burst at once and delays the rest; edgeproxy delays the whole burst or (nodelay) none of it", delay, delay)
	}
	s.set.limitReqs.add(lr)
	return nil
}

// carryLimitReqStatus records the status; rateLimitKeys compares it with
// edgeproxy's 429.
func carryLimitReqStatus(s *scope, d *Directive) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 400 || n > 599 {
		s.c.reject(d, "value must be between 400 and 599")
		return errReported
	}
	s.set.limitReqStatus.put(n, d)
	return nil
}

// rateLimitKeys writes the route's rate_limit. nginx runs limit_req after
// `return`, so a return route is never limited there and gets none here.
func (c *converter) rateLimitKeys(f *fields, set *settings, host string) {
	if len(set.limitReqs.items) == 0 {
		return
	}
	if _, ret := f.get("return"); ret {
		return
	}
	lr := set.limitReqs.items[0]
	for _, more := range set.limitReqs.items[1:] {
		c.once(more.d, host, Blocking, "edgeproxy has one rate_limit per route; this second limit_req of the level is left out")
	}
	z := c.zones[lr.zone]
	rl := &inline{}
	rl.set("key", z.key)
	rl.set("rate", z.rate)
	rl.set("burst", lr.burst)
	if lr.nodelay {
		rl.set("nodelay", true)
	}
	rl.set("mode", "local")
	rl.set("max_keys", z.maxKeys)
	f.set("rate_limit", rl)
	status := 503 // nginx's default limit_req_status
	if set.limitReqStatus.set {
		status = set.limitReqStatus.v
	}
	if status != 429 {
		c.once(lr.d, host, Blocking, fmt.Sprintf("carried as rate_limit, but nginx answers %d beyond the burst and edgeproxy 429 (with Retry-After); `limit_req_status 429;` makes nginx answer as edgeproxy will", status))
	}
}
