package respcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// A purge message on the channel is one line: "url URL", "prefix URL" or
// "all". "hello TOKEN" is an instance confirming its own subscription.
const (
	msgURL    = "url "
	msgPrefix = "prefix "
	msgAll    = "all"
	msgHello  = "hello "
)

// Purge is one purge request.
type Purge struct {
	URL    string
	Prefix bool // every key the URL's key starts with
	All    bool
}

// Purger is what a received purge is applied to: the proxy maps a URL to
// its routes' cache keys (proxy.Server.PurgeResponses).
type Purger interface {
	PurgeResponses(url string, prefix, all bool)
}

// PurgeOptions configure the subscription.
type PurgeOptions struct {
	Client  rueidis.Client
	Channel string // "{key_prefix}:respcache:purge"
	Store   *Store
	Purger  Purger
	Logger  *zap.Logger
}

// Channel is the pub/sub channel of a key prefix.
func Channel(keyPrefix string) string { return keyPrefix + ":respcache:purge" }

// Subscriber keeps one subscription to the purge channel. Whenever the
// subscription is (re)established it drops the whole store once it has
// proven the new subscription live: purges published while it was away
// are lost, so nothing stored before cannot be proven fresh (a lost stream
// is never silent). The first subscription counts too: entries stored
// before it could have missed a purge.
type Subscriber struct {
	o      PurgeOptions
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	live   atomic.Bool
}

// Subscribe starts the subscription loop; Close stops it.
func Subscribe(o PurgeOptions) *Subscriber {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscriber{o: o, ctx: ctx, cancel: cancel}
	s.wg.Add(1)
	go s.run()
	return s
}

// Live reports whether the subscription is established and confirmed.
func (s *Subscriber) Live() bool { return s.live.Load() }

// Close stops the subscription.
func (s *Subscriber) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Subscriber) run() {
	defer s.wg.Done()
	backoff := 50 * time.Millisecond
	for s.ctx.Err() == nil {
		err := s.session()
		s.live.Store(false)
		if s.ctx.Err() != nil {
			return
		}
		s.o.Logger.Warn("response cache purge subscription lost; the cache is dropped when it is back", zap.Error(err))
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// session subscribes once and runs until the subscription ends.
func (s *Subscriber) session() error {
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	hello := msgHello + hex.EncodeToString(tok[:])
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	c := s.o.Client
	done := make(chan error, 1)
	go func() {
		done <- c.Receive(ctx, c.B().Subscribe().Channel(s.o.Channel).Build(), func(m rueidis.PubSubMessage) {
			s.handle(m.Message, hello)
		})
	}()
	// The subscription is proven live when this instance hears its own
	// hello; until then nothing is dropped, so the drop happens after
	// every purge it could have missed.
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		if !s.live.Load() {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			_ = c.Do(pctx, c.B().Publish().Channel(s.o.Channel).Message(hello).Build()).Error()
			pcancel()
		}
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("unsubscribed")
			}
			return err
		case <-t.C:
		}
	}
}

func (s *Subscriber) handle(msg, hello string) {
	switch {
	case msg == hello:
		if !s.live.Load() {
			s.o.Store.Reset()
			s.live.Store(true)
			s.o.Logger.Info("response cache purge subscription live")
		}
	case strings.HasPrefix(msg, msgHello):
	case strings.HasPrefix(msg, msgURL):
		s.o.Store.Stats.Purges.Add(1)
		s.o.Purger.PurgeResponses(msg[len(msgURL):], false, false)
	case strings.HasPrefix(msg, msgPrefix):
		s.o.Store.Stats.Purges.Add(1)
		s.o.Purger.PurgeResponses(msg[len(msgPrefix):], true, false)
	case msg == msgAll:
		s.o.Store.Stats.Purges.Add(1)
		s.o.Purger.PurgeResponses("", false, true)
	}
}

// Publish sends purges to every instance subscribed to channel.
func Publish(ctx context.Context, c rueidis.Client, channel string, ps []Purge) error {
	for _, p := range ps {
		var msg string
		switch {
		case p.All:
			msg = msgAll
		case p.Prefix:
			msg = msgPrefix + p.URL
		default:
			msg = msgURL + p.URL
		}
		if err := c.Do(ctx, c.B().Publish().Channel(channel).Message(msg).Build()).Error(); err != nil {
			return fmt.Errorf("publishing purge of %s: %w", p.URL, err)
		}
	}
	return nil
}
