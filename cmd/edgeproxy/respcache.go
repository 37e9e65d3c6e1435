package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/admin"
	"github.com/edgeproxy/edgeproxy/config"
	"github.com/edgeproxy/edgeproxy/proxy"
	"github.com/edgeproxy/edgeproxy/respcache"
)

func cacheRouteOptions(c config.RouteCache) proxy.CacheOptions {
	return proxy.CacheOptions{
		Enabled:              c.Enabled,
		Key:                  c.Key,
		MaxAge:               c.MaxAge.Duration,
		StaleWhileRevalidate: c.StaleWhileRevalidate.Duration,
		StaleIfError:         c.StaleIfError.Duration,
		Lock:                 c.Lock,
		Bypass:               c.Bypass,
		MaxBody:              int64(c.MaxBody),
		ForwardHeaders:       c.ForwardHeaders,
	}
}

// responseCache is the store of routes' cached answers and, when a route
// caches, the purge subscription through [redis].
type responseCache struct {
	store    *respcache.Store
	maxBytes int64
	client   rueidis.Client
	sub      *respcache.Subscriber
}

func anyRouteCaches(cfg *config.Config) bool {
	for i := range cfg.Routes {
		if cfg.Routes[i].Cache.Enabled {
			return true
		}
	}
	return false
}

// newResponseCache builds the store (nil when the share is 0). Its size
// is fixed at start: a reload that changes [cache] needs a restart.
func newResponseCache(cfg *config.Config) (*responseCache, error) {
	n := cfg.ResponseCacheBytes()
	if n < 1<<20 {
		return nil, nil
	}
	largest := int64(1 << 20)
	for i := range cfg.Routes {
		if rc := cfg.Routes[i].Cache; rc.Enabled {
			largest = max(largest, int64(rc.MaxBody)+64<<10)
		}
	}
	st, err := respcache.New(respcache.Options{MaxBytes: n, MaxEntryBytes: largest})
	if err != nil {
		return nil, err
	}
	return &responseCache{store: st, maxBytes: n}, nil
}

func redisClient(cfg *config.Config, name string) (rueidis.Client, error) {
	r := cfg.Redis
	return rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  r.Addrs,
		Username:     r.Username,
		Password:     r.Password,
		SelectDB:     r.DB,
		Dialer:       net.Dialer{Timeout: r.DialTimeout.Duration, KeepAlive: time.Second},
		DisableCache: true,
		// A lost subscription must end Receive, not be re-made silently:
		// the store is dropped when it is back.
		DisableRetry: true,
		ClientName:   name,
	})
}

// subscribe starts the purge subscription; Redis unreachable now is
// retried in the background (rueidis dials lazily on reconnect).
func (rc *responseCache) subscribe(cfg *config.Config, p respcache.Purger, log *zap.Logger) {
	if rc == nil || !anyRouteCaches(cfg) {
		return
	}
	client, err := redisClient(cfg, "edgeproxy-purge")
	if err != nil {
		log.Warn("response cache purges: redis unreachable at start; retrying", zap.Error(err))
		go rc.subscribeLater(cfg, p, log)
		return
	}
	rc.start(client, cfg, p, log)
}

func (rc *responseCache) subscribeLater(cfg *config.Config, p respcache.Purger, log *zap.Logger) {
	for {
		time.Sleep(time.Second)
		client, err := redisClient(cfg, "edgeproxy-purge")
		if err == nil {
			rc.start(client, cfg, p, log)
			return
		}
	}
}

func (rc *responseCache) start(client rueidis.Client, cfg *config.Config, p respcache.Purger, log *zap.Logger) {
	rc.client = client
	rc.sub = respcache.Subscribe(respcache.PurgeOptions{Client: client, Channel: respcache.Channel(cfg.Redis.KeyPrefix),
		Store: rc.store, Purger: p, Logger: log})
}

func (rc *responseCache) Close() {
	if rc == nil {
		return
	}
	if rc.sub != nil {
		rc.sub.Close()
	}
	if rc.client != nil {
		rc.client.Close()
	}
}

func (rc *responseCache) status() *admin.ResponseCacheStatus {
	if rc == nil {
		return nil
	}
	s := &rc.store.Stats
	st := &admin.ResponseCacheStatus{Entries: rc.store.Len(), Bytes: rc.store.Bytes(), MaxBytes: rc.maxBytes,
		Purges: s.Purges.Load(), PurgedEntries: s.PurgedEntries.Load(), Resyncs: s.Resyncs.Load(), Sets: s.Sets.Load(),
		Rejected: s.Rejected.Load(), Subscription: "off"}
	if sub := rc.sub; sub != nil {
		st.Subscription = "connecting"
		if sub.Live() {
			st.Subscription = "live"
		}
	}
	return st
}

func (rc *responseCache) register(reg *prometheus.Registry) {
	if rc == nil {
		return
	}
	s := &rc.store.Stats
	counter := func(name, help string, f func() uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f()) }))
	}
	counter("edgeproxy_response_cache_purges_total", "Purge messages received from Redis.", s.Purges.Load)
	counter("edgeproxy_response_cache_purged_entries_total", "Entries removed by purges.", s.PurgedEntries.Load)
	counter("edgeproxy_response_cache_resyncs_total", "Whole-cache drops after the purge subscription was (re)established.", s.Resyncs.Load)
	counter("edgeproxy_response_cache_stores_total", "Answers stored.", s.Sets.Load)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeproxy_response_cache_bytes", Help: "Memory the response store holds."},
		func() float64 { return float64(rc.store.Bytes()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeproxy_response_cache_entries", Help: "Entries in the response store."},
		func() float64 { return float64(rc.store.Len()) }))
}

// purgeCommand is `edgeproxy purge [-prefix|-all] -config FILE URL…`.
func purgeCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.toml", "configuration `FILE`")
	prefix := fs.Bool("prefix", false, "purge every cached answer whose key starts with the URL's")
	all := fs.Bool("all", false, "purge every cached answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 && !*all {
		fmt.Fprintln(stderr, "edgeproxy purge: name at least one URL (or -all)")
		return 2
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	client, err := redisClient(cfg, "edgeproxy-purge-cli")
	if err != nil {
		fmt.Fprintf(stderr, "edgeproxy purge: redis: %v\n", err)
		return 1
	}
	defer client.Close()
	var ps []respcache.Purge
	if *all {
		ps = append(ps, respcache.Purge{All: true})
	}
	for _, u := range fs.Args() {
		ps = append(ps, respcache.Purge{URL: u, Prefix: *prefix})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := respcache.Publish(ctx, client, respcache.Channel(cfg.Redis.KeyPrefix), ps); err != nil {
		fmt.Fprintf(stderr, "edgeproxy purge: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "published %d purge(s)\n", len(ps))
	return 0
}

// noStore stands in for the response store where nothing is served (-t).
type noStore struct{}

func (noStore) Get([]byte) ([]byte, bool) { return nil, false }
func (noStore) Set(_, _ []byte)           {}
func (noStore) Delete([]byte)             {}
func (noStore) DeletePrefix([]byte)       {}
func (noStore) Reset()                    {}
