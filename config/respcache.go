package config

import (
	"fmt"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// ResponseCacheBytes is the response cache's share of [cache] max_bytes.
func (c *Config) ResponseCacheBytes() int64 {
	return int64(float64(c.Cache.MaxBytes) * c.Cache.ResponseShare)
}

// validateRouteCache checks a route's cache table.
func (c *Config) validateRouteCache(p *problems, k string, r *Route) {
	rc := &r.Cache
	if !rc.Enabled {
		return
	}
	k += ".cache"
	if r.Upstream == "" {
		p.add(k+".enabled", "caches upstream answers: the route needs upstream")
	}
	if c.ResponseCacheBytes() < 1<<20 {
		p.add(k+".enabled", "needs a response cache: [cache] max_bytes * response_share is under 1MiB")
	}
	if _, err := vars.Parse(rc.Key); err != nil || rc.Key == "" {
		p.add(k+".key", "%v", keyErr(rc.Key, err))
	}
	for i, b := range rc.Bypass {
		if _, err := vars.Parse(b); err != nil {
			p.add(fmt.Sprintf("%s.bypass[%d]", k, i), "%v", err)
		}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"max_age", rc.MaxAge}, {"stale_while_revalidate", rc.StaleWhileRevalidate}, {"stale_if_error", rc.StaleIfError}} {
		if d.v.Duration < 0 {
			p.add(k+"."+d.name, "must not be negative")
		}
	}
	if rc.MaxBody <= 0 {
		p.add(k+".max_body", "must be positive (got %d)", rc.MaxBody)
	} else if limit := c.ResponseCacheBytes() / 4; int64(rc.MaxBody) > limit && limit >= 1<<20 {
		p.add(k+".max_body", "must be at most a quarter of the response cache (%d bytes; got %d)", limit, rc.MaxBody)
	}
	for i, h := range rc.ForwardHeaders {
		if !validToken.MatchString(h) {
			p.add(fmt.Sprintf("%s.forward_headers[%d]", k, i), "%q is not a header name", h)
		}
	}
}

func keyErr(key string, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("must not be empty")
}
