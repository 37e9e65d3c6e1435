package cache

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// waitWithin polls cond until it holds and fails past limit; it returns
// how long that took.
func waitWithin(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func probeOptions(addr string, interval, timeout time.Duration) Options {
	o := testOptions(addr)
	o.Instance = "test-1"
	o.ProbeInterval, o.ProbeTimeout = interval, timeout
	o.DegradedTTL = 300 * time.Millisecond
	return o
}

func readID(s *Store, id string) (string, coupon.Status, error) {
	raw, st, err := s.Coupon([]byte(id))
	return string(raw), st, err
}

// The probe times its own invalidation through the tracking path; its
// key and pushes stay out of the coupon counts.
func TestProbeMeasuresInvalidationLag(t *testing.T) {
	r := redistest.Start(t)
	s := newStore(t, probeOptions(r.Addr, 50*time.Millisecond, 500*time.Millisecond))
	waitWithin(t, 5*time.Second, "three probes", func() bool {
		p := s.Probes()
		return len(p) == 1 && p[0].Count >= 3
	})
	if !s.StreamUp() || s.StreamLost() {
		t.Fatalf("stream up %v lost %v", s.StreamUp(), s.StreamLost())
	}
	p := s.Probes()[0]
	if p.Node != r.Addr || !p.Up || p.LastLag <= 0 || p.LastLag > 500*time.Millisecond || p.Counts[len(LagBuckets)] != p.Count {
		t.Fatalf("probe state %+v", p)
	}
	t.Logf("probe lag %v, mean %.3f ms over %d probes", p.LastLag, 1000*p.Sum/float64(p.Count), p.Count)
	if v, _ := r.Do("EXISTS", "coupon:probe:test-1"); v != ":1" {
		t.Errorf("probe key coupon:probe:test-1 missing: %q", v)
	}
	if ttl, _ := r.Do("PTTL", "coupon:probe:test-1"); ttl == ":-1" {
		t.Errorf("probe key never expires")
	}
	if n := s.Stats.Invalidations.Load(); n != 0 {
		t.Errorf("probe pushes counted as coupon invalidations: %d", n)
	}
}

// lossSetup is a store reading Redis through a relay that can drop
// pushes, with coupons a (read during the loss) and b (not read then).
func lossSetup(t *testing.T, mode StreamLoss) (*redistest.Server, *redistest.Relay, *Store, *Writer) {
	r := redistest.Start(t)
	relay := redistest.StartRelay(t, r.Addr)
	w := newWriter(t, testOptions(r.Addr))
	put(t, w, `{"id":"a","lat":1,"lon":1,"v":1}`)
	put(t, w, `{"id":"b","lat":1,"lon":1,"v":1}`)
	o := probeOptions(relay.Addr, probeInterval, probeTimeout)
	o.OnStreamLoss = mode
	s := newStore(t, o)
	// Both cached (a probe that ran late on a busy host may briefly
	// degrade the store: wait for hits rather than assume them).
	waitWithin(t, 5*time.Second, "a and b cached, stream up", func() bool {
		_, sa, _ := readID(s, "a")
		_, sb, _ := readID(s, "b")
		return s.StreamUp() && sa == coupon.Hit && sb == coupon.Hit
	})
	return r, relay, s, w
}

// The loss tests' probe: fast, with a timeout that a busy host still meets.
const probeInterval, probeTimeout = 100 * time.Millisecond, 250 * time.Millisecond

// loseStream starts dropping pushes and checks the loss is detected within
// probe_interval + probe_timeout (plus scheduling slack on a busy host).
func loseStream(t *testing.T, relay *redistest.Relay, s *Store) {
	t.Helper()
	relay.DropInvalidations(true)
	took := waitWithin(t, 2*time.Second, "loss detected", s.StreamLost)
	bound := probeInterval + probeTimeout
	t.Logf("stream loss detected after %v (bound %v)", took, bound)
	if took > bound+50*time.Millisecond { // slack: the test's own polling on a busy host
		t.Errorf("loss detected after %v, bound probe_interval+probe_timeout = %v", took, bound)
	}
	if s.StreamUp() {
		t.Error("stream_up still 1 while lost")
	}
}

// recover stops dropping, waits for the probes to pass, and checks that b,
// cached before the loss and changed during it, is re-read.
func recoverStream(t *testing.T, relay *redistest.Relay, s *Store, wantB string) {
	t.Helper()
	relay.DropInvalidations(false)
	waitWithin(t, 3*time.Second, "recovery", func() bool { return !s.StreamLost() && s.StreamUp() })
	got, st, err := readID(s, "b")
	if err != nil || got != wantB || st != coupon.Miss {
		t.Fatalf("b after recovery = %q %v %v, want %q re-read (MISS)", got, st, err, wantB)
	}
	if got, _, _ := readID(s, "b"); got != wantB {
		t.Fatalf("b then = %q, want %q", got, wantB)
	}
}

func TestStreamLossBypassAnswersFromRedis(t *testing.T) {
	_, relay, s, w := lossSetup(t, Bypass)
	loseStream(t, relay, s)
	put(t, w, `{"id":"a","lat":1,"lon":1,"v":2}`)
	put(t, w, `{"id":"b","lat":1,"lon":1,"v":2}`)
	for i := 0; i < 3; i++ {
		got, st, err := readID(s, "a")
		if err != nil || got != `{"id":"a","lat":1,"lon":1,"v":2}` || st != coupon.Miss {
			t.Fatalf("bypass read %d = %q %v %v, want v2 MISS", i, got, st, err)
		}
	}
	ids, st, err := cellsOf(t, s, 1, 1)
	if err != nil || st != coupon.Miss || len(ids) != 2 {
		t.Fatalf("bypass cell read = %v %v %v", ids, st, err)
	}
	if relay.Dropped() == 0 {
		t.Fatal("the relay dropped nothing")
	}
	recoverStream(t, relay, s, `{"id":"b","lat":1,"lon":1,"v":2}`)
}

func TestStreamLossServeBoundsAgeByDegradedTTL(t *testing.T) {
	_, relay, s, w := lossSetup(t, Serve)
	loseStream(t, relay, s)
	// Memory still serves (the entry read last is younger than 300ms) ...
	readID(s, "a")
	if _, st, _ := readID(s, "a"); st != coupon.Hit {
		t.Fatalf("serve mode answered %v, want HIT from memory", st)
	}
	// ... and a write shows within degraded_ttl though no push arrives.
	put(t, w, `{"id":"a","lat":1,"lon":1,"v":3}`)
	put(t, w, `{"id":"b","lat":1,"lon":1,"v":3}`)
	took := waitValue(t, func() string { v, _, _ := readID(s, "a"); return v }, `{"id":"a","lat":1,"lon":1,"v":3}`, 2*time.Second)
	t.Logf("write visible after %v under serve (degraded_ttl 300ms)", took)
	if took > 300*time.Millisecond+50*time.Millisecond {
		t.Errorf("write visible after %v, degraded_ttl is 300ms", took)
	}
	recoverStream(t, relay, s, `{"id":"b","lat":1,"lon":1,"v":3}`)
}

// verifyStore reads through a relay with every hit verified.
func verifyStore(t *testing.T) (*redistest.Server, *redistest.Relay, *Store, *Writer, *observer.ObservedLogs) {
	r := redistest.Start(t)
	relay := redistest.StartRelay(t, r.Addr)
	w := newWriter(t, testOptions(r.Addr))
	core, logs := observer.New(zapcore.WarnLevel)
	o := testOptions(relay.Addr)
	o.VerifySample = 1
	o.VerifyRate = 1000
	o.Logger = zap.New(core)
	return r, relay, newStore(t, o), w, logs
}

// A hit whose push was lost differs from Redis: verification counts it,
// logs key and age, and the entry is re-read.
func TestVerifyFindsMismatchWhenPushIsLost(t *testing.T) {
	_, relay, s, w, logs := verifyStore(t)
	put(t, w, `{"id":"a","lat":1,"lon":1,"v":1}`)
	readID(s, "a")
	relay.DropInvalidations(true)
	put(t, w, `{"id":"a","lat":1,"lon":1,"v":2}`)
	if got, st, _ := readID(s, "a"); got != `{"id":"a","lat":1,"lon":1,"v":1}` || st != coupon.Hit {
		t.Fatalf("read = %q %v, want the stale hit the lost push leaves", got, st)
	}
	waitWithin(t, 3*time.Second, "mismatch counted", func() bool { return s.Stats.VerifyMismatch.Load() >= 1 })
	e := logs.FilterMessage("cached coupon entry differs from Redis").All()
	if len(e) == 0 {
		t.Fatal("mismatch not logged")
	}
	f := e[0].ContextMap()
	if f["key"] != "coupon:id:a" || f["age"] == nil {
		t.Fatalf("mismatch log fields %v", f)
	}
	if got, st, _ := readID(s, "a"); got != `{"id":"a","lat":1,"lon":1,"v":2}` || st != coupon.Miss {
		t.Fatalf("after the mismatch: %q %v, want v2 re-read", got, st)
	}
}

// With pushes arriving, verified hits match, cells included, and a storm
// of hits makes at most VerifyRate re-reads a second.
func TestVerifyMatchesAndIsRateBounded(t *testing.T) {
	r := redistest.Start(t)
	w := newWriter(t, testOptions(r.Addr))
	put(t, w, `{"id":"a","lat":1,"lon":1}`)
	put(t, w, `{"id":"b","lat":1,"lon":1.001}`)
	o := testOptions(r.Addr)
	o.VerifySample = 1
	o.VerifyRate = 20
	s := newStore(t, o)
	readID(s, "a")
	cellsOf(t, s, 1, 1)
	before := r.CommandCalls()
	start := time.Now()
	for i := 0; i < 20000; i++ {
		readID(s, "a")
		cellsOf(t, s, 1, 1)
	}
	waitWithin(t, 3*time.Second, "matches", func() bool { return s.Stats.VerifyMatch.Load() >= 4 })
	elapsed := time.Since(start)
	after := r.CommandCalls()
	reads := after["get"] + after["hgetall"] - before["get"] - before["hgetall"]
	bound := int(elapsed.Seconds()*20) + 2
	t.Logf("%d re-reads in %v for 40000 sampled hits (bound %d), %d dropped", reads, elapsed, bound, s.Stats.VerifyDropped.Load())
	if reads > bound {
		t.Errorf("%d re-reads in %v: more than 20/s", reads, elapsed)
	}
	if m := s.Stats.VerifyMismatch.Load(); m != 0 {
		t.Errorf("%d mismatches with every push delivered", m)
	}
}

func TestSanitizeInstance(t *testing.T) {
	for in, want := range map[string]string{"web-1.example": "web-1.example", "a b{c}": "a_b_c_", "": "edgeproxy"} {
		if got := sanitizeInstance(in); got != want {
			t.Errorf("sanitizeInstance(%q) = %q, want %q", in, got, want)
		}
	}
	if !strings.HasPrefix(newProber("coupon", "x").base, "coupon:probe:") {
		t.Error("probe key prefix")
	}
	// Known Redis Cluster slots (CLUSTER KEYSLOT).
	for k, slot := range map[string]uint16{"foo": 12182, "bar": 5061, "123456789": 0x31C3 % 16384} {
		if got := crc16(k) % 16384; got != slot {
			t.Errorf("slot(%q) = %d, want %d", k, got, slot)
		}
	}
}

// A differing re-read is not a mismatch when an invalidation of the key
// arrives during it (or just after): the cache was already being told.
func TestVerifyIgnoresDifferencesWithAnInvalidation(t *testing.T) {
	r := redistest.Start(t)
	w := newWriter(t, testOptions(r.Addr))
	put(t, w, `{"id":"a","lat":1,"lon":1}`)
	o := testOptions(r.Addr)
	o.VerifySample = 1
	s := newStore(t, o)
	stripe := s.stripeFor("coupon:id:a")
	job := func() verifyJob {
		return verifyJob{key: "id:a", h: header{epoch: s.epoch.Load(), gen: stripe.Load(), found: true, fetched: time.Now().UnixNano()}, raw: []byte(`{"id":"a","old":1}`)}
	}
	done := make(chan struct{})
	j := job()
	go func() { s.verifyOne(j); close(done) }()
	stripe.Add(1) // the invalidation, during the re-read or its grace
	<-done
	if n := s.Stats.VerifyMismatch.Load(); n != 0 {
		t.Fatalf("%d mismatches counted though an invalidation arrived", n)
	}
	s.verifyOne(job()) // the same difference, nothing arriving
	if n := s.Stats.VerifyMismatch.Load(); n != 1 {
		t.Fatalf("%d mismatches, want 1", n)
	}
}
