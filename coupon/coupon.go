package coupon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Coupon is the part of a coupon the proxy reads; Raw is the whole stored
// object, returned byte for byte.
type Coupon struct {
	ID  string
	Lat float64
	Lon float64
	// ValidFrom and ValidUntil are unix nanoseconds; absent bounds are
	// math.MinInt64 and math.MaxInt64.
	ValidFrom  int64
	ValidUntil int64
	Raw        []byte
}

// ValidAt reports valid_from <= now < valid_until.
func (c *Coupon) ValidAt(now int64) bool { return c.ValidFrom <= now && now < c.ValidUntil }

// MaxIDLen is the longest coupon id.
const MaxIDLen = 128

// ValidID reports whether id may name a coupon: 1–128 of A-Za-z0-9_-, and
// not "nearby", which is the search endpoint.
func ValidID[T string | []byte](id T) bool {
	if len(id) == 0 || len(id) > MaxIDLen || string(id) == "nearby" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Parse validates one coupon's JSON and returns it. The error names the
// field at fault.
func Parse(raw []byte) (Coupon, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return Coupon{}, errors.New("a coupon must be a JSON object")
	}
	var f struct {
		ID         *json.RawMessage `json:"id"`
		Lat        *json.RawMessage `json:"lat"`
		Lon        *json.RawMessage `json:"lon"`
		ValidFrom  *json.RawMessage `json:"valid_from"`
		ValidUntil *json.RawMessage `json:"valid_until"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return Coupon{}, fmt.Errorf("invalid JSON: %v", err)
	}
	c := Coupon{ValidFrom: math.MinInt64, ValidUntil: math.MaxInt64, Raw: raw}
	if f.ID == nil {
		return Coupon{}, errors.New("id: missing")
	}
	if err := json.Unmarshal(*f.ID, &c.ID); err != nil {
		return Coupon{}, errors.New("id: must be a string")
	}
	if !ValidID(c.ID) {
		return Coupon{}, fmt.Errorf("id: %q must be 1-128 of A-Za-z0-9_- and not \"nearby\"", c.ID)
	}
	var err error
	if c.Lat, err = number(f.Lat, "lat", -90, 90); err != nil {
		return Coupon{}, err
	}
	if c.Lon, err = number(f.Lon, "lon", -180, 180); err != nil {
		return Coupon{}, err
	}
	if f.ValidFrom != nil {
		if c.ValidFrom, err = timestamp(*f.ValidFrom, "valid_from"); err != nil {
			return Coupon{}, err
		}
	}
	if f.ValidUntil != nil {
		if c.ValidUntil, err = timestamp(*f.ValidUntil, "valid_until"); err != nil {
			return Coupon{}, err
		}
	}
	return c, nil
}

func number(m *json.RawMessage, name string, lo, hi float64) (float64, error) {
	if m == nil {
		return 0, fmt.Errorf("%s: missing", name)
	}
	var v float64
	if err := json.Unmarshal(*m, &v); err != nil {
		return 0, fmt.Errorf("%s: must be a number", name)
	}
	if v < lo || v > hi || math.IsNaN(v) {
		return 0, fmt.Errorf("%s: %v is outside %v..%v", name, v, lo, hi)
	}
	return v, nil
}

func timestamp(m json.RawMessage, name string) (int64, error) {
	var s string
	if err := json.Unmarshal(m, &s); err != nil {
		return 0, fmt.Errorf("%s: must be an RFC 3339 string", name)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not RFC 3339", name, s)
	}
	return t.UnixNano(), nil
}
