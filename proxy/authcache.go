package proxy

import (
	"sync"
	"time"
)

// authCache keeps auth_request verdicts per key value for a TTL, at most
// max of them: when full, an entry is dropped (expired ones first seen,
// else an arbitrary one) before a new one goes in. Safe for concurrent use.
type authCache struct {
	ttl time.Duration
	max int

	mu sync.Mutex // guards m
	m  map[string]authCacheEntry
}

type authCacheEntry struct {
	v       *authVerdict
	expires time.Time
}

func newAuthCache(maxEntries int, ttl time.Duration) *authCache {
	if maxEntries <= 0 {
		maxEntries = 10000
	}
	return &authCache{ttl: ttl, max: maxEntries, m: make(map[string]authCacheEntry)}
}

func (c *authCache) get(key []byte, now time.Time) (*authVerdict, bool) {
	if len(key) == 0 {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.m[string(key)]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.v, true
}

func (c *authCache) put(key []byte, v *authVerdict, now time.Time) {
	if len(key) == 0 || len(key) > 4096 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[string(key)]; !ok && len(c.m) >= c.max {
		dropped := 0
		for k, e := range c.m {
			if dropped > 0 && now.Before(e.expires) {
				break
			}
			delete(c.m, k)
			dropped++
			if dropped >= 16 {
				break
			}
		}
	}
	c.m[string(key)] = authCacheEntry{v: v, expires: now.Add(c.ttl)}
}

func (c *authCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
