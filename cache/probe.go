package cache

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// The probe (SPEC §11) measures the invalidation path end to end, through
// the same client and tracking the coupon reads use: every ProbeInterval,
// for each master, it reads its own probe key through DoCache (so Redis
// tracks it for this connection), writes the key, and times the arrival of
// the invalidation push for it. A push not seen within ProbeTimeout marks
// that node's stream down; the stream is up only while every node's is.
//
// Probe keys are {prefix}:probe:{instance} on one Redis (or a Sentinel's
// master) and {prefix}:probe:{instance}:{tag} on a cluster, one per
// master, tag chosen so the key hashes to a slot that master owns. They
// expire on their own, so an instance that went away leaves nothing.

// LagBuckets are the upper bounds (seconds) of the lag histogram.
var LagBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

// ProbeNode is one node's probe state, a copy safe to keep.
type ProbeNode struct {
	Node    string
	Up      bool
	Probed  bool // at least one probe finished
	LastLag time.Duration
	LastErr string
	// Counts are cumulative per LagBuckets (then +Inf); Sum in seconds.
	Counts []uint64
	Count  uint64
	Sum    float64
}

type probeTarget struct{ node, key string }

// prober is the probe's state. It is safe for concurrent use.
type prober struct {
	prefix string // "{key_prefix}:probe:" for recognising pushes
	base   string // prefix + instance

	mu      sync.Mutex // guards waiters, nodes, targets, cluster, single, round
	waiters map[string]chan struct{}
	nodes   map[string]*ProbeNode
	targets []probeTarget
	cluster bool // CLUSTER SLOTS answered
	single  bool // CLUSTER SLOTS said cluster support is disabled
	round   int
}

func newProber(keyPrefix, instance string) *prober {
	p := keyPrefix + ":probe:"
	return &prober{prefix: p, base: p + sanitizeInstance(instance), waiters: map[string]chan struct{}{}, nodes: map[string]*ProbeNode{}}
}

func sanitizeInstance(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "edgeproxy"
	}
	return string(b)
}

func (p *prober) isProbeKey(k string) bool { return strings.HasPrefix(k, p.prefix) }

// arrived wakes the probe waiting for k's invalidation, if any.
func (p *prober) arrived(k string) {
	p.mu.Lock()
	if ch, ok := p.waiters[k]; ok {
		delete(p.waiters, k)
		close(ch)
	}
	p.mu.Unlock()
}

func (p *prober) wait(k string) chan struct{} {
	ch := make(chan struct{})
	p.mu.Lock()
	p.waiters[k] = ch
	p.mu.Unlock()
	return ch
}

func (p *prober) forget(k string) {
	p.mu.Lock()
	delete(p.waiters, k)
	p.mu.Unlock()
}

// StreamUp reports whether every node's last probe passed; false before the
// first probe finished, and always false without a probe.
func (s *Store) StreamUp() bool {
	if s.probe == nil {
		return false
	}
	s.probe.mu.Lock()
	defer s.probe.mu.Unlock()
	return s.probe.allUpLocked()
}

func (p *prober) allUpLocked() bool {
	if len(p.nodes) == 0 {
		return false
	}
	for _, n := range p.nodes {
		if !n.Up {
			return false
		}
	}
	return true
}

// Probes returns each node's probe state, sorted by node; nil without a probe.
func (s *Store) Probes() []ProbeNode {
	if s.probe == nil {
		return nil
	}
	s.probe.mu.Lock()
	out := make([]ProbeNode, 0, len(s.probe.nodes))
	for _, n := range s.probe.nodes {
		c := *n
		c.Counts = append([]uint64(nil), n.Counts...)
		out = append(out, c)
	}
	s.probe.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// probeLoop runs a probe round every ProbeInterval until the store closes.
func (s *Store) probeLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.o.ProbeInterval)
	defer t.Stop()
	for {
		s.probeRound()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probeRound probes every node at once and applies the outcome.
func (s *Store) probeRound() {
	p := s.probe
	type outcome struct {
		node string
		lag  time.Duration
		err  error
	}
	var results []outcome
	cp := s.client.Load()
	if cp == nil {
		results = append(results, outcome{node: s.nodeLabel(), err: errors.New("redis not connected")})
	} else {
		client := *cp
		targets := s.probeTargets(client)
		results = make([]outcome, len(targets))
		var wg sync.WaitGroup
		for i, tg := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lag, err := s.probeOnce(client, tg.key)
				results[i] = outcome{node: tg.node, lag: lag, err: err}
			}()
		}
		wg.Wait()
	}
	if s.ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.node] = true
		n := p.nodes[r.node]
		if n == nil {
			n = &ProbeNode{Node: r.node, Counts: make([]uint64, len(LagBuckets)+1)}
			p.nodes[r.node] = n
		}
		wasUp := n.Up
		n.Probed = true
		n.Up = r.err == nil
		if r.err != nil {
			n.LastErr = r.err.Error()
			if wasUp {
				s.log.Warn("invalidation probe failed", zap.String("node", r.node), zap.Error(r.err))
			}
			continue
		}
		n.LastErr = ""
		n.LastLag = r.lag
		sec := r.lag.Seconds()
		n.Count++
		n.Sum += sec
		for i, b := range LagBuckets {
			if sec <= b {
				n.Counts[i]++
			}
		}
		n.Counts[len(LagBuckets)]++
	}
	for name := range p.nodes {
		if !seen[name] { // a node that left the topology
			delete(p.nodes, name)
		}
	}
	up := p.allUpLocked()
	p.mu.Unlock()
	s.streamState(up)
}

// streamState enters or leaves the degraded mode of SPEC §11.
func (s *Store) streamState(up bool) {
	lost := s.lost.Load()
	switch {
	case !up && !lost:
		// lost first, then the epoch: a fill that saw lost=false read
		// the epoch before this move, so its entry is never fresh; a fill
		// that saw lost=true expires early (degradedExpiry). The hot path
		// checks nothing more than it always did.
		s.lost.Store(true)
		s.epoch.Add(1)
		s.Stats.StreamLosses.Add(1)
		s.log.Warn("invalidation stream lost; coupon answers degraded until probes pass",
			zap.String("on_stream_loss", s.o.OnStreamLoss.String()))
	case up && lost:
		if err := s.resync(func() { s.lost.Store(false) }); err != nil {
			s.log.Warn("invalidation stream back but reconnecting failed; staying degraded", zap.Error(err))
			return
		}
		s.log.Info("invalidation stream back; entries from before and during the loss are re-read")
	}
}

// resync replaces the Redis client and makes every entry unusable until
// re-read: rueidis's own per-connection caches missed whatever pushes we
// missed, and a new client starts with empty ones. between runs after the
// swap, between two epoch moves: the first retires entries from before it
// runs, the second those filled while it ran (read past tracking).
func (s *Store) resync(between func()) error {
	client, err := s.connect()
	if err != nil {
		s.setLastErr(err)
		return err
	}
	old := s.client.Swap(&client)
	s.epoch.Add(1)
	if between != nil {
		between()
	}
	s.epoch.Add(1)
	s.lastResync.Store(s.now().UnixNano())
	if old != nil {
		s.retireGate(*old)
		s.closeLater(*old)
	}
	return nil
}

// closeLater closes a replaced client once requests that took it are done.
func (s *Store) closeLater(c rueidis.Client) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(2*s.o.CommandTimeout + 100*time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.ctx.Done():
		}
		c.Close()
		s.topo.mu.Lock()
		delete(s.topo.gates, c)
		s.topo.mu.Unlock()
	}()
}

// probeOnce reads key through the tracking path, writes it and waits for
// its invalidation; the lag runs from just before the write.
func (s *Store) probeOnce(client rueidis.Client, key string) (time.Duration, error) {
	p := s.probe
	// The whole probe, read and write included, has probe_timeout: a round
	// starts at most probe_interval after a loss began, so the loss is
	// found within probe_interval + probe_timeout.
	deadline := time.Now().Add(s.o.ProbeTimeout)
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	// The client-side TTL ends before the next round, so each round's read
	// is a miss that registers tracking again even if a push was lost.
	ttl := max(s.o.ProbeInterval/2, time.Millisecond)
	if err := client.DoCache(ctx, client.B().Get().Key(key).Cache(), ttl).Error(); err != nil && !rueidis.IsRedisNil(err) {
		s.setLastErr(err)
		return 0, err
	}
	ch := p.wait(key)
	defer p.forget(key)
	start := time.Now()
	keep := max(10*(s.o.ProbeInterval+s.o.ProbeTimeout), time.Minute)
	err := client.Do(ctx, client.B().Set().Key(key).Value(strconv.FormatInt(start.UnixNano(), 10)).
		Px(keep).Build()).Error()
	if err != nil {
		s.setLastErr(err)
		return 0, err
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return time.Since(start), nil
	case <-t.C:
		return 0, errors.New("no invalidation within probe_timeout " + s.o.ProbeTimeout.String())
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	}
}

// nodeLabel names the single node of a non-cluster setup.
func (s *Store) nodeLabel() string {
	if s.o.SentinelMaster != "" {
		return "sentinel:" + s.o.SentinelMaster
	}
	if len(s.o.Addrs) > 0 {
		return s.o.Addrs[0]
	}
	return "redis"
}

// probeTargets is one key per master: read from CLUSTER SLOTS every tenth
// round (or after a failure) on a cluster, else the single probe key.
func (s *Store) probeTargets(client rueidis.Client) []probeTarget {
	p := s.probe
	p.mu.Lock()
	refresh := p.round%10 == 0 || !p.allUpLocked()
	p.round++
	targets, cluster, single := p.targets, p.cluster, p.single
	p.mu.Unlock()
	if (!refresh || single) && len(targets) > 0 {
		return targets // a server that said it is no cluster stays none
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.o.CommandTimeout)
	defer cancel()
	msgs, err := client.Do(ctx, client.B().ClusterSlots().Build()).ToArray()
	switch {
	case err == nil && len(msgs) > 0:
		targets, cluster = clusterTargets(p.base, msgs), true
	case err != nil && !cluster && isNoCluster(err):
		targets, single = []probeTarget{{node: s.nodeLabel(), key: p.base}}, true
	case len(targets) == 0:
		// Neither answer: probe the plain key, which reports the error.
		targets = []probeTarget{{node: s.nodeLabel(), key: p.base}}
	}
	p.mu.Lock()
	p.targets, p.cluster, p.single = targets, cluster, single
	p.mu.Unlock()
	return targets
}

func isNoCluster(err error) bool {
	var re *rueidis.RedisError
	return errors.As(err, &re) && strings.Contains(re.Error(), "cluster support disabled")
}

// clusterTargets reads CLUSTER SLOTS: [start, end, [host, port, id], ...].
func clusterTargets(base string, msgs []rueidis.RedisMessage) []probeTarget {
	type slotRange struct{ lo, hi int64 }
	ranges := map[string][]slotRange{}
	for _, m := range msgs {
		f, err := m.ToArray()
		if err != nil || len(f) < 3 {
			continue
		}
		lo, err1 := f[0].AsInt64()
		hi, err2 := f[1].AsInt64()
		master, err3 := f[2].ToArray()
		if err1 != nil || err2 != nil || err3 != nil || len(master) < 2 {
			continue
		}
		host, _ := master[0].ToString()
		port, _ := master[1].AsInt64()
		node := host + ":" + strconv.FormatInt(port, 10)
		ranges[node] = append(ranges[node], slotRange{lo, hi})
	}
	out := make([]probeTarget, 0, len(ranges))
	for node, rs := range ranges {
		for i := 0; i < 1<<20; i++ {
			tag := strconv.Itoa(i)
			slot := int64(crc16(tag) % 16384)
			owned := false
			for _, r := range rs {
				owned = owned || (slot >= r.lo && slot <= r.hi)
			}
			if owned {
				out = append(out, probeTarget{node: node, key: base + ":{" + tag + "}"})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node < out[j].node })
	return out
}

// crc16 is CRC-16/XMODEM, Redis Cluster's key slot hash.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
