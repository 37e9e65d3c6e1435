package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/edgeproxy/edgeproxy/internal/gcra"
	"github.com/edgeproxy/edgeproxy/proxy"
)

// gcraScript is GCRA on Redis's clock. KEYS[1] holds the key's
// theoretical arrival time in µs; ARGV: emission interval and burst
// tolerance in µs. It answers {allowed, wait µs}.
var gcraScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat - now
if ahead > tolerance then
  return {0, ahead - tolerance}
end
local nt = tat + interval
redis.call('SET', KEYS[1], string.format('%d', nt), 'PX', math.ceil((nt - now) / 1000) + 1000)
return {1, ahead}
`)

// retryAfterError: after a failure Redis is not asked for this long; the
// local table decides meanwhile.
const retryAfterError = 250 * time.Millisecond

// exact asks Redis on every request.
type exact struct {
	l        *Limiters
	prefix   string
	args     []string
	local    *gcra.Table
	failedAt atomic.Int64
}

func newExact(l *Limiters, prefix string, o proxy.RateLimitOptions) *exact {
	maxKeys := o.MaxKeys
	if maxKeys <= 0 {
		maxKeys = 65536
	}
	iv := o.Interval()
	return &exact{l: l, prefix: prefix, local: gcra.New(maxKeys, int64(iv), o.Burst),
		args: []string{strconv.FormatInt(iv.Microseconds(), 10), strconv.FormatInt(iv.Microseconds()*int64(o.Burst), 10)}}
}

func (e *exact) Take(key []byte, now time.Time) proxy.RateDecision {
	c := e.l.redis()
	if c != nil && now.UnixNano()-e.failedAt.Load() > int64(retryAfterError) {
		ctx, cancel := context.WithTimeout(e.l.ctx, e.l.o.CommandTimeout)
		r, err := gcraScript.Exec(ctx, c, []string{e.prefix + string(key)}, e.args).AsIntSlice()
		cancel()
		if err == nil && len(r) == 2 {
			return proxy.RateDecision{Allowed: r[0] == 1, Wait: time.Duration(r[1]) * time.Microsecond}
		}
		e.failedAt.Store(now.UnixNano())
	}
	lr := e.local.Take(gcra.Hash(key), now.UnixNano(), false)
	return proxy.RateDecision{Allowed: lr.Allowed, Wait: time.Duration(lr.Wait), Fallback: true}
}
