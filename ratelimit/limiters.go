package ratelimit

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// Options configure Limiters; cmd/edgeproxy fills them from [redis] and
// [ratelimit].
type Options struct {
	Addrs          []string
	Username       string
	Password       string
	DB             int
	DialTimeout    time.Duration
	CommandTimeout time.Duration // exact mode's wait on Redis, and each sync batch
	SyncInterval   time.Duration // shared mode's exchange period
	KeyPrefix      string
	Logger         *zap.Logger
}

// Limiters makes shared and exact limiters over one Redis client. It is
// safe for concurrent use; Close stops the exchanges and the client.
type Limiters struct {
	o      Options
	log    *zap.Logger
	client atomic.Pointer[rueidis.Client] // nil until connected
	start  sync.Once                      // connects on the first limiter made

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ proxy.RateLimiters = (*Limiters)(nil)

// New makes Limiters; Redis is dialled when the first limiter is made, so
// a config without shared or exact limits never connects. When Redis is
// unreachable the limiters still work (locally, counted as fallbacks)
// and connecting goes on in the background.
func New(o Options) *Limiters {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 100 * time.Millisecond
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 200 * time.Millisecond
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Limiters{o: o, log: o.Logger, ctx: ctx, cancel: cancel}
}

func (l *Limiters) dial() {
	if c, err := l.connect(); err == nil {
		l.client.Store(&c)
	} else {
		l.log.Warn("redis unreachable for rate limits; deciding locally until it answers", zap.Error(err))
		l.wg.Add(1)
		go l.reconnect()
	}
}

func (l *Limiters) connect() (rueidis.Client, error) {
	return rueidis.NewClient(rueidis.ClientOption{
		InitAddress:      l.o.Addrs,
		Username:         l.o.Username,
		Password:         l.o.Password,
		SelectDB:         l.o.DB,
		Dialer:           net.Dialer{Timeout: l.o.DialTimeout, KeepAlive: time.Second},
		ConnWriteTimeout: 3 * time.Second,
		DisableRetry:     true, // a failure falls back at once
		DisableCache:     true,
		ClientName:       "edgeproxy-ratelimit",
	})
}

func (l *Limiters) reconnect() {
	defer l.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		if c, err := l.connect(); err == nil {
			l.client.Store(&c)
			l.log.Info("redis connected for rate limits")
			return
		}
	}
}

func (l *Limiters) redis() rueidis.Client {
	if c := l.client.Load(); c != nil {
		return *c
	}
	return nil
}

// Close stops every limiter's exchange and closes the client.
func (l *Limiters) Close() {
	l.start.Do(func() {}) // no dial after Close
	l.cancel()
	l.wg.Wait()
	if c := l.redis(); c != nil {
		c.Close()
	}
}

// NewRateLimiter implements proxy.RateLimiters.
func (l *Limiters) NewRateLimiter(route string, o proxy.RateLimitOptions) (proxy.RateLimiter, error) {
	l.start.Do(l.dial)
	prefix := l.o.KeyPrefix + route + ":" + strconv.Itoa(o.Count) + "/" + o.Period.String() + ":"
	switch o.Mode {
	case "shared":
		s := newShared(l, prefix, o)
		l.wg.Add(1)
		go s.run()
		return s, nil
	case "exact":
		return newExact(l, prefix, o), nil
	}
	return nil, errors.New("ratelimit: mode " + strconv.Quote(o.Mode) + " is not a Redis mode")
}
