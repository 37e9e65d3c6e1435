package coupon

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, json string
		wantErr    string // "" = valid
	}{
		{"minimal", `{"id":"a1","lat":35.6,"lon":139.7}`, ""},
		{"validity", `{"id":"a-_Z9","lat":-90,"lon":180,"valid_from":"2026-01-01T00:00:00Z","valid_until":"2026-12-31T23:59:59.5+09:00"}`, ""},
		{"extra fields kept", `{"title":"x","id":"a","lat":1,"lon":2,"nested":{"k":[1,2]}}`, ""},
		{"not an object", `[1,2]`, "JSON object"},
		{"broken JSON", `{"id":"a","lat":1,`, "invalid JSON"},
		{"missing id", `{"lat":1,"lon":2}`, "id: missing"},
		{"numeric id", `{"id":5,"lat":1,"lon":2}`, "id: must be a string"},
		{"id nearby", `{"id":"nearby","lat":1,"lon":2}`, "id:"},
		{"id with dot", `{"id":"a.b","lat":1,"lon":2}`, "id:"},
		{"id too long", `{"id":"` + strings.Repeat("a", 129) + `","lat":1,"lon":2}`, "id:"},
		{"lat out of range", `{"id":"a","lat":90.01,"lon":2}`, "lat:"},
		{"lat as string", `{"id":"a","lat":"1","lon":2}`, "lat: must be a number"},
		{"missing lon", `{"id":"a","lat":1}`, "lon: missing"},
		{"lon out of range", `{"id":"a","lat":1,"lon":-180.5}`, "lon:"},
		{"bad valid_from", `{"id":"a","lat":1,"lon":2,"valid_from":"yesterday"}`, "valid_from:"},
		{"numeric valid_until", `{"id":"a","lat":1,"lon":2,"valid_until":5}`, "valid_until:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.json))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if string(c.Raw) != tt.json {
					t.Errorf("raw changed: %s", c.Raw)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	c, _ := Parse([]byte(`{"id":"v","lat":0,"lon":0,"valid_from":"2026-01-01T00:00:00Z","valid_until":"2026-02-01T00:00:00Z"}`))
	from := int64(1767225600) * 1e9
	if !c.ValidAt(from) || c.ValidAt(from-1) || c.ValidAt(from+31*86400*1e9) || !c.ValidAt(from+31*86400*1e9-1) {
		t.Errorf("validity window wrong: %+v", c)
	}
	open, _ := Parse([]byte(`{"id":"o","lat":0,"lon":0}`))
	if !open.ValidAt(math.MinInt64) || !open.ValidAt(math.MaxInt64-1) {
		t.Errorf("coupon without bounds is not always valid")
	}
}

func TestGeohashKnownValues(t *testing.T) {
	tests := []struct {
		lat, lon float64
		p        int
		want     string
	}{
		{57.64911, 10.40744, 11, "u4pruydqqvj"}, // the example from geohash.org
		{35.681236, 139.767125, 5, "xn76u"},     // Tokyo Station
		{-90, -180, 5, "00000"},
		{90, 180, 5, "zzzzz"},
		{0, 0, 1, "s"},
	}
	for _, tt := range tests {
		if got := Geohash(tt.lat, tt.lon, tt.p); got != tt.want {
			t.Errorf("Geohash(%v, %v, %d) = %q, want %q", tt.lat, tt.lon, tt.p, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	oneDegree := 2 * math.Pi * EarthRadiusM / 360
	if d := DistanceM(0, 0, 0, 1); math.Abs(d-oneDegree) > 1e-6 {
		t.Errorf("one degree at the equator = %v, want %v", d, oneDegree)
	}
	if d := DistanceM(0, 179.9, 0, -179.9); math.Abs(d-0.2*oneDegree) > 1e-3 {
		t.Errorf("across the antimeridian = %v", d)
	}
	if d := DistanceM(90, 0, 90, 123); d > 1e-6 {
		t.Errorf("pole to pole by another longitude = %v", d)
	}
	if d := DistanceM(35.681236, 139.767125, 35.690921, 139.700258); math.Abs(d-6128) > 20 {
		t.Errorf("Tokyo to Shinjuku = %v, want about 6.1 km", d)
	}
}

func TestIndexRoundTrip(t *testing.T) {
	a, _ := Parse([]byte(`{"id":"a","lat":1.5,"lon":-2.25,"valid_until":"2030-01-01T00:00:00Z","x":"é"}`))
	b, _ := Parse([]byte(`{"id":"` + strings.Repeat("b", MaxIDLen) + `","lat":-89,"lon":179.999}`))
	c, _ := Parse([]byte(`{"id":"c","lat":1.5,"lon":3}`))
	ix := NewIndex([]Coupon{a, b, c})
	if ix.Len() != 3 || string(ix.ID(0)) != b.ID || string(ix.ID(1)) != "a" || string(ix.ID(2)) != "c" {
		t.Fatalf("not sorted by latitude then id: %q %q %q", ix.ID(0), ix.ID(1), ix.ID(2))
	}
	back, err := DecodeIndex(ix.AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		want, got := ix.Coupon(i), back.Coupon(i)
		if want.ID != got.ID || want.Lat != got.Lat || want.Lon != got.Lon || want.ValidFrom != got.ValidFrom ||
			want.ValidUntil != got.ValidUntil || string(want.Raw) != string(got.Raw) || ix.cosLat[i] != back.cosLat[i] {
			t.Errorf("coupon %d: %+v became %+v", i, want, got)
		}
	}
	bin := ix.AppendBinary(nil)
	for _, cut := range []int{0, 3, 4, 10, len(bin) - 1} {
		if _, err := DecodeIndex(bin[:cut]); err == nil {
			t.Errorf("truncated at %d decoded", cut)
		}
	}
}

func TestCoverHoldsEveryPointOfTheCircle(t *testing.T) {
	// Points on the circle's rim in every direction, and the centre, must
	// fall into covered cells.
	centres := [][2]float64{{35.68, 139.76}, {0, 179.99}, {0, -179.99}, {89.95, 10}, {-89.99, -70}, {60, 0}, {0, 0}, {-33.9, 151.2}}
	for _, p := range []int{1, 3, 5, 7} {
		for _, c := range centres {
			for _, r := range []float64{1, 500, 2000, 20000} {
				hashes, err := Cover(nil, c[0], c[1], r, p)
				if errors.Is(err, ErrCoverTooLarge) && p > 5 {
					continue // slivers near a pole: refused, not wrong
				}
				if err != nil {
					t.Fatalf("Cover(%v, %v, %v, %d): %v", c[0], c[1], r, p, err)
				}
				set := map[string]bool{}
				for i := 0; i+p <= len(hashes); i += p {
					set[string(hashes[i:i+p])] = true
				}
				for bearing := 0.0; bearing < 360; bearing += 7.5 {
					lat, lon := destination(c[0], c[1], bearing, r*0.999999)
					if h := Geohash(lat, lon, p); !set[h] {
						t.Errorf("p=%d centre %v r=%v: rim point (%v, %v) in cell %s not covered", p, c, r, lat, lon, h)
					}
				}
				if h := Geohash(c[0], c[1], p); !set[h] {
					t.Errorf("centre cell %s not covered", h)
				}
			}
		}
	}
}

// destination is the point at distance d (m) from (lat, lon) on bearing b.
func destination(lat, lon, b, d float64) (float64, float64) {
	φ1, λ1, θ, δ := lat*degToRad, lon*degToRad, b*degToRad, d/EarthRadiusM
	φ2 := math.Asin(math.Sin(φ1)*math.Cos(δ) + math.Cos(φ1)*math.Sin(δ)*math.Cos(θ))
	λ2 := λ1 + math.Atan2(math.Sin(θ)*math.Sin(δ)*math.Cos(φ1), math.Cos(δ)-math.Sin(φ1)*math.Sin(φ2))
	lon2 := math.Mod(λ2/degToRad+540, 360) - 180
	return φ2 / degToRad, lon2
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"id":"a1","lat":35.6,"lon":139.7,"title":"x"}`))
	f.Add([]byte(`{"id":"a","lat":1,"lon":2,"valid_from":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"id":"nearby","lat":1e400,"lon":-0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		if !ValidID(c.ID) || c.Lat < -90 || c.Lat > 90 || c.Lon < -180 || c.Lon > 180 {
			t.Fatalf("accepted an invalid coupon: %+v", c)
		}
		// What is accepted survives the cached form unchanged.
		ix, err := DecodeIndex(NewIndex([]Coupon{c}).AppendBinary(nil))
		if err != nil {
			t.Fatal(err)
		}
		if e := ix.Coupon(0); e.ID != c.ID || e.Lat != c.Lat || e.Lon != c.Lon || e.ValidUntil != c.ValidUntil || string(e.Raw) != string(c.Raw) {
			t.Fatalf("index round trip changed %+v into %+v", c, e)
		}
	})
}
