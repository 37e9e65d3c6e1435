package cache

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// TestProbeCostOnRedis measures what probes cost Redis, for the README's
// sizing: 20 stores probe every 10 ms for 3 s; Redis's CPU and command
// counts are divided by the probes made. Run with EDGEPROXY_PROBE_COST=1.
func TestProbeCostOnRedis(t *testing.T) {
	if os.Getenv("EDGEPROXY_PROBE_COST") == "" {
		t.Skip("set EDGEPROXY_PROBE_COST=1 to measure")
	}
	r := redistest.Start(t)
	cpu := func() float64 {
		info, err := r.Do("INFO", "cpu")
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, l := range strings.Split(info, "\r\n") {
			var v float64
			if _, err := fmt.Sscanf(l, "used_cpu_sys:%f", &v); err == nil {
				sum += v
			}
			if _, err := fmt.Sscanf(l, "used_cpu_user:%f", &v); err == nil {
				sum += v
			}
		}
		return sum
	}
	var stores []*Store
	for i := 0; i < 20; i++ {
		o := probeOptions(r.Addr, 10*time.Millisecond, 500*time.Millisecond)
		o.Instance = fmt.Sprintf("cost-%d", i)
		stores = append(stores, newStore(t, o))
	}
	waitWithin(t, 5*time.Second, "all up", func() bool {
		for _, s := range stores {
			if !s.StreamUp() {
				return false
			}
		}
		return true
	})
	count := func() (n uint64) {
		for _, s := range stores {
			for _, p := range s.Probes() {
				n += p.Count
			}
		}
		return n
	}
	c0, p0, calls0 := cpu(), count(), r.CommandCalls()
	time.Sleep(3 * time.Second) // a measurement window, not synchronisation
	c1, p1, calls1 := cpu(), count(), r.CommandCalls()
	probes := float64(p1 - p0)
	var cmds []string
	total := 0
	for name, n := range calls1 {
		if d := n - calls0[name]; d > 0 && name != "info" {
			cmds = append(cmds, fmt.Sprintf("%s %.2f", name, float64(d)/probes))
			total += d
		}
	}
	t.Logf("%.0f probes: Redis CPU %.1f µs per probe, %.2f commands per probe (%s)", probes, (c1-c0)*1e6/probes, float64(total)/probes, strings.Join(cmds, ", "))
}
