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

	"github.com/edgeproxy/edgeproxy/internal/benchdata"
)

func main() {
	rng := rand.New(rand.NewSource(20261126))
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("JST", 9*3600))
	for i := 0; i < 3000; i++ {
		a := benchdata.Areas[i%len(benchdata.Areas)]
		// Dense near each station, thinning out over about 3 km.
		d := math.Abs(rng.NormFloat64()) * 1200
		bearing := rng.Float64() * 2 * math.Pi
		lat := a.Lat + d*math.Cos(bearing)/111320
		lon := a.Lon + d*math.Sin(bearing)/(111320*math.Cos(a.Lat*math.Pi/180))
		cat := benchdata.Categories[rng.Intn(len(benchdata.Categories))]
		m := benchdata.Merchants[rng.Intn(len(benchdata.Merchants))] + " " + cat
		from := start.AddDate(0, 0, rng.Intn(300))
		until := from.AddDate(5, 0, 0) // the demo keeps working for years
		if i%50 == 0 {
			until = from.AddDate(0, 0, 7) // a few have expired
		}
		discount := 5 + rng.Intn(10)*5
		c := benchdata.Coupon{
			ID:         fmt.Sprintf("tky-%05d", i),
			Lat:        math.Round(lat*1e6) / 1e6,
			Lon:        math.Round(lon*1e6) / 1e6,
			Title:      fmt.Sprintf("%d%% off at %s %s", discount, m, a.Name),
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
