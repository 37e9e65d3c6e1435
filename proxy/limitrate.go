package proxy

import "time"

// limit_rate (nginx limit_rate): an upstream's response body is read, and
// so sent, no faster than the route's bytes per second. The pace is kept
// against the time the body started, so the average over the whole body
// holds (a slow client does not earn a later burst beyond the rate), and
// each read is small enough that the rate holds over short spans too. It
// counts the upstream's bytes: with compression on, the client gets fewer.

// pace waits until the bytes sent so far are due at the rate and returns
// p cut to one step's worth.
func (b *responseBody) pace(p []byte) []byte {
	step := min(max(b.rate/50, 1<<10), 64<<10)
	if int64(len(p)) > step {
		p = p[:step]
	}
	due := b.started.Add(time.Duration(float64(b.n) / float64(b.rate) * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		time.Sleep(wait)
	}
	return p
}
