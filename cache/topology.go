package cache

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// On Redis Cluster an entry can go stale without any invalidation: Redis
// sends none when a slot changes owner (a failover, a reshard), so a value
// or a cached absence read from the old owner would stay fresh in L1 after
// the key is written on the new one (issue 13, bug (a)). And rueidis
// caches per connection: until its own slot map catches up, a re-read may
// still be answered from the old owner's connection cache without a
// round trip, so bumping the epoch alone is not enough.
//
// So the store watches slot ownership (CLUSTER SLOTS from one node, every
// TopologyInterval). When it changes, the store connects a new client (a
// fresh slot map and empty connection caches), swaps it in, and only then
// bumps the epoch: a reader that sees the new epoch also sees the new
// client, since readers load the epoch before the client. The old client
// is closed a grace period later, with its connection-loss callbacks
// ignored (what it fed is already behind the epoch), so one change costs
// one re-read of each entry, not two. A node's connection that drops (a
// node killed or restarted) bumps the epoch through rueidis's nil
// invalidation as on one Redis.

// DefaultTopologyInterval is how often slot ownership is polled.
const DefaultTopologyInterval = 200 * time.Millisecond

// topology is the Store's cluster state: the gates of its clients and the
// clients waiting to be closed. The watcher goroutine owns last and node.
type topology struct {
	mu       sync.Mutex                     // guards gates, retiring, known
	gates    map[rueidis.Client]*clientGate // by client, until it is closed
	retiring []retiredClient
	known    []string // the cluster's nodes as last seen, to reconnect through

	last string // the slot ownership last seen
	node string // the node polled, kept while it answers

	Changes atomic.Uint64 // ownership changes seen, for metrics and tests
}

type retiredClient struct {
	client  rueidis.Client
	closeAt time.Time
}

// clientGate forwards one client's invalidations to the store until the
// client is retired; after that its connection-loss callbacks are dropped.
type clientGate struct {
	s       *Store
	retired atomic.Bool
}

func (g *clientGate) onInvalidations(keys []rueidis.RedisMessage) {
	if keys == nil && g.retired.Load() {
		return
	}
	g.s.onInvalidations(keys)
}

// retireGate marks a replaced client's closing as expected: the epoch
// moved when it was replaced, so its nil invalidation on close is not
// another loss.
func (s *Store) retireGate(c rueidis.Client) {
	s.topo.mu.Lock()
	defer s.topo.mu.Unlock()
	if g := s.topo.gates[c]; g != nil {
		g.retired.Store(true)
	}
}

// newGate is the OnInvalidations of a client about to be connected.
func (s *Store) newGate() *clientGate { return &clientGate{s: s} }

// registerGate remembers the gate of a connected client.
func (s *Store) registerGate(c rueidis.Client, g *clientGate) {
	s.topo.mu.Lock()
	defer s.topo.mu.Unlock()
	if s.topo.gates == nil {
		s.topo.gates = map[rueidis.Client]*clientGate{}
	}
	s.topo.gates[c] = g
}

// watchTopology polls slot ownership until the store closes.
func (s *Store) watchTopology() {
	defer s.wg.Done()
	interval := s.o.TopologyInterval
	if interval <= 0 {
		interval = DefaultTopologyInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			s.closeRetired(time.Time{})
			return
		case <-t.C:
		}
		s.closeRetired(s.now())
		cp := s.client.Load()
		if cp == nil || (*cp).Mode() != rueidis.ClientModeCluster {
			continue
		}
		view, ok := s.slotOwners(*cp)
		if !ok {
			continue
		}
		switch {
		case s.topo.last == "":
			s.warm(*cp, view)
		case view != s.topo.last && !s.topologyChanged(*cp, view):
			continue // not swapped: try again on the next tick
		}
		s.topo.last = view
		if !masterIn(view, s.topo.node) {
			s.topo.node = "" // the first pick was a replica: take a master
		}
	}
}

// masterIn reports whether addr owns slots in an ownership view.
func masterIn(view, addr string) bool {
	for _, part := range strings.Split(view, ",") {
		if _, a, _ := strings.Cut(part, "@"); a == addr {
			return true
		}
	}
	return false
}

// slotOwners reads CLUSTER SLOTS from the polled node (a random master,
// kept while it answers: one node's view only moves forward, where views
// of different nodes may disagree for a moment and cause needless swaps;
// a master, because the connection to a polled replica would be one more
// whose loss, when the replica restarts, makes every entry be re-read).
func (s *Store) slotOwners(client rueidis.Client) (string, bool) {
	nodes := client.Nodes()
	s.rememberNodes(nodes)
	n, ok := nodes[s.topo.node]
	if !ok {
		addrs := make([]string, 0, len(nodes))
		for a := range nodes {
			if s.topo.last == "" || masterIn(s.topo.last, a) {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			return "", false
		}
		s.topo.node = addrs[rand.N(len(addrs))]
		n = nodes[s.topo.node]
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.o.CommandTimeout)
	defer cancel()
	slots, err := n.Do(ctx, n.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		s.topo.node = "" // ask another node next time
		return "", false
	}
	return ownership(slots), true
}

// rememberNodes keeps the nodes' addresses: a new client must reach the
// cluster even when every configured address is down (a killed master).
func (s *Store) rememberNodes(nodes map[string]rueidis.Client) {
	known := make([]string, 0, len(nodes))
	for a := range nodes {
		known = append(known, a)
	}
	slices.Sort(known)
	s.topo.mu.Lock()
	s.topo.known = known
	s.topo.mu.Unlock()
}

// initAddrs are the addresses a new client starts from: the configured
// ones, then the cluster's nodes as last seen.
func (s *Store) initAddrs() []string {
	s.topo.mu.Lock()
	defer s.topo.mu.Unlock()
	addrs := slices.Clone(s.o.Addrs)
	for _, a := range s.topo.known {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// ownership renders a CLUSTER SLOTS reply as "start-end=master-id@addr",
// sorted: equal exactly when every slot has the same master.
func ownership(slots []rueidis.RedisMessage) string {
	var parts []string
	for _, r := range slots {
		f, err := r.ToArray()
		if err != nil || len(f) < 3 {
			continue
		}
		start, _ := f[0].AsInt64()
		end, _ := f[1].AsInt64()
		m, _ := f[2].ToArray()
		var host, id string
		var port int64
		if len(m) >= 3 {
			host, _ = m[0].ToString()
			port, _ = m[1].AsInt64()
			id, _ = m[2].ToString()
		}
		parts = append(parts, strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"="+id+"@"+host+":"+strconv.FormatInt(port, 10))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// topologyChanged swaps in a new client and retires the old one; if the
// new one cannot connect, the epoch is bumped anyway and the old client
// (whose rueidis follows MOVED and refreshes its own map) stays, and the
// swap is tried again on the next poll.
func (s *Store) topologyChanged(old rueidis.Client, view string) bool {
	s.topo.Changes.Add(1)
	client, err := s.connect()
	if err != nil {
		s.log.Warn("redis cluster topology changed; reconnecting failed, keeping the old connections", zap.Error(err))
		s.epoch.Add(1)
		return false
	}
	s.warm(client, view)
	s.client.Store(&client)
	s.epoch.Add(1) // after the swap: see the comment at the top
	s.log.Info("redis cluster slot ownership changed; every cached entry is re-read before it is served fresh")
	s.topo.mu.Lock()
	if g := s.topo.gates[old]; g != nil {
		g.retired.Store(true)
	}
	// In-flight reads on the old client finish within CommandTimeout.
	s.topo.retiring = append(s.topo.retiring, retiredClient{client: old, closeAt: s.now().Add(s.o.CommandTimeout + time.Second)})
	s.topo.mu.Unlock()
	return true
}

// warm connects client to every master in view (rueidis dials a node on
// its first command), so the re-reads after a swap do not each wait on a
// dial within their CommandTimeout.
func (s *Store) warm(client rueidis.Client, view string) {
	nodes := client.Nodes()
	ctx, cancel := context.WithTimeout(s.ctx, s.o.CommandTimeout)
	defer cancel()
	var wg sync.WaitGroup
	seen := map[string]bool{}
	for _, part := range strings.Split(view, ",") {
		_, addr, _ := strings.Cut(part, "@")
		n, ok := nodes[addr]
		if !ok || seen[addr] {
			continue
		}
		seen[addr] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.Do(ctx, n.B().Ping().Build()).Error()
		}()
	}
	wg.Wait()
}

// TopologyChanges counts the slot ownership changes the store has seen,
// each of which made every cached entry be re-read.
func (s *Store) TopologyChanges() uint64 { return s.topo.Changes.Load() }

// closeRetired closes the retired clients due by now (all when now is zero).
func (s *Store) closeRetired(now time.Time) {
	s.topo.mu.Lock()
	var due []rueidis.Client
	keep := s.topo.retiring[:0]
	for _, r := range s.topo.retiring {
		if now.IsZero() || !now.Before(r.closeAt) {
			due = append(due, r.client)
			delete(s.topo.gates, r.client)
		} else {
			keep = append(keep, r)
		}
	}
	s.topo.retiring = keep
	s.topo.mu.Unlock()
	for _, c := range due {
		c.Close()
	}
}
