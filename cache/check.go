package cache

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/redis/rueidis"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// Disagreement is one coupon whose id key and cell entries do not agree
// (SPEC §2 `coupons check`): the problems found, and what Repair needs.
type Disagreement struct {
	ID       string
	Problems []string
	// Cells holding a field for the coupon, as found.
	Cells []string
	// Unrepairable: the id key holds no valid coupon, so the cell it
	// belongs in is unknown; an operator must fix or delete the id key.
	Unrepairable bool
}

// String is the line `coupons check` prints: "ID: problem; problem".
func (d Disagreement) String() string { return d.ID + ": " + strings.Join(d.Problems, "; ") }

// layout is what a scan found: id key values and cell contents.
type layout struct {
	ids   map[string]string            // id → id key's JSON
	cells map[string]map[string]string // cell hash → id → JSON
}

// Check scans the §5 layout (every master on a cluster) and returns the
// coupons whose id key and cell entries disagree, ordered by id. A coupon
// that looks wrong in the scan is read again before it is reported, so a
// write that ran during the scan is not reported.
func (w *Writer) Check(ctx context.Context) ([]Disagreement, error) {
	l, err := w.scan(ctx)
	if err != nil {
		return nil, err
	}
	var out []Disagreement
	for _, d := range w.compare(l) {
		again, err := w.recheck(ctx, d)
		if err != nil {
			return nil, err
		}
		if again != nil {
			out = append(out, *again)
		}
	}
	return out, nil
}

// compare finds disagreements in a scanned layout.
func (w *Writer) compare(l layout) []Disagreement {
	where := map[string][]string{} // id → cells holding it
	for cell, fields := range l.cells {
		for id := range fields {
			where[id] = append(where[id], cell)
		}
	}
	all := map[string]bool{}
	for id := range l.ids {
		all[id] = true
	}
	for id := range where {
		all[id] = true
	}
	var out []Disagreement
	for id := range all {
		cells := where[id]
		sort.Strings(cells)
		raw, hasID := l.ids[id]
		if d := w.judge(id, raw, hasID, cells, func(cell string) string { return l.cells[cell][id] }); d != nil {
			out = append(out, *d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// judge compares one coupon's id key (raw, when hasID) with the cells that
// hold a field for it (field returns that field's JSON).
func (w *Writer) judge(id, raw string, hasID bool, cells []string, field func(cell string) string) *Disagreement {
	d := Disagreement{ID: id, Cells: cells}
	if !hasID {
		for _, cell := range cells {
			d.Problems = append(d.Problems, fmt.Sprintf("in cell %s but there is no id key", cell))
		}
		return nilIfClean(d)
	}
	c, err := coupon.Parse([]byte(raw))
	if err != nil {
		d.Unrepairable = true
		d.Problems = append(d.Problems, fmt.Sprintf("id key is not a valid coupon (%v)", err))
		return &d
	}
	want := coupon.Geohash(c.Lat, c.Lon, w.precision)
	found := false
	for _, cell := range cells {
		if cell != want {
			d.Problems = append(d.Problems, fmt.Sprintf("in cell %s, which is not the cell of its position (%s)", cell, want))
			continue
		}
		found = true
		if field(cell) != raw {
			d.Problems = append(d.Problems, fmt.Sprintf("cell %s holds other JSON than the id key", cell))
		}
	}
	if !found {
		d.Problems = append(d.Problems, fmt.Sprintf("missing from its cell %s", want))
	}
	return nilIfClean(d)
}

func nilIfClean(d Disagreement) *Disagreement {
	if len(d.Problems) == 0 {
		return nil
	}
	return &d
}

// recheck reads one suspect coupon again: its id key and its field in the
// cells the scan found it in and the cell of its position.
func (w *Writer) recheck(ctx context.Context, d Disagreement) (*Disagreement, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	raw, err := w.client.Do(ctx, w.client.B().Get().Key(w.idKey(d.ID)).Build()).ToString()
	hasID := err == nil
	if err != nil && !rueidis.IsRedisNil(err) {
		return nil, fmt.Errorf("reading %s: %w", w.idKey(d.ID), err)
	}
	look := append([]string(nil), d.Cells...)
	if c, err := coupon.Parse([]byte(raw)); hasID && err == nil {
		look = append(look, coupon.Geohash(c.Lat, c.Lon, w.precision))
	}
	fields := map[string]string{}
	var cells []string
	for _, cell := range look {
		if _, seen := fields[cell]; seen {
			continue
		}
		v, err := w.client.Do(ctx, w.client.B().Hget().Key(w.cellKey(cell)).Field(d.ID).Build()).ToString()
		if rueidis.IsRedisNil(err) {
			fields[cell] = ""
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", w.cellKey(cell), err)
		}
		fields[cell] = v
		cells = append(cells, cell)
	}
	sort.Strings(cells)
	return w.judge(d.ID, raw, hasID, cells, func(cell string) string { return fields[cell] }), nil
}

// Repair makes the cell side of d agree with the id key, as a writer
// would (under the coupon's lock on a cluster, WATCH/MULTI/EXEC on one
// Redis): the coupon leaves every cell but its own, and its own cell holds
// the id key's JSON; without an id key it leaves every cell.
func (w *Writer) Repair(ctx context.Context, d Disagreement) error {
	if d.Unrepairable {
		return fmt.Errorf("coupon %s: the id key is not a valid coupon; fix or delete it", d.ID)
	}
	return w.transact(ctx, d.ID, func(cur *coupon.Coupon) rueidis.Commands {
		want := ""
		if cur != nil {
			want = coupon.Geohash(cur.Lat, cur.Lon, w.precision)
		}
		var cmds rueidis.Commands
		for _, cell := range d.Cells {
			if cell != want {
				cmds = append(cmds, w.client.B().Hdel().Key(w.cellKey(cell)).Field(d.ID).Build())
			}
		}
		if cur != nil {
			cmds = append(cmds, w.client.B().Hset().Key(w.cellKey(want)).FieldValue().FieldValue(d.ID, string(cur.Raw)).Build())
		}
		return cmds
	})
}

// scan reads every id key and cell of the prefix.
func (w *Writer) scan(ctx context.Context) (layout, error) {
	l := layout{ids: map[string]string{}, cells: map[string]map[string]string{}}
	nodes, err := w.masters(ctx)
	if err != nil {
		return l, err
	}
	var idKeys, cellKeys []string
	seen := map[string]bool{}
	for _, n := range nodes {
		keys, err := w.scanKeys(ctx, n)
		if err != nil {
			return l, err
		}
		for _, k := range keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			switch rest := k[len(w.prefix)+1:]; {
			case strings.HasPrefix(rest, "id:"):
				idKeys = append(idKeys, k)
			case strings.HasPrefix(rest, "cell:"):
				cellKeys = append(cellKeys, k)
			}
		}
	}
	for start := 0; start < len(idKeys); start += maxBatch {
		batch := idKeys[start:min(start+maxBatch, len(idKeys))]
		cmds := make(rueidis.Commands, len(batch))
		for i, k := range batch {
			cmds[i] = w.client.B().Get().Key(k).Build()
		}
		for i, r := range w.doMulti(ctx, cmds) {
			v, err := r.ToString()
			if rueidis.IsRedisNil(err) {
				continue // deleted during the scan
			}
			if err != nil {
				return l, fmt.Errorf("reading %s: %w", batch[i], err)
			}
			l.ids[batch[i][len(w.prefix)+len(":id:"):]] = v
		}
	}
	for start := 0; start < len(cellKeys); start += maxBatch {
		batch := cellKeys[start:min(start+maxBatch, len(cellKeys))]
		cmds := make(rueidis.Commands, len(batch))
		for i, k := range batch {
			cmds[i] = w.client.B().Hgetall().Key(k).Build()
		}
		for i, r := range w.doMulti(ctx, cmds) {
			fields, err := r.AsStrMap()
			if err != nil {
				return l, fmt.Errorf("reading %s: %w", batch[i], err)
			}
			l.cells[batch[i][len(w.prefix)+len(":cell:"):]] = fields
		}
	}
	return l, nil
}

func (w *Writer) doMulti(ctx context.Context, cmds rueidis.Commands) []rueidis.RedisResult {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	return w.client.DoMulti(ctx, cmds...)
}

// masters are the clients to scan: the one Redis, or every master of a
// cluster (replicas hold copies of the same keys).
func (w *Writer) masters(ctx context.Context) ([]rueidis.Client, error) {
	if w.client.Mode() != rueidis.ClientModeCluster {
		return []rueidis.Client{w.client}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var out []rueidis.Client
	for addr, n := range w.client.Nodes() {
		role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
		if err != nil {
			return nil, fmt.Errorf("ROLE on %s: %w", addr, err)
		}
		if len(role) > 0 {
			if r, _ := role[0].ToString(); r == "master" {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// scanKeys lists the prefix's keys on one node with SCAN.
func (w *Writer) scanKeys(ctx context.Context, n rueidis.Client) ([]string, error) {
	var keys []string
	cursor := uint64(0)
	for {
		sctx, cancel := context.WithTimeout(ctx, w.timeout)
		e, err := n.Do(sctx, n.B().Scan().Cursor(cursor).Match(globEscape(w.prefix)+":*").Count(1000).Build()).AsScanEntry()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("SCAN: %w", err)
		}
		keys = append(keys, e.Elements...)
		if e.Cursor == 0 {
			return keys, nil
		}
		cursor = e.Cursor
	}
}

// globEscape quotes the characters SCAN MATCH treats as pattern syntax.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
