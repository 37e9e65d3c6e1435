package redistest

import "testing"

// The cluster harness itself is exercised by the cache package's cluster
// tests (reshard, failover, restart and failback); this pins KeySlot to
// the values in Redis's cluster specification.
func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{
		"foo":                  12182,
		"123456789":            12739,
		"{user1000}.following": KeySlot("user1000"),
		"foo{}{bar}":           KeySlot("foo{}{bar}"),
		"{}x":                  KeySlot("{}x"),
	} {
		if got := KeySlot(key); got != want {
			t.Errorf("KeySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if KeySlot("{bar}x") != KeySlot("bar") || KeySlot("foo{}{bar}") == KeySlot("bar") {
		t.Errorf("hash tags")
	}
}
