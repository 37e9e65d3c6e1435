package redistest

import (
	"testing"
	"time"
)

func TestClusterHarness(t *testing.T) {
	start := time.Now()
	c := StartCluster(t)
	t.Logf("cluster up in %v", time.Since(start))
	if m := c.Masters(); len(m) != 3 {
		t.Fatalf("%d masters", len(m))
	}
	from := c.Owner(0)
	to := c.Owner(16383)
	start = time.Now()
	c.Reshard(from, to, 1)
	t.Logf("reshard of one slot in %v", time.Since(start))
	if c.Owner(0) != to {
		t.Fatalf("slot 0 did not move")
	}
	start = time.Now()
	killed, promoted := c.KillMaster(16383)
	t.Logf("failover in %v: %s -> %s", time.Since(start), killed.Addr, promoted.Addr)
	killed.Restart()
	start = time.Now()
	c.Failover(killed)
	t.Logf("failback in %v", time.Since(start))
	if c.Owner(16383) != killed {
		t.Fatalf("failback did not happen")
	}
	if KeySlot("foo") != 12182 || KeySlot("{user1000}.following") != KeySlot("user1000") {
		t.Fatalf("KeySlot")
	}
}
