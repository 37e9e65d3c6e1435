package cache

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// HotKeys returns up to max keys of L0 ("id:X" and "cell:HASH"), which
// holds coupons read more than once and the cells searched: what a
// process taking over from this one should read before it serves (Warm).
func (s *Store) HotKeys(max int) []string {
	keys := make([]string, 0, min(max, 1024))
	for i := range s.l0.shards {
		sh := &s.l0.shards[i]
		sh.mu.RLock()
		for k := range sh.m {
			if len(keys) == max {
				break
			}
			keys = append(keys, k)
		}
		sh.mu.RUnlock()
	}
	return keys
}

// Warm reads keys (as HotKeys returns them) from Redis into the cache,
// cells in batches, so the first requests for them are hits. A read that
// fails is retried until ctx ends; Warm returns how many keys are cached
// and ctx's error if some were not. Unknown keys are skipped.
func (s *Store) Warm(ctx context.Context, keys []string) (int, error) {
	var ids []string
	var cells []byte
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "id:") && coupon.ValidID(k[3:]):
			ids = append(ids, k[3:])
		case strings.HasPrefix(k, "cell:") && len(k) == len("cell:")+s.o.Precision:
			cells = append(cells, k[5:]...)
		}
	}
	warmed := 0
	for {
		var cold []string
		for _, id := range ids {
			if _, _, err := s.Coupon([]byte(id)); err != nil {
				cold = append(cold, id)
			} else {
				warmed++
			}
		}
		ids = cold
		if len(cells) > 0 {
			if _, err := s.Cells(cells, s.o.Precision, nopVisitor{}); err == nil {
				warmed += len(cells) / s.o.Precision
				cells = nil
			}
		}
		if len(ids) == 0 && len(cells) == 0 {
			return warmed, nil
		}
		// After a failure the store leaves Redis alone for retryAfterError.
		select {
		case <-ctx.Done():
			return warmed, errors.Join(ctx.Err(), coupon.ErrUnavailable)
		case <-time.After(retryAfterError):
		}
	}
}

type nopVisitor struct{}

func (nopVisitor) VisitCell(*coupon.Index) {}
