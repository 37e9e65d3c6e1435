package proxy

import (
	"time"

	"go.uber.org/zap"
)

// attempts walks an upstream's servers for one request by the retry rules
// of SPEC §4: each attempt on a server not tried yet, at most retries+1 of
// them. Forwarding and the upgrade handshake both go through it, so they
// pick, count and judge failures alike.
type attempts struct {
	s       *Server
	ex      *exchange
	up      *upstream
	set     *serverSet // the servers as they were when the request began
	key     uint64     // balance = "hash"
	tried   uint64     // bit set over set.servers
	n       int        // attempts begun
	timeout time.Duration
}

func (s *Server) attempts(ex *exchange, up *upstream) attempts {
	a := attempts{s: s, ex: ex, up: up, set: up.set.Load(), key: up.keyOf(ex), timeout: up.opts.ResponseTimeout}
	if ex.rt != nil && ex.rt.timeout > 0 {
		a.timeout = time.Duration(ex.rt.timeout)
	}
	return a
}

// next is the server of the next attempt, nil when the retries are spent
// or no untried server is available.
func (a *attempts) next(now time.Time) *server {
	if a.n > a.up.opts.Retries {
		return nil
	}
	i := a.up.pick(a.set, now, a.tried, a.key)
	if i < 0 {
		if a.n == 0 {
			a.ex.cause = "no available server in upstream " + a.up.name
		}
		return nil
	}
	a.tried |= 1 << uint(i%64)
	a.n++
	return a.set.servers[i]
}

// retry is the index of the attempt begun last: 0 for the first.
func (a *attempts) retry() int { return a.n - 1 }

// failed records that the attempt on srv ended at done with err: the
// exchange's cause, the server's passive health. It says what the failure
// means for the request.
func (a *attempts) failed(srv *server, done time.Time, err error) failure {
	f := classify(err)
	a.ex.cause = err.Error()
	o := &a.up.opts
	if f.health && srv.fail(done, o.MaxFails, o.FailTimeout) {
		a.s.log.Warn("upstream server taken out by passive health check",
			zap.String("upstream", a.up.name), zap.String("server", srv.addr), zap.Error(err))
	}
	return f
}

// answered records the server that answered the attempt begun at now.
func (a *attempts) answered(srv *server, now, done time.Time) {
	a.ex.upstreamAddr = srv.addr
	a.ex.upstreamDuration = done.Sub(now)
}

// count counts an attempt on s; the caller marks it in flight.
func (s *server) count(attempt int) {
	s.requests.Add(1)
	s.metrics.attempts.Inc()
	if attempt > 0 {
		s.metrics.retries.Inc()
	}
}
