package main

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// coupons check lists one line per coupon that disagrees and exits 3;
// -repair fixes them and exits 0; a second check is clean (SPEC §2, §11).
func testCouponsCheck(t *testing.T, addr string) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "edge.toml", redisConfig(addr, "", false))
	data := writeFile(t, dir, "c.jsonl", strings.Join([]string{
		`{"id":"k1","lat":35.681,"lon":139.767}`,
		`{"id":"k2","lat":35.681,"lon":139.767}`,
		`{"id":"k3","lat":-33.9,"lon":151.2}`,
	}, "\n"))
	if out, errOut, code := runBinary(t, "coupons", "import", "-config", cfg, data); code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := runBinary(t, "coupons", "check", "-config", cfg); code != 0 || out != "" {
		t.Fatalf("check of a clean store: exit %d\n%s\n%s", code, out, errOut)
	}
	// k1 moved by a writer that died before touching the cells; k3
	// deleted by one that died after DEL.
	moved := `{"id":"k1","lat":-33.9,"lon":151.2}`
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	do := func(args ...string) string {
		r := client.Do(context.Background(), client.B().Arbitrary(args...).Build())
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			t.Fatalf("%v: %v", args, err)
		}
		v, _ := r.ToString()
		return v
	}
	do("SET", "coupon:id:k1", moved)
	do("DEL", "coupon:id:k3")
	tokyo, sydney := coupon.Geohash(35.681, 139.767, 5), coupon.Geohash(-33.9, 151.2, 5)
	want := "k1: in cell " + tokyo + ", which is not the cell of its position (" + sydney + "); missing from its cell " + sydney + "\n" +
		"k3: in cell " + sydney + " but there is no id key\n"
	out, errOut, code := runBinary(t, "coupons", "check", "-config", cfg)
	if code != 3 || out != want {
		t.Fatalf("check: exit %d\n%s\nwant\n%s\nstderr %s", code, out, want, errOut)
	}
	out, errOut, code = runBinary(t, "coupons", "check", "-repair", "-config", cfg)
	if code != 0 || out != want || !strings.Contains(errOut, "repaired 2 of 2") {
		t.Fatalf("check -repair: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := runBinary(t, "coupons", "check", "-config", cfg); code != 0 || out != "" {
		t.Fatalf("check after repair: exit %d\n%s\n%s", code, out, errOut)
	}
	if v := do("HGET", "coupon:cell:"+sydney, "k1"); v != moved {
		t.Errorf("k1 in its new cell after repair: %q", v)
	}
}

func TestCouponsCheckOnOneRedis(t *testing.T) { testCouponsCheck(t, redistest.Start(t).Addr) }

func TestCouponsCheckOnCluster(t *testing.T) {
	testCouponsCheck(t, redistest.StartCluster(t).Nodes[0].Addr)
}
