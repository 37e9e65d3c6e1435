package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of private redis-server processes on free
// loopback ports: three masters with one replica each, a short
// cluster-node-timeout so a killed master's replica takes over in about
// two seconds.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
}

// Node is one member of a Cluster. It keeps its folder (and so its
// nodes.conf) across Restart, so it rejoins with the same node id.
type Node struct {
	*Server
	dir string
}

// NodeTimeout is the cluster-node-timeout the harness runs with.
const NodeTimeout = time.Second

// StartCluster creates the cluster; the test is skipped when
// redis-server or redis-cli (which ships with it) is not installed.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not on PATH: the Redis Cluster tests need redis-server and redis-cli", bin)
		}
	}
	c := &Cluster{t: t}
	for i := 0; i < 6; i++ {
		n := &Node{Server: &Server{t: t, Addr: clusterAddr(t)}, dir: t.TempDir()}
		n.start()
		t.Cleanup(n.Stop)
		c.Nodes = append(c.Nodes, n)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitStable()
	c.WaitSynced()
	return c
}

// WaitSynced waits until every live replica's link to its master is up:
// a replica that never synced cannot take over.
func (c *Cluster) WaitSynced() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Live() {
		for {
			info, err := n.Do("INFO", "replication")
			if err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")) {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s did not sync with its master", n.Addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// clusterAddr finds a free port whose cluster bus port (+10000) is free too.
func clusterAddr(t testing.TB) string {
	for tries := 0; tries < 100; tries++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if port+10000 > 65535 {
			ln.Close()
			continue
		}
		bus, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000))
		ln.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	t.Fatal("no free port pair for a cluster node")
	return ""
}

func (n *Node) start() {
	n.t.Helper()
	_, port, _ := net.SplitHostPort(n.Addr)
	n.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", n.dir, "--logfile", "redis.log", "--loglevel", "notice", "--repl-diskless-sync-delay", "0", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.Itoa(int(NodeTimeout/time.Millisecond)))
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.waitUp()
}

// Restart starts a stopped node again, empty, with its old node id: it
// rejoins the cluster (as a replica if its slots were taken over).
func (n *Node) Restart() { n.start() }

// Kill stops the node at once, as a crash would.
func (n *Node) Kill() { n.Stop() }

// LogTail is the last lines of the node's log, for failure messages.
func (n *Node) LogTail(lines int) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// Alive reports whether the node's process runs.
func (n *Node) Alive() bool { return n.cmd != nil }

// ID is the node's cluster id.
func (n *Node) ID() string {
	n.t.Helper()
	id, err := n.Do("CLUSTER", "MYID")
	if err != nil {
		n.t.Fatalf("CLUSTER MYID on %s: %v", n.Addr, err)
	}
	return id
}

// Addrs lists every node's address.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// Live lists the nodes whose processes run.
func (c *Cluster) Live() []*Node {
	var l []*Node
	for _, n := range c.Nodes {
		if n.Alive() {
			l = append(l, n)
		}
	}
	return l
}

// Masters lists the live masters that own slots, as the first live node
// sees them, ordered by address.
func (c *Cluster) Masters() []*Node {
	c.t.Helper()
	var m []*Node
	for _, n := range c.Live() {
		role, err := n.Do("ROLE")
		if err != nil {
			c.t.Fatalf("ROLE on %s: %v", n.Addr, err)
		}
		if role != "*3" { // a master's ROLE reply has 3 elements, a replica's 5
			continue
		}
		if len(c.slotsOf(n)) > 0 {
			m = append(m, n)
		}
	}
	sort.Slice(m, func(i, j int) bool { return m[i].Addr < m[j].Addr })
	return m
}

// slotsOf reads node n's own line of CLUSTER NODES: the slots it owns.
func (c *Cluster) slotsOf(n *Node) []string {
	for _, l := range c.nodesLines(n) {
		f := strings.Fields(l)
		if len(f) >= 8 && strings.Contains(f[2], "myself") {
			return f[8:]
		}
	}
	return nil
}

func (c *Cluster) nodesLines(n *Node) []string {
	c.t.Helper()
	out, err := n.Do("CLUSTER", "NODES")
	if err != nil {
		c.t.Fatalf("CLUSTER NODES on %s: %v", n.Addr, err)
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}

// Owner is the node that owns slot, as the first live node sees it.
func (c *Cluster) Owner(slot int) *Node {
	c.t.Helper()
	n := c.owner(slot)
	if n == nil {
		c.t.Fatalf("no node owns slot %d: %q", slot, c.nodesLines(c.Live()[0]))
	}
	return n
}

// owner is Owner, nil when no live-looking master owns slot.
func (c *Cluster) owner(slot int) *Node {
	for _, l := range c.nodesLines(c.Live()[0]) {
		f := strings.Fields(l)
		if len(f) < 8 || !strings.Contains(f[2], "master") || failed(f[2]) {
			continue
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue
			}
			lo, hi, _ := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if hi != "" {
				b, _ = strconv.Atoi(hi)
			}
			if slot >= a && slot <= b {
				addr, _, _ := strings.Cut(f[1], "@")
				for _, n := range c.Nodes {
					if n.Addr == addr {
						return n
					}
				}
			}
		}
	}
	return nil
}

// WaitStable waits until every live node reports cluster_state:ok and the
// live nodes agree on who owns every slot.
func (c *Cluster) WaitStable() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c.stable() {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not stable within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) stable() bool {
	var first string
	for i, n := range c.Live() {
		info, err := n.Do("CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return false
		}
		view := c.ownershipView(n)
		if i == 0 {
			first = view
		} else if view != first {
			return false
		}
	}
	return true
}

// ownershipView is node n's idea of the slot owners, as text to compare.
func (c *Cluster) ownershipView(n *Node) string {
	out, err := n.Do("CLUSTER", "NODES")
	if err != nil {
		return "error"
	}
	var owners []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			return "short"
		}
		if failed(f[2]) {
			continue
		}
		if strings.Contains(f[2], "master") && len(f) > 8 {
			var slots []string
			for _, s := range f[8:] {
				if !strings.HasPrefix(s, "[") {
					slots = append(slots, s)
				}
			}
			owners = append(owners, f[0]+" "+strings.Join(slots, ","))
		}
	}
	sort.Strings(owners)
	return strings.Join(owners, ";")
}

// failed: CLUSTER NODES flags of a node the cluster agreed is down
// ("fail"; "fail?" is one node's suspicion only).
func failed(flags string) bool {
	for _, f := range strings.Split(flags, ",") {
		if f == "fail" {
			return true
		}
	}
	return false
}

// KillMaster kills the master of slot and waits until its replica has
// taken over and the cluster is stable again; it returns the killed node
// and the promoted one.
func (c *Cluster) KillMaster(slot int) (killed, promoted *Node) {
	c.t.Helper()
	c.WaitSynced()
	killed = c.Owner(slot)
	killed.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c.stable() {
			if o := c.owner(slot); o != nil && o != killed {
				return killed, o
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no replica took over slot %d within 30s: %q", slot, c.nodesLines(c.Live()[0]))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Failover makes replica n take over its master's slots (CLUSTER
// FAILOVER, no data lost) and waits until the cluster is stable.
func (c *Cluster) Failover(n *Node) {
	c.t.Helper()
	// A restarted node must have synced before it can take over.
	c.WaitSynced()
	deadline := time.Now().Add(30 * time.Second)
	// The request travels on the cluster bus, which a just restarted node
	// may not have connected yet: it is dropped and times out after 5 s.
	// So it is asked again until it works.
	var asked time.Time
	for {
		if time.Since(asked) > 6*time.Second {
			if _, err := n.Do("CLUSTER", "FAILOVER"); err != nil {
				c.t.Fatalf("CLUSTER FAILOVER on %s: %v", n.Addr, err)
			}
			asked = time.Now()
		}
		if role, err := n.Do("ROLE"); err == nil && role == "*3" && c.stable() {
			return
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, o := range c.Live() {
				fmt.Fprintf(&logs, "%s:\n%s\n", o.Addr, o.LogTail(12))
			}
			c.t.Fatalf("%s did not take over; logs end:\n%s", n.Addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Reshard moves count slots from one master to another with
// `redis-cli --cluster reshard` (which takes the source's lowest slots and
// moves their keys with MIGRATE), and waits until the cluster is stable.
func (c *Cluster) Reshard(from, to *Node, count int) {
	c.t.Helper()
	out, err := exec.Command("redis-cli", "--cluster", "reshard", from.Addr,
		"--cluster-from", from.ID(), "--cluster-to", to.ID(),
		"--cluster-slots", strconv.Itoa(count), "--cluster-yes").CombinedOutput()
	if err != nil {
		c.t.Fatalf("redis-cli --cluster reshard: %v\n%s", err, out)
	}
	c.WaitStable()
}

// LowestSlot is the lowest slot n owns (the next one Reshard moves).
func (c *Cluster) LowestSlot(n *Node) int {
	c.t.Helper()
	low := -1
	for _, r := range c.slotsOf(n) {
		if strings.HasPrefix(r, "[") {
			continue
		}
		lo, _, _ := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		if low < 0 || a < low {
			low = a
		}
	}
	if low < 0 {
		c.t.Fatalf("%s owns no slot", n.Addr)
	}
	return low
}

// KeySlot is Redis Cluster's hash slot of key (CRC16 of its hash tag).
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
}

// CommandCalls sums INFO commandstats over every live node.
func (c *Cluster) CommandCalls() map[string]int {
	sum := map[string]int{}
	for _, n := range c.Live() {
		for k, v := range n.CommandCalls() {
			sum[k] += v
		}
	}
	return sum
}
