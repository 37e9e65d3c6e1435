package coupon

import "errors"

// Status says how an answer was found; it becomes the X-Cache header.
type Status uint8

const (
	// Hit: answered from memory, no network trip.
	Hit Status = iota
	// Miss: something had to be read from the shared store.
	Miss
	// Stale: the shared store is unreachable and a cached answer older
	// than its freshness bound was served.
	Stale
)

func (s Status) String() string {
	switch s {
	case Miss:
		return "MISS"
	case Stale:
		return "STALE"
	default:
		return "HIT"
	}
}

// ErrUnavailable is returned by a Store that cannot answer at all.
var ErrUnavailable = errors.New("coupon store unavailable")

// Store is where the handler reads coupons. Implementations are safe for
// concurrent use and bound every network call by a deadline of their own.
type Store interface {
	// Coupon returns the stored JSON of the coupon id, or nil when there is
	// none. The bytes may be shared with other callers and must not be
	// modified; they are valid until the caller's next call with them.
	Coupon(id []byte) (raw []byte, st Status, err error)
	// Cells passes the index of each cell named in hashes, which holds
	// geohashes of precision bytes back to back, to v. Cells without
	// coupons may be skipped.
	Cells(hashes []byte, precision int, v CellVisitor) (Status, error)
}

// CellVisitor receives the index of one cell.
type CellVisitor interface {
	VisitCell(ix *Index)
}
