// Package ratelimit implements the rate_limit modes of SPEC §10 that use
// Redis, behind proxy.RateLimiters (the proxy never imports rueidis):
//
//   - shared: every decision is local (GCRA on an in-process table,
//     internal/gcra); every sync_interval each instance adds the requests
//     it admitted per key to a counter in Redis (INCRBY, one pipelined
//     batch) and charges the growth it did not cause, the other
//     instances' admissions, to its own table. No request waits on Redis.
//   - exact: one Lua script call per request runs GCRA on Redis's clock
//     (TIME); the only mode with a round trip.
//
// Error bound of shared mode, N instances, sync interval I, rate r per
// second, burst b: another instance's admission reaches this table at
// most 2·I later (its next push, then this instance's next read), so
// over any span of D seconds the cluster admits at most
//
//	r·D + (b+1) + (N−1)·(2·I·r + b+1)
//
// requests: each instance's table is short by at most what the others
// admitted in the last 2·I, plus the burst each starts with. The excess is
// a constant, so over long spans the rate holds; measured in
// TestSharedAggregateBound.
//
// Redis unreachable: shared keeps deciding locally (counts are not
// exchanged) and exact decides on a local table; both mark those
// decisions Fallback, which the proxy counts in metrics. Never a 500.
package ratelimit
