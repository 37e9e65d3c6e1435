package cache

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/rueidis"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// On Redis Cluster a coupon's id key and its cells live in different
// slots, so no MULTI/EXEC can cover them. Writers of one coupon instead
// serialize on a lock key of its own, {prefix}:lock:{id} (SET NX PX with a
// random token, released only by its holder), and under it change the keys
// in an order that keeps the id key the record and the cells an index of it:
//
//  1. SET (or DEL) the id key: the write is decided;
//  2. HDEL the coupon from the cell it leaves (or from its cell on delete);
//  3. HSET it into its (new) cell.
//
// Removals come before additions, so a reader never finds a coupon in two
// cells; a writer killed at any point leaves a layout that `coupons check`
// reports and `-repair` completes from the id key. README "Writing coupons
// on Redis Cluster" states the protocol for writers outside edgeproxy.

// LockTTL bounds how long a killed writer blocks the coupon it held. A
// writer must finish one coupon well within it.
const LockTTL = 10 * time.Second

// ErrLockLost: the lock expired while its writer still held it, so another
// writer may have written the coupon meanwhile; run `coupons check`.
var ErrLockLost = errors.New("coupon lock expired before it was released; run coupons check")

// unlockScript deletes the lock only if it still holds this writer's token.
var unlockScript = rueidis.NewLuaScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

func (w *Writer) lockKey(id string) string { return w.prefix + ":lock:" + id }

// lock takes the coupon's lock, waiting (with jittered back-off, bounded by
// ctx) while another writer holds it; it returns the token to unlock with.
func (w *Writer) lock(ctx context.Context, id string) (string, error) {
	var b [16]byte
	_, _ = cryptorand.Read(b[:])
	token := hex.EncodeToString(b[:])
	wait := time.Millisecond
	for {
		err := w.do(ctx, w.client.B().Set().Key(w.lockKey(id)).Value(token).Nx().Px(LockTTL).Build()).Error()
		if err == nil {
			return token, nil
		}
		if !rueidis.IsRedisNil(err) { // nil: NX refused, someone holds it
			return "", fmt.Errorf("locking coupon %s: %w", id, err)
		}
		// Or we hold it: an attempt whose reply was lost (w.do retried).
		if v, err := w.do(ctx, w.client.B().Get().Key(w.lockKey(id)).Build()).ToString(); err == nil && v == token {
			return token, nil
		}
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("locking coupon %s: %w", id, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

func (w *Writer) unlock(ctx context.Context, id, token string) error {
	var n int64
	err := retry(ctx, func() error {
		var err error
		n, err = unlockScript.Exec(ctx, w.client, []string{w.lockKey(id)}, []string{token}).AsInt64()
		return err
	})
	if err != nil {
		return fmt.Errorf("unlocking coupon %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("coupon %s: %w", id, ErrLockLost)
	}
	return nil
}

// transactCluster is transact on Redis Cluster: under the coupon's lock,
// read the old value, then run build's commands one at a time in order
// (rueidis's DoMulti would send commands for different nodes in parallel).
func (w *Writer) transactCluster(ctx context.Context, id string, build func(old *coupon.Coupon) rueidis.Commands) (err error) {
	// A killed writer's lock blocks for up to LockTTL: wait that long.
	lockCtx, cancel := context.WithTimeout(ctx, LockTTL+w.timeout)
	token, err := w.lock(lockCtx, id)
	cancel()
	if err != nil {
		return err
	}
	ctx, cancel = context.WithTimeout(ctx, w.timeout)
	defer cancel()
	defer func() {
		// Released even when the writes failed or ctx ended.
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), w.timeout)
		defer ucancel()
		if uerr := w.unlock(uctx, id, token); err == nil {
			err = uerr
		}
	}()
	old, err := w.read(ctx, w.client, id)
	if err != nil {
		return err
	}
	for _, cmd := range build(old) {
		if err := w.do(ctx, cmd).Error(); err != nil {
			return fmt.Errorf("coupon %s: %w", id, err)
		}
	}
	return nil
}

// do runs one command of the protocol, again while the cluster fails over
// (see retry). Every command of the protocol may run twice.
func (w *Writer) do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	cmd = cmd.Pin() // rueidis recycles a command once it is sent
	var r rueidis.RedisResult
	_ = retry(ctx, func() error {
		r = w.client.Do(ctx, cmd)
		return r.Error()
	})
	return r
}

// retry runs f until it succeeds, fails for good, or ctx ends. Connection
// errors, CLUSTERDOWN, TRYAGAIN and LOADING are what a cluster answers
// while a master is replaced; rueidis refreshes its slot map on them, so
// a later try reaches the new master. rueidis itself retries reads only.
func retry(ctx context.Context, f func() error) error {
	wait := 10 * time.Millisecond
	for {
		err := f()
		if !transient(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

func transient(err error) bool {
	if err == nil || rueidis.IsRedisNil(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		return re.IsClusterDown() || re.IsTryAgain() || re.IsLoading()
	}
	return true // the connection failed
}
