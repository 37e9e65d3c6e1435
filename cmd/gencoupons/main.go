// Command gencoupons writes the bundled sample data set, testdata/coupons.jsonl:
// a few thousand coupons around Tokyo with the fields a news app shows.
// The output is deterministic; regenerate with
//
//	go run ./cmd/gencoupons > testdata/coupons.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"time"
)

type sampleCoupon struct {
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

var (
	categories = []string{"ramen", "sushi", "cafe", "izakaya", "bakery", "convenience", "drugstore", "bookstore", "karaoke", "fitness"}
	merchants  = []string{"Ichiban", "Sakura", "Fuji", "Midori", "Hoshi", "Kaze", "Tsuki", "Yama", "Umi", "Hana"}
	areas      = []struct {
		name     string
		lat, lon float64
	}{
		{"Marunouchi", 35.6812, 139.7671}, {"Shinjuku", 35.6909, 139.7003}, {"Shibuya", 35.6580, 139.7016},
		{"Ikebukuro", 35.7295, 139.7109}, {"Ueno", 35.7138, 139.7773}, {"Ginza", 35.6717, 139.7650},
		{"Roppongi", 35.6628, 139.7314}, {"Asakusa", 35.7118, 139.7966},
	}
)

func main() {
	rng := rand.New(rand.NewSource(20261126))
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("JST", 9*3600))
	for i := 0; i < 3000; i++ {
		a := areas[i%len(areas)]
		// Dense near each station, thinning out over about 3 km.
		d := math.Abs(rng.NormFloat64()) * 1200
		bearing := rng.Float64() * 2 * math.Pi
		lat := a.lat + d*math.Cos(bearing)/111320
		lon := a.lon + d*math.Sin(bearing)/(111320*math.Cos(a.lat*math.Pi/180))
		cat := categories[rng.Intn(len(categories))]
		m := merchants[rng.Intn(len(merchants))] + " " + cat
		from := start.AddDate(0, 0, rng.Intn(300))
		until := from.AddDate(5, 0, 0) // the demo keeps working for years
		if i%50 == 0 {
			until = from.AddDate(0, 0, 7) // a few have expired
		}
		discount := 5 + rng.Intn(10)*5
		c := sampleCoupon{
			ID:         fmt.Sprintf("tky-%05d", i),
			Lat:        math.Round(lat*1e6) / 1e6,
			Lon:        math.Round(lon*1e6) / 1e6,
			Title:      fmt.Sprintf("%d%% off at %s %s", discount, m, a.name),
			Merchant:   m,
			Category:   cat,
			Discount:   discount,
			ImageURL:   fmt.Sprintf("https://img.example.com/coupons/tky-%05d.jpg", i),
			ValidFrom:  from.Format(time.RFC3339),
			ValidUntil: until.Format(time.RFC3339),
		}
		b, _ := json.Marshal(c)
		w.Write(b)
		w.WriteByte('\n')
	}
}
