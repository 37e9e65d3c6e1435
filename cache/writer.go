package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// Writer writes coupons in the layout of SPEC §5, as coupon writers do:
// a coupon's STRING and its cell field change together in one MULTI/EXEC,
// and a coupon that moved leaves its old cell in the same transaction.
type Writer struct {
	client    rueidis.Client
	prefix    string
	precision int
	timeout   time.Duration
}

// NewWriter connects to Redis for writing.
func NewWriter(o Options) (*Writer, error) {
	opt, err := baseOption(o, "edgeproxy-writer")
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	return &Writer{client: client, prefix: o.KeyPrefix, precision: o.Precision, timeout: max(o.CommandTimeout, 5*time.Second)}, nil
}

// Close closes the connection.
func (w *Writer) Close() { w.client.Close() }

// EnsureMeta writes {prefix}:meta, or fails if it names another precision.
func (w *Writer) EnsureMeta(ctx context.Context) error {
	if err := CheckPrecision(ctx, w.client, w.prefix, w.precision, w.timeout); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	return w.client.Do(ctx, w.client.B().Hset().Key(w.prefix+":meta").FieldValue().
		FieldValue("precision", strconv.Itoa(w.precision)).FieldValue("schema", "1").Build()).Error()
}

func (w *Writer) idKey(id string) string     { return w.prefix + ":id:" + id }
func (w *Writer) cellKey(cell string) string { return w.prefix + ":cell:" + cell }

// Put writes c, moving it out of its old cell if its position changed.
// The commands are in the order the cluster protocol needs (lock.go): the
// id key, then the removal from the old cell, then the new cell.
func (w *Writer) Put(ctx context.Context, c coupon.Coupon) error {
	cell := coupon.Geohash(c.Lat, c.Lon, w.precision)
	return w.transact(ctx, c.ID, func(old *coupon.Coupon) rueidis.Commands {
		cmds := rueidis.Commands{w.client.B().Set().Key(w.idKey(c.ID)).Value(string(c.Raw)).Build()}
		if old != nil {
			if oldCell := coupon.Geohash(old.Lat, old.Lon, w.precision); oldCell != cell {
				cmds = append(cmds, w.client.B().Hdel().Key(w.cellKey(oldCell)).Field(c.ID).Build())
			}
		}
		return append(cmds, w.client.B().Hset().Key(w.cellKey(cell)).FieldValue().FieldValue(c.ID, string(c.Raw)).Build())
	})
}

// Delete removes the coupon id and its cell field; a missing id is no error.
func (w *Writer) Delete(ctx context.Context, id string) (bool, error) {
	existed := false
	err := w.transact(ctx, id, func(old *coupon.Coupon) rueidis.Commands {
		cmds := rueidis.Commands{w.client.B().Del().Key(w.idKey(id)).Build()}
		existed = old != nil
		if old != nil {
			cmds = append(cmds, w.client.B().Hdel().Key(w.cellKey(coupon.Geohash(old.Lat, old.Lon, w.precision))).Field(id).Build())
		}
		return cmds
	})
	return existed, err
}

var errConflict = errors.New("coupon changed concurrently")

// transact reads the coupon's current value under WATCH and applies the
// commands build returns in one MULTI/EXEC, retrying if another writer
// changed the coupon in between. Redis Cluster cannot run a transaction
// across the id and cell slots: there transactCluster takes over.
func (w *Writer) transact(ctx context.Context, id string, build func(old *coupon.Coupon) rueidis.Commands) error {
	if w.client.Mode() == rueidis.ClientModeCluster {
		return w.transactCluster(ctx, id, build)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	for attempt := 0; attempt < 10; attempt++ {
		err := w.client.Dedicated(func(dc rueidis.DedicatedClient) error {
			if err := dc.Do(ctx, dc.B().Watch().Key(w.idKey(id)).Build()).Error(); err != nil {
				return err
			}
			old, err := w.read(ctx, dc, id)
			if err != nil {
				return err
			}
			cmds := append(rueidis.Commands{dc.B().Multi().Build()}, build(old)...)
			cmds = append(cmds, dc.B().Exec().Build())
			res := dc.DoMulti(ctx, cmds...)
			for _, r := range res[:len(res)-1] {
				if err := r.Error(); err != nil {
					return err
				}
			}
			if rueidis.IsRedisNil(res[len(res)-1].Error()) {
				return errConflict // EXEC aborted: the WATCHed key changed
			}
			return res[len(res)-1].Error()
		})
		if !errors.Is(err, errConflict) {
			return err
		}
	}
	return fmt.Errorf("coupon %s: %w", id, errConflict)
}

type doer interface {
	Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult
	B() rueidis.Builder
}

func (w *Writer) read(ctx context.Context, c doer, id string) (*coupon.Coupon, error) {
	raw, err := c.Do(ctx, c.B().Get().Key(w.idKey(id)).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	old, err := coupon.Parse(raw)
	if err != nil {
		return nil, nil // an unreadable old value has no cell to leave
	}
	return &old, nil
}

// CheckPrecision compares {prefix}:meta with the writer's precision.
func (w *Writer) CheckPrecision(ctx context.Context) error {
	return CheckPrecision(ctx, w.client, w.prefix, w.precision, w.timeout)
}
