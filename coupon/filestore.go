package coupon

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// FileStore serves coupons from a JSONL file read once at start: the same
// API with no Redis. It is read-only and safe for concurrent use.
type FileStore struct {
	byID  map[string][]byte
	cells map[string]*Index // geohash → index
	Count int
}

var _ Store = (*FileStore)(nil)

// LoadFile reads path, one coupon a line. Every bad line is reported, as
// path:line: message.
func LoadFile(path string, precision int) (*FileStore, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	coupons := map[string]Coupon{}
	var problems []string
	err = ReadJSONL(f, func(line int, c Coupon, err error) error {
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %v", path, line, err))
			return nil
		}
		coupons[c.ID] = c // a later line for the same id replaces it
		return nil
	})
	if err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", path, err))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return NewMemoryStore(coupons, precision), nil
}

// NewMemoryStore indexes coupons by id and by cell.
func NewMemoryStore(coupons map[string]Coupon, precision int) *FileStore {
	s := &FileStore{byID: make(map[string][]byte, len(coupons)), cells: map[string]*Index{}, Count: len(coupons)}
	byCell := map[string][]Coupon{}
	for id, c := range coupons {
		s.byID[id] = c.Raw
		cell := Geohash(c.Lat, c.Lon, precision)
		byCell[cell] = append(byCell[cell], c)
	}
	for cell, cs := range byCell {
		s.cells[cell] = NewIndex(cs)
	}
	return s
}

// Coupon implements Store.
func (s *FileStore) Coupon(id []byte) ([]byte, Status, error) {
	return s.byID[string(id)], Hit, nil
}

// Cells implements Store.
func (s *FileStore) Cells(hashes []byte, precision int, v CellVisitor) (Status, error) {
	for i := 0; (i+1)*precision <= len(hashes); i++ {
		if ix, ok := s.cells[string(hashes[i*precision:(i+1)*precision])]; ok {
			v.VisitCell(ix)
		}
	}
	return Hit, nil
}
