package respcache_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
	"github.com/edgeproxy/edgeproxy/proxy"
	"github.com/edgeproxy/edgeproxy/respcache"
)

type instance struct {
	name   string
	base   string
	store  *respcache.Store
	sub    *respcache.Subscriber
	client rueidis.Client
}

func startInstance(t *testing.T, name, redisAddr, upstream string) *instance {
	t.Helper()
	st, err := respcache.New(respcache.Options{MaxBytes: 4 << 20, MaxEntryBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := proxy.New(proxy.Options{
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second,
		MaxHeaderBytes: 16 << 10, MaxConns: 100, ShutdownTimeout: 5 * time.Second,
		MaxBodyBytes: 1 << 20, BufferBodyBytes: 64 << 10, ResponseCache: st,
		Upstreams: map[string]proxy.UpstreamOptions{"up": {Servers: []string{upstream}, MaxConnsPerServer: 16,
			MaxIdleTime: time.Minute, ConnectTimeout: time.Second, ResponseTimeout: 5 * time.Second,
			ConnWaitTimeout: time.Second, Host: proxy.HostPreserve, MaxFails: 3, FailTimeout: time.Second,
			HealthInterval: time.Second, HealthTimeout: time.Second}},
		Routes: []proxy.RouteOptions{{PathPrefix: "/", Upstream: "up", Cache: proxy.CacheOptions{Enabled: true, Lock: true, MaxBody: 1 << 16}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}, DisableCache: true,
		DisableRetry: true, ClientName: name, Dialer: net.Dialer{Timeout: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	sub := respcache.Subscribe(respcache.PurgeOptions{Client: client, Channel: respcache.Channel("test"), Store: st, Purger: s})
	t.Cleanup(sub.Close)
	return &instance{name: name, base: "http://" + ln.Addr().String(), store: st, sub: sub, client: client}
}

func (in *instance) xcache(t *testing.T, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", in.base+path, nil)
	req.Host = "site.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("X-Cache")
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// TestPurgeReachesThreeInstances: a purge published once (as `edgeproxy
// purge` does) empties the entry on every instance within 100 ms; an
// instance whose subscription was cut drops everything when it is back.
func TestPurgeReachesThreeInstances(t *testing.T) {
	rs := redistest.Start(t)
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	defer up.Close()
	upAddr := strings.TrimPrefix(up.URL, "http://")
	var ins []*instance
	for _, n := range []string{"edge-a", "edge-b", "edge-c"} {
		ins = append(ins, startInstance(t, n, rs.Addr, upAddr))
	}
	for _, in := range ins {
		waitFor(t, in.name+" subscribed", 5*time.Second, in.sub.Live)
		for _, p := range []string{"/a", "/img/1", "/img/2", "/keep"} {
			in.xcache(t, p)
			if got := in.xcache(t, p); got != "HIT" {
				t.Fatalf("%s %s: %s", in.name, p, got)
			}
		}
	}
	pub, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	for _, c := range []struct {
		purge respcache.Purge
		gone  []string
	}{
		{respcache.Purge{URL: "http://site.example/a"}, []string{"/a"}},
		{respcache.Purge{URL: "http://site.example/img/", Prefix: true}, []string{"/img/1", "/img/2"}},
	} {
		before := make([]uint64, len(ins))
		for i, in := range ins {
			before[i] = in.store.Stats.Purges.Load()
		}
		if err := respcache.Publish(context.Background(), pub, respcache.Channel("test"), []respcache.Purge{c.purge}); err != nil {
			t.Fatal(err)
		}
		for i, in := range ins {
			took := waitFor(t, in.name+" purged", 100*time.Millisecond, func() bool { return in.store.Stats.Purges.Load() > before[i] })
			t.Logf("%s applied purge of %s after %s", in.name, c.purge.URL, took)
			for _, p := range c.gone {
				if got := in.xcache(t, p); got != "MISS" {
					t.Fatalf("%s %s after purge: %s", in.name, p, got)
				}
			}
			if got := in.xcache(t, "/keep"); got != "HIT" {
				t.Fatalf("%s /keep: %s", in.name, got)
			}
		}
	}

	// Cut edge-c's subscription: it cannot know what was published
	// meanwhile, so when it is back it holds nothing from before.
	c := ins[2]
	resyncs := c.store.Stats.Resyncs.Load()
	killByName(t, rs, "edge-c")
	waitFor(t, "edge-c resubscribed and dropped its entries", 5*time.Second, func() bool {
		return c.store.Stats.Resyncs.Load() > resyncs && c.sub.Live()
	})
	if got := c.xcache(t, "/keep"); got != "MISS" {
		t.Fatalf("edge-c kept an entry across a lost subscription: %s", got)
	}
	if got := ins[0].xcache(t, "/keep"); got != "HIT" {
		t.Fatalf("edge-a lost its entry: %s", got)
	}
}

// killByName closes the Redis connections of the client named name.
func killByName(t *testing.T, rs *redistest.Server, name string) {
	t.Helper()
	// CLIENT LIST is a bulk string: one line per connection.
	out, err := rs.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if _, err := rs.Do("CLIENT", "KILL", "ID", id); err == nil {
					killed++
				}
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no connection named %s in\n%s", name, out)
	}
}
