package proxy

import "time"

// maxDeadlineSlack bounds how late a timeout may fire: a route's own
// timeout, which the upstream's connections do not know, included. nginx
// allows its timers 300 ms.
const maxDeadlineSlack = 25 * time.Millisecond

// lazyDeadline arms a connection's read or write deadline the way nginx
// arms its timers (NGX_TIMER_LAZY_DELAY): not again while the deadline
// armed lies within slack after the one wanted. The pass-through profile
// spent 4% of CPU re-arming the runtime's timer for every read and write,
// each time to a deadline a few microseconds later than the last; now a
// busy connection re-arms once per slack, and a timeout fires at most
// slack late.
type lazyDeadline struct{ armed time.Time }

// update returns the deadline to arm for want, and whether it must be
// armed at all.
func (d *lazyDeadline) update(want time.Time, slack time.Duration) (time.Time, bool) {
	if want.IsZero() {
		if d.armed.IsZero() {
			return want, false
		}
		d.armed = want
		return want, true
	}
	if !d.armed.IsZero() && !d.armed.Before(want) && d.armed.Sub(want) <= slack {
		return d.armed, false
	}
	d.armed = want.Add(slack)
	return d.armed, true
}

// deadlineSlack is an eighth of the shortest positive timeout, at most
// maxDeadlineSlack.
func deadlineSlack(timeouts ...time.Duration) time.Duration {
	slack := maxDeadlineSlack
	for _, t := range timeouts {
		if t > 0 {
			slack = min(slack, t/8)
		}
	}
	return slack
}
