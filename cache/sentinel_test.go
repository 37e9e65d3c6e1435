package cache

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// sentinelSetup starts a master, a replica and three Sentinels watching
// them as "m", and waits until the Sentinels know the replica.
func sentinelSetup(t *testing.T) (master, replica *redistest.Server, sentinels []*redistest.Server) {
	masterAddr := redistest.FreeAddr(t)
	master = redistest.StartArgs(t, masterAddr, redistest.BaseArgs(t, masterAddr)...)
	_, mport, _ := net.SplitHostPort(masterAddr)
	replicaAddr := redistest.FreeAddr(t)
	replica = redistest.StartArgs(t, replicaAddr, append(redistest.BaseArgs(t, replicaAddr), "--replicaof", "127.0.0.1", mport)...)
	waitWithin(t, 10*time.Second, "replica in sync", func() bool {
		info, _ := replica.Do("INFO", "replication")
		return strings.Contains(info, "master_link_status:up")
	})
	for i := 0; i < 3; i++ {
		addr := redistest.FreeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor m 127.0.0.1 %s 2\n"+
			"sentinel down-after-milliseconds m 1000\nsentinel failover-timeout m 5000\n", port, dir, mport)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		sentinels = append(sentinels, redistest.StartArgs(t, addr, conf, "--sentinel", "--loglevel", "warning"))
	}
	waitWithin(t, 15*time.Second, "sentinels know the replica", func() bool {
		for _, s := range sentinels {
			if n, _ := s.Do("SENTINEL", "REPLICAS", "m"); n == "*0" || n == "" {
				return false
			}
		}
		return true
	})
	return master, replica, sentinels
}

// Through SENTINEL FAILOVER, coupon answers continue (fresh or stale, never
// unavailable), writes on the new master show, and the probe passes again.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes seconds")
	}
	master, replica, sentinels := sentinelSetup(t)
	w := newWriter(t, testOptions(master.Addr))
	put(t, w, `{"id":"a","lat":1,"lon":1,"v":1}`)
	o := probeOptions("", 100*time.Millisecond, 500*time.Millisecond)
	o.Addrs = nil
	for _, s := range sentinels {
		o.Addrs = append(o.Addrs, s.Addr)
	}
	o.SentinelMaster = "m"
	s := newStore(t, o)
	if got, _, err := readID(s, "a"); err != nil || got != `{"id":"a","lat":1,"lon":1,"v":1}` {
		t.Fatalf("read through sentinel = %q %v", got, err)
	}
	waitWithin(t, 5*time.Second, "probe through sentinel", s.StreamUp)
	if p := s.Probes(); len(p) != 1 || p[0].Node != "sentinel:m" {
		t.Fatalf("probe nodes %+v", p)
	}

	// Readers run through the failover.
	var reads, failures atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := readID(s, "a"); err != nil {
				failures.Add(1)
				lastErr.Store(err)
			}
			reads.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	var err error
	waitWithin(t, 15*time.Second, "SENTINEL FAILOVER accepted", func() bool {
		_, err = sentinels[0].Do("SENTINEL", "FAILOVER", "m")
		return err == nil
	})
	start := time.Now()
	waitWithin(t, 20*time.Second, "replica promoted", func() bool {
		info, _ := replica.Do("INFO", "replication")
		return strings.Contains(info, "role:master")
	})
	// A coupon writer now writes on the new master.
	newW := newWriter(t, testOptions(replica.Addr))
	put(t, newW, `{"id":"a","lat":1,"lon":1,"v":2}`)
	took := waitValue(t, func() string { v, _, _ := readID(s, "a"); return v }, `{"id":"a","lat":1,"lon":1,"v":2}`, 15*time.Second)
	t.Logf("promoted after %v; write on the new master visible after %v more; %d reads, %d failed", time.Since(start)-took, took, reads.Load(), failures.Load())
	waitWithin(t, 10*time.Second, "probe passes after the failover", s.StreamUp)
	if n := failures.Load(); n != 0 {
		e, _ := lastErr.Load().(error)
		t.Errorf("%d of %d reads failed during the failover (last: %v)", n, reads.Load(), e)
	}
}
