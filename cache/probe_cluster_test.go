package cache

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// probeCluster starts three masters (no replicas) joined into a cluster.
func probeCluster(t *testing.T) []*redistest.Server {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not on PATH")
	}
	var nodes []*redistest.Server
	args := []string{"--cluster", "create"}
	for i := 0; i < 3; i++ {
		addr := redistest.FreeAddr(t)
		nodes = append(nodes, redistest.StartArgs(t, addr, append(redistest.BaseArgs(t, addr),
			"--cluster-enabled", "yes", "--cluster-node-timeout", "2000")...))
		args = append(args, addr)
	}
	out, err := exec.Command("redis-cli", append(args, "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster create: %v\n%s", err, out)
	}
	waitWithin(t, 10*time.Second, "cluster ok", func() bool {
		for _, n := range nodes {
			if info, _ := n.Do("CLUSTER", "INFO"); !strings.Contains(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	return nodes
}

// On a cluster the probe writes one key per master, on a slot that master
// owns, and reports each node.
func TestProbeEveryClusterMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	nodes := probeCluster(t)
	o := probeOptions(nodes[0].Addr, 50*time.Millisecond, 500*time.Millisecond)
	s := newStore(t, o)
	waitWithin(t, 10*time.Second, "every master probed", func() bool {
		p := s.Probes()
		return len(p) == 3 && s.StreamUp() && p[0].Count > 0 && p[1].Count > 0 && p[2].Count > 0
	})
	for _, n := range nodes {
		keys, err := n.Do("DBSIZE")
		if err != nil || keys != ":1" {
			t.Errorf("master %s holds %q keys, want its one probe key", n.Addr, keys)
		}
	}
	for _, p := range s.Probes() {
		t.Logf("node %s: %d probes, last lag %v", p.Node, p.Count, p.LastLag)
	}
}
