package proxy

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/internal/gcra"
	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// RateLimitOptions are a route's rate_limit (SPEC §10), nginx limit_req.
type RateLimitOptions struct {
	// Key is the template counted per value (default "$remote_addr"). Its
	// value is cut to MaxRateKeyBytes: a key read from a client header is
	// the client's to choose.
	Key string
	// Count requests per Period: "10/s" is 10 per second.
	Count  int
	Period time.Duration
	// Burst requests above the rate are admitted at once (NoDelay) or
	// delayed to the rate (nginx limit_req without nodelay).
	Burst   int
	NoDelay bool
	// Mode is "local", "shared" or "exact"; shared and exact need
	// Options.RateLimiters, and are local without.
	Mode string
	// MaxKeys bounds the key table (default 65536).
	MaxKeys int
}

// MaxRateKeyBytes is the longest key value counted; longer values are cut.
const MaxRateKeyBytes = 256

// Interval is the emission interval: the time one request uses up.
func (o RateLimitOptions) Interval() time.Duration {
	if o.Count <= 0 {
		return o.Period
	}
	return o.Period / time.Duration(o.Count)
}

// RateLimiter decides the requests of one route's rate_limit. It is safe
// for concurrent use; key is valid only during the call.
type RateLimiter interface {
	Take(key []byte, now time.Time) RateDecision
}

// RateDecision is one request's verdict.
type RateDecision struct {
	Allowed bool
	// Wait: for an admitted request, how long it queues behind earlier
	// ones at the rate (the delay without nodelay); for a refused one,
	// how long until one would be admitted.
	Wait time.Duration
	// Fallback: decided locally because Redis is unreachable.
	Fallback bool
}

// RateLimiters makes the limiters of the modes that need Redis (shared,
// exact). route names the limiter's counters in Redis. A limiter made for
// the same route and options may be returned again across reloads.
type RateLimiters interface {
	NewRateLimiter(route string, o RateLimitOptions) (RateLimiter, error)
}

// localLimiter is mode "local": GCRA per key in this process.
type localLimiter struct{ t *gcra.Table }

// NewLocalRateLimiter is mode "local".
func NewLocalRateLimiter(o RateLimitOptions) RateLimiter {
	maxKeys := o.MaxKeys
	if maxKeys <= 0 {
		maxKeys = 65536
	}
	return localLimiter{gcra.New(maxKeys, int64(o.Interval()), o.Burst)}
}

func (l localLimiter) Take(key []byte, now time.Time) RateDecision {
	r := l.t.Take(gcra.Hash(key), now.UnixNano(), false)
	return RateDecision{Allowed: r.Allowed, Wait: time.Duration(r.Wait)}
}

// rateLimitStep answers 429 to requests over the route's rate.
type rateLimitStep struct {
	key     *vars.Template
	lim     RateLimiter
	noDelay bool
	mode    string
	desc    string
	policy  []byte // RateLimit-Policy value

	limitedC, fallbackC prometheus.Counter
	limited, fallbacks  atomic.Uint64
}

var (
	hRetryAfter      = []byte("Retry-After")
	hRateLimitPolicy = []byte("RateLimit-Policy")
	hRateLimit       = []byte("RateLimit")
)

func (s *Server) newRateLimitStep(route string, o RateLimitOptions, st *state) (*rateLimitStep, error) {
	if o.Key == "" {
		o.Key = "$remote_addr"
	}
	key, err := vars.Parse(o.Key)
	if err != nil {
		return nil, err
	}
	step := &rateLimitStep{key: key, noDelay: o.NoDelay, mode: o.Mode}
	if step.mode == "" {
		step.mode = "local"
	}
	// Limiters outlive a reload when their route and options stay, so a
	// SIGHUP does not hand every client a fresh burst.
	id := route + "\x00" + strconv.Quote(o.Key) + "/" + strconv.Itoa(o.Count) + "/" + o.Period.String() + "/" +
		strconv.Itoa(o.Burst) + "/" + step.mode + "/" + strconv.Itoa(o.MaxKeys)
	lim := s.limiters[id]
	if lim == nil {
		if step.mode != "local" && s.fixed.RateLimiters != nil {
			if lim, err = s.fixed.RateLimiters.NewRateLimiter(route, o); err != nil {
				return nil, err
			}
		} else {
			if step.mode != "local" {
				s.log.Warn("rate_limit mode needs Redis, which is not configured: counting locally")
			}
			lim = NewLocalRateLimiter(o)
		}
	}
	st.limiters[id] = lim
	step.lim = lim
	window := max(int64(o.Period/time.Second), 1)
	step.policy = append(step.policy, `"default";q=`...)
	step.policy = strconv.AppendInt(step.policy, int64(o.Count), 10)
	step.policy = append(step.policy, ";w="...)
	step.policy = strconv.AppendInt(step.policy, window, 10)
	step.desc = strconv.Itoa(o.Count) + "/" + o.Period.String() + " burst " + strconv.Itoa(o.Burst) + " " + step.mode
	if o.NoDelay {
		step.desc += " nodelay"
	}
	step.limitedC = st.opts.Metrics.counter(func(m *Metrics) *prometheus.CounterVec { return m.rateLimited }, route, step.mode)
	step.fallbackC = st.opts.Metrics.counter(func(m *Metrics) *prometheus.CounterVec { return m.rateFallbacks }, route, step.mode)
	return step, nil
}

func (r *rateLimitStep) onRequest(ctx *fasthttp.RequestCtx, ex *exchange) bool {
	ex.scratch = r.key.Append(ex.scratch[:0], ex)
	k := ex.scratch
	if len(k) > MaxRateKeyBytes {
		k = k[:MaxRateKeyBytes]
	}
	d := r.lim.Take(k, ex.srv.now())
	if d.Fallback {
		r.fallbacks.Add(1)
		r.fallbackC.Inc()
	}
	if d.Allowed {
		if !r.noDelay && d.Wait > 0 {
			// nginx's limit_req without nodelay: the excess within the
			// burst goes out at the rate. Wait is at most burst
			// intervals.
			time.Sleep(d.Wait)
		}
		return false
	}
	r.limited.Add(1)
	r.limitedC.Inc()
	ex.cause = "rate limited"
	writeError(ctx, fasthttp.StatusTooManyRequests)
	secs := max(int64((d.Wait+time.Second-1)/time.Second), 1)
	h := &ctx.Response.Header
	ex.scratch = strconv.AppendInt(ex.scratch[:0], secs, 10)
	h.SetBytesKV(hRetryAfter, ex.scratch)
	h.SetBytesKV(hRateLimitPolicy, r.policy)
	ex.scratch = append(ex.scratch[:0], `"default";r=0;t=`...)
	ex.scratch = strconv.AppendInt(ex.scratch, secs, 10)
	h.SetBytesKV(hRateLimit, ex.scratch)
	return true
}
