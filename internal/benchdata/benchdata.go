// Package benchdata generates the dense coupon data set and the mixed
// nearby queries that make bench and the Go micro-benchmarks share: many
// different points around the sample's areas (every user stands somewhere
// else), over data dense enough that a 2 km search sees about a thousand
// coupons. Everything is deterministic (fixed seeds).
package benchdata

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"time"
)

// Area is a centre the sample data set (cmd/gencoupons) and the dense one
// cluster around.
type Area struct {
	Name     string
	Lat, Lon float64
}

// Areas are where coupons gather, in the sample (cmd/gencoupons), the
// dense set and the query points alike.
var Areas = []Area{
	{"Marunouchi", 35.6812, 139.7671}, {"Shinjuku", 35.6909, 139.7003}, {"Shibuya", 35.6580, 139.7016},
	{"Ikebukuro", 35.7295, 139.7109}, {"Ueno", 35.7138, 139.7773}, {"Ginza", 35.6717, 139.7650},
	{"Roppongi", 35.6628, 139.7314}, {"Asakusa", 35.7118, 139.7966},
}

// Mixed query parameters: radius and limit of every mixed search.
const (
	RadiusM = 2000
	Limit   = 20
)

// DensePerArea is how many coupons Dense puts around each area: with the
// areas' overlap, a 2 km search at a Points point sees about 1,000.
const DensePerArea = 860

// Categories and Merchants name the coupons of both data sets.
var (
	Categories = []string{"ramen", "sushi", "cafe", "izakaya", "bakery", "convenience", "drugstore", "bookstore", "karaoke", "fitness"}
	Merchants  = []string{"Ichiban", "Sakura", "Fuji", "Midori", "Hoshi", "Kaze", "Tsuki", "Yama", "Umi", "Hana"}
)

// Coupon is the shape of a generated coupon: the fields a news app shows.
type Coupon struct {
	ID         string  `json:"id"`
	Lat        float64 `json:"lat"`
	Lon        float64 `json:"lon"`
	Title      string  `json:"title"`
	Merchant   string  `json:"merchant"`
	Category   string  `json:"category"`
	Discount   int     `json:"discount_percent"`
	ImageURL   string  `json:"image_url"`
	ValidFrom  string  `json:"valid_from"`
	ValidUntil string  `json:"valid_until"`
}

// offset moves (lat, lon) d metres along bearing (radians), flat-earth:
// good enough for a few kilometres.
func offset(lat, lon, d, bearing float64) (float64, float64) {
	return lat + d*math.Cos(bearing)/111320, lon + d*math.Sin(bearing)/(111320*math.Cos(lat*math.Pi/180))
}

// Dense returns the dense data set as JSONL lines, shaped like the
// sample's coupons (about 330 bytes each) with ids "dns-NNNNNN".
func Dense() [][]byte {
	return Generate(20261202, DensePerArea*len(Areas), "dns-%06d")
}

// Generate returns n coupons around the areas in turn as JSON lines,
// drawn from seed: dense near each station, thinning out over about
// 3 km, valid for five years from a day of 2026 (every 50th for a week:
// a few have expired). idFormat formats the coupon's number as its id,
// which names its image too. The sample data set (cmd/gencoupons) and
// Dense are two seeds of it.
func Generate(seed int64, n int, idFormat string) [][]byte {
	rng := rand.New(rand.NewSource(seed))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("JST", 9*3600))
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		a := Areas[i%len(Areas)]
		lat, lon := offset(a.Lat, a.Lon, math.Abs(rng.NormFloat64())*1200, rng.Float64()*2*math.Pi)
		cat := Categories[rng.Intn(len(Categories))]
		m := Merchants[rng.Intn(len(Merchants))] + " " + cat
		from := start.AddDate(0, 0, rng.Intn(300))
		until := from.AddDate(5, 0, 0)
		if i%50 == 0 {
			until = from.AddDate(0, 0, 7)
		}
		discount := 5 + rng.Intn(10)*5
		id := fmt.Sprintf(idFormat, i)
		b, _ := json.Marshal(Coupon{
			ID:         id,
			Lat:        math.Round(lat*1e6) / 1e6,
			Lon:        math.Round(lon*1e6) / 1e6,
			Title:      fmt.Sprintf("%d%% off at %s %s", discount, m, a.Name),
			Merchant:   m,
			Category:   cat,
			Discount:   discount,
			ImageURL:   "https://img.example.com/coupons/" + id + ".jpg",
			ValidFrom:  from.Format(time.RFC3339),
			ValidUntil: until.Format(time.RFC3339),
		})
		out = append(out, b)
	}
	return out
}

// Points returns n query points around the areas: a random area, then a
// random bearing and a distance of about a kilometre (rounded to 1e-5°,
// as an app would send them).
func Points(n int) [][2]float64 {
	rng := rand.New(rand.NewSource(7))
	out := make([][2]float64, n)
	for i := range out {
		a := Areas[rng.Intn(len(Areas))]
		lat, lon := offset(a.Lat, a.Lon, math.Abs(rng.NormFloat64())*1000, rng.Float64()*2*math.Pi)
		out[i] = [2]float64{math.Round(lat*1e5) / 1e5, math.Round(lon*1e5) / 1e5}
	}
	return out
}

// Paths returns the request paths of the mixed nearby queries under
// prefix (e.g. "/coupons").
func Paths(prefix string, n int) []string {
	out := make([]string, 0, n)
	for _, p := range Points(n) {
		out = append(out, fmt.Sprintf("%s/nearby?lat=%.5f&lon=%.5f&radius_m=%d&limit=%d", prefix, p[0], p[1], RadiusM, Limit))
	}
	return out
}
