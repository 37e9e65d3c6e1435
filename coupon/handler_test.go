package coupon

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

var testLimits = Limits{DefaultRadiusM: 2000, MaxRadiusM: 20000, DefaultLimit: 20, MaxLimit: 100}

// serve runs h on one request and returns status, X-Cache and body.
func serve(h fasthttp.RequestHandler, method, uri string) (int, string, string) {
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost("edge.test")
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	h(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Header.Peek("X-Cache")), string(ctx.Response.Body())
}

func mustParse(t testing.TB, s string) Coupon {
	t.Helper()
	c, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func storeOf(t testing.TB, precision int, jsons ...string) *FileStore {
	m := map[string]Coupon{}
	for _, s := range jsons {
		c := mustParse(t, s)
		m[c.ID] = c
	}
	return NewMemoryStore(m, precision)
}

var fixedNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testHandler(store Store, fallback fasthttp.RequestHandler) *Handler {
	return NewHandler(store, Options{PathPrefix: "/coupons", Precision: 5, Limits: testLimits, Fallback: fallback,
		Now: func() time.Time { return fixedNow }})
}

func TestByID(t *testing.T) {
	raw := `{"id":"c1","lat":35.68,"lon":139.76,"title":"Ramen ½ price", "spaces" : true}`
	h := testHandler(storeOf(t, 5, raw), nil)
	status, xc, body := serve(h.Serve, "GET", "/coupons/c1")
	if status != 200 || body != raw || xc != "HIT" {
		t.Errorf("GET c1: %d %q %q", status, xc, body)
	}
	status, xc, body = serve(h.Serve, "GET", "/coupons/nope")
	if status != 404 || body != `{"error":"coupon not found"}` || xc == "" {
		t.Errorf("GET nope: %d %q %q", status, xc, body)
	}
	if status, _, _ := serve(h.Serve, "HEAD", "/coupons/c1"); status != 200 {
		t.Errorf("HEAD: %d", status)
	}
}

func TestPathsAndMethodsWithoutFallback(t *testing.T) {
	h := testHandler(storeOf(t, 5), nil)
	for _, tc := range []struct {
		method, uri string
		status      int
	}{
		{"POST", "/coupons/c1", 405},
		{"DELETE", "/coupons/nearby", 405},
		{"GET", "/coupons", 404},
		{"GET", "/coupons/", 404},
		{"GET", "/coupons/a/b", 404},
		{"GET", "/coupons/bad.id", 404},
	} {
		if status, _, _ := serve(h.Serve, tc.method, tc.uri); status != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.uri, status, tc.status)
		}
	}
}

func TestEverythingElseGoesToFallback(t *testing.T) {
	var got []string
	fb := func(ctx *fasthttp.RequestCtx) {
		got = append(got, string(ctx.Method())+" "+string(ctx.RequestURI()))
		ctx.SetStatusCode(299)
	}
	h := testHandler(storeOf(t, 5, `{"id":"c1","lat":1,"lon":1}`), fb)
	for _, u := range []string{"POST /coupons/c1", "PUT /coupons/nearby", "GET /coupons", "GET /coupons/c1/redeem", "POST /coupons"} {
		m, uri, _ := strings.Cut(u, " ")
		if status, _, _ := serve(h.Serve, m, uri); status != 299 {
			t.Errorf("%s: status %d, want the fallback's", u, status)
		}
	}
	if status, _, _ := serve(h.Serve, "GET", "/coupons/c1"); status != 200 {
		t.Errorf("a coupon read went to the fallback")
	}
	if len(got) != 5 {
		t.Errorf("fallback saw %v", got)
	}
}

func TestNearbyBadParameters(t *testing.T) {
	h := testHandler(storeOf(t, 5), nil)
	for _, tc := range []struct{ query, param string }{
		{"", "lat"},
		{"lon=1", "lat"},
		{"lat=abc&lon=1", "lat"},
		{"lat=91&lon=1", "lat"},
		{"lat=NaN&lon=1", "lat"},
		{"lat=0x10&lon=1", "lat"},
		{"lat=1", "lon"},
		{"lat=1&lon=", "lon"},
		{"lat=1&lon=-180.01", "lon"},
		{"lat=1&lon=Inf", "lon"},
		{"lat=1&lon=1&radius_m=0", "radius_m"},
		{"lat=1&lon=1&radius_m=-5", "radius_m"},
		{"lat=1&lon=1&radius_m=20001", "radius_m"},
		{"lat=1&lon=1&radius_m=x", "radius_m"},
		{"lat=1&lon=1&limit=0", "limit"},
		{"lat=1&lon=1&limit=101", "limit"},
		{"lat=1&lon=1&limit=2.5", "limit"},
	} {
		status, _, body := serve(h.Serve, "GET", "/coupons/nearby?"+tc.query)
		var e struct{ Error string }
		if status != 400 || json.Unmarshal([]byte(body), &e) != nil || !strings.HasPrefix(e.Error, tc.param+":") {
			t.Errorf("?%s: %d %s; want 400 naming %s", tc.query, status, body, tc.param)
		}
	}
	if status, _, body := serve(h.Serve, "GET", "/coupons/nearby?lat=%33%35&lon=139.7&radius_m=20000&limit=100"); status != 200 {
		t.Errorf("valid (percent-encoded) query: %d %s", status, body)
	}
}

type nearbyAnswer struct {
	Count   int               `json:"count"`
	Coupons []json.RawMessage `json:"coupons"`
}

func TestNearbyAnswer(t *testing.T) {
	store := storeOf(t, 5,
		`{"id":"far","lat":35.70,"lon":139.76}`,
		`{"id":"b","lat":35.681,"lon":139.767,"title":"same place"}`,
		`{"id":"a","lat":35.681,"lon":139.767}`,
		`{"id":"expired","lat":35.681,"lon":139.767,"valid_until":"2026-11-26T12:00:00Z"}`,
		`{"id":"future","lat":35.681,"lon":139.767,"valid_from":"2026-11-26T12:00:01Z"}`,
		`{"id":"started","lat":35.6811,"lon":139.767,"valid_from":"2026-11-26T12:00:00Z","valid_until":"2026-11-26T12:00:01Z"}`,
		`{ "id" : "spaced" , "lat":35.682,"lon":139.767 }`,
	)
	h := testHandler(store, nil)
	status, xc, body := serve(h.Serve, "GET", "/coupons/nearby?lat=35.681&lon=139.767&radius_m=1000")
	if status != 200 || xc != "HIT" {
		t.Fatalf("%d %q %s", status, xc, body)
	}
	want := `{"count":4,"coupons":[{"id":"a","lat":35.681,"lon":139.767,"distance_m":0.0},` +
		`{"id":"b","lat":35.681,"lon":139.767,"title":"same place","distance_m":0.0},` +
		`{"id":"started","lat":35.6811,"lon":139.767,"valid_from":"2026-11-26T12:00:00Z","valid_until":"2026-11-26T12:00:01Z","distance_m":11.1},` +
		`{ "id" : "spaced" , "lat":35.682,"lon":139.767 ,"distance_m":111.2}]}`
	if body != want {
		t.Errorf("got  %s\nwant %s", body, want)
	}
	_, _, body = serve(h.Serve, "GET", "/coupons/nearby?lat=35.681&lon=139.767&radius_m=1000&limit=1")
	if !strings.HasPrefix(body, `{"count":1,"coupons":[{"id":"a"`) {
		t.Errorf("limit=1: %s", body)
	}
	_, _, body = serve(h.Serve, "GET", "/coupons/nearby?lat=0&lon=0")
	if body != `{"count":0,"coupons":[]}` {
		t.Errorf("nothing near: %s", body)
	}
}

// TestNearbyMatchesBruteForce compares answers with a scan of the whole
// data set at random points, cell edges, the antimeridian and the poles.
func TestNearbyMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	const precision = 5
	var coupons []Coupon
	add := func(lat, lon float64) {
		id := fmt.Sprintf("c%05d", len(coupons))
		raw := fmt.Sprintf(`{"id":%q,"lat":%v,"lon":%v}`, id, lat, lon)
		coupons = append(coupons, mustParse(t, raw))
	}
	hotspots := [][2]float64{{35.68, 139.76}, {0, 180}, {0, -180}, {90, 0}, {-90, 0}, {89.9, 45}, {-89.95, -100}, {51.5, 0}, {0, 0}}
	for _, hs := range hotspots {
		for i := 0; i < 300; i++ {
			lat, lon := destination(hs[0], hs[1], rng.Float64()*360, rng.Float64()*30000)
			add(lat, lon)
		}
	}
	// Points exactly on cell edges at the store's precision.
	lonBits, latBits := cellBits(precision)
	cw, ch := 360/math.Exp2(float64(lonBits)), 180/math.Exp2(float64(latBits))
	for i := 0; i < 200; i++ {
		lon := -180 + float64(rng.Intn(1<<lonBits))*cw
		lat := -90 + float64(rng.Intn(1<<latBits))*ch
		add(lat, math.Max(lon, -180))
		add(35.68+float64(i%10)*ch/2, 139.76+float64(i/10)*cw/2)
	}
	// A tight cluster of pairs mirrored in longitude: exact ties a few
	// metres apart, where rounding decides the order if anything does.
	for k := 1; k <= 12; k++ {
		d := float64(k) * 1.5e-5
		add(12.5, 45.5+d)
		add(12.5, 45.5-d)
		add(12.5+d, 45.5)
	}
	m := map[string]Coupon{}
	for _, c := range coupons {
		m[c.ID] = c
	}
	h := NewHandler(NewMemoryStore(m, precision), Options{PathPrefix: "/coupons", Precision: precision,
		Limits: Limits{DefaultRadiusM: 2000, MaxRadiusM: 20000, DefaultLimit: 20, MaxLimit: 10000}})

	queries := 0
	check := func(lat, lon, r float64) {
		queries++
		var want []string
		type hit struct {
			d  float64
			id string
		}
		var hits []hit
		for _, c := range coupons {
			if d := DistanceM(lat, lon, c.Lat, c.Lon); d <= r {
				hits = append(hits, hit{d, c.ID})
			}
		}
		sort.Slice(hits, func(i, j int) bool {
			if hits[i].d != hits[j].d {
				return hits[i].d < hits[j].d
			}
			return hits[i].id < hits[j].id
		})
		for _, x := range hits {
			want = append(want, x.id)
		}
		// The whole list, and the first few: the search keeps only the
		// limit's nearest as it goes.
		limits := []int{10000}
		if queries%2 == 0 {
			limits = append(limits, 1, 7, 20)
		}
		for _, limit := range limits {
			uri := fmt.Sprintf("/coupons/nearby?lat=%v&lon=%v&radius_m=%v&limit=%d", lat, lon, r, limit)
			status, _, body := serve(h.Serve, "GET", uri)
			var ans nearbyAnswer
			if status != 200 || json.Unmarshal([]byte(body), &ans) != nil {
				t.Fatalf("%s: %d %.200s", uri, status, body)
			}
			var got []string
			for _, raw := range ans.Coupons {
				var c struct {
					ID string
					D  float64 `json:"distance_m"`
				}
				json.Unmarshal(raw, &c)
				got = append(got, c.ID)
				// The distance as the formula rounds it, to the tenth.
				if x, ok := m[c.ID]; ok {
					if want := appendTenths(nil, DistanceM(lat, lon, x.Lat, x.Lon)); string(appendTenths(nil, c.D)) != string(want) {
						t.Errorf("%s: %s at %v m, want %s", uri, c.ID, c.D, want)
					}
				}
			}
			w := want[:min(limit, len(want))]
			if strings.Join(got, ",") != strings.Join(w, ",") || ans.Count != len(w) {
				t.Errorf("%s:\n got %d %v\nwant %d %v", uri, len(got), got, len(w), w)
			}
		}
	}
	for _, hs := range hotspots {
		for i := 0; i < 100; i++ {
			lat, lon := destination(hs[0], hs[1], rng.Float64()*360, rng.Float64()*25000)
			check(lat, lon, []float64{500, 2000, 20000}[i%3])
		}
	}
	for i := 0; i < 100; i++ {
		check(rng.Float64()*180-90, rng.Float64()*360-180, 20000)
	}
	for _, p := range [][2]float64{{90, 0}, {-90, 0}, {90, 180}, {0, 180}, {0, -180}, {89.99, -180}} {
		check(p[0], p[1], 20000)
	}
	for r := 1.0; r <= 30; r += 0.5 {
		check(12.5, 45.5, r)
	}
	// Centres exactly on cell corners.
	for i := 0; i < 50; i++ {
		check(35.68+float64(i%5)*ch/2, 139.76+float64(i/5)*cw/2, float64(1+i*300))
	}
	if queries < 1000 {
		t.Fatalf("only %d queries", queries)
	}
}

func FuzzParseNearby(f *testing.F) {
	for _, s := range []string{"lat=35.6&lon=139.7", "lat=1&lon=1&radius_m=20000&limit=100", "lat=%33&lon=1e1", "lat=&lon=", "lat=1&lat=2&lon=3", "radius_m=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		var args fasthttp.Args
		args.Parse(query)
		q, err := ParseNearby(&args, testLimits)
		if err != nil {
			if err.Param == "" || err.Msg == "" {
				t.Fatalf("error without parameter: %+v", err)
			}
			return
		}
		if q.Lat < -90 || q.Lat > 90 || q.Lon < -180 || q.Lon > 180 || !(q.RadiusM > 0) || q.RadiusM > testLimits.MaxRadiusM || q.Limit < 1 || q.Limit > testLimits.MaxLimit {
			t.Fatalf("accepted out-of-range query %q: %+v", query, q)
		}
	})
}

// appendTenths writes what the float formatting it replaced wrote.
func TestAppendTenthsIsAppendFloat(t *testing.T) {
	check := func(d float64) {
		t.Helper()
		want := strconv.AppendFloat(nil, math.Round(d*10)/10, 'f', 1, 64)
		if got := appendTenths(nil, d); string(got) != string(want) {
			t.Fatalf("appendTenths(%v) = %s, want %s", d, got, want)
		}
	}
	for _, d := range []float64{0, 0.04, 0.05, 0.05000000000000001, 0.15, 0.25, 0.35, 1.45, 9.95, 99.95, 699.95, 700, 1234.56, 20037508.3, 40075016.7} {
		check(d)
	}
	r := rand.New(rand.NewSource(1))
	for range 200000 {
		check(r.Float64() * 50000)
		check(float64(r.Intn(500000))/10 + 0.05) // ties at the rounding step
	}
}

func TestAsinSmall(t *testing.T) {
	for x := 0.0; x <= asinSmallMax; x += asinSmallMax / 9973 {
		if got, want := asinSmall(x), math.Asin(x); math.Abs(got-want) > 1e-15*want {
			t.Fatalf("asinSmall(%v) = %v, want %v", x, got, want)
		}
	}
}

// TestAnswerDistanceRoundsAsTheFormula: the distance an answer writes,
// from the expanded haversine, rounds to the tenth exactly as DistanceM's,
// for random pairs and for pairs whose distance sits on a half tenth.
func TestAnswerDistanceRoundsAsTheFormula(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	m := map[string]Coupon{}
	centre := [2]float64{35.68, 139.76}
	for i := 0; i < 3000; i++ {
		lat, lon := destination(centre[0], centre[1], rng.Float64()*360, rng.Float64()*30000)
		if i%3 == 0 { // on a half tenth, as near as a float lands
			d := math.Floor(rng.Float64()*300000)/10 + 0.05
			lat, lon = destination(centre[0], centre[1], rng.Float64()*360, d)
		}
		id := fmt.Sprintf("c%05d", i)
		m[id] = mustParse(t, fmt.Sprintf(`{"id":%q,"lat":%v,"lon":%v}`, id, lat, lon))
	}
	store := NewMemoryStore(m, 5)
	s := &search{}
	s.run(store, NearbyQuery{Lat: centre[0], Lon: centre[1], RadiusM: 30000, Limit: len(m)}, 5, 0)
	if len(s.cands) < 2900 {
		t.Fatalf("only %d candidates", len(s.cands))
	}
	onHalf := 0
	for i := range s.cands {
		c := &s.cands[i]
		exact := DistanceM(centre[0], centre[1], c.ix.lat[c.i], c.ix.lon[c.i])
		if t := exact * 10; math.Abs(t-math.Floor(t)-0.5) < 1e-6 {
			onHalf++
		}
		if got, want := appendTenths(nil, s.answerDistance(c)), appendTenths(nil, exact); string(got) != string(want) {
			t.Errorf("%s: %s, want %s (%v m)", c.ix.ID(c.i), got, want, exact)
		}
	}
	if onHalf < 500 {
		t.Errorf("only %d distances on a half tenth", onHalf)
	}
}
