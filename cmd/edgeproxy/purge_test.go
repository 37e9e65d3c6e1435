package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
	"github.com/edgeproxy/edgeproxy/respcache"
)

// TestPurgeCommandPublishes: `edgeproxy purge` sends what instances
// subscribe to, on the channel under [redis] key_prefix.
func TestPurgeCommandPublishes(t *testing.T) {
	rs := redistest.Start(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "edge.toml")
	os.WriteFile(path, []byte("[redis]\naddrs = [\""+rs.Addr+"\"]\nkey_prefix = \"shop\"\n"), 0o644)
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	got := make(chan string, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go client.Receive(ctx, client.B().Subscribe().Channel(respcache.Channel("shop")).Build(), func(m rueidis.PubSubMessage) { got <- m.Message })
	// Wait until the subscription is in place.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := client.Do(ctx, client.B().PubsubNumsub().Channel(respcache.Channel("shop")).Build())
		if m, err := out.AsIntMap(); err == nil && m[respcache.Channel("shop")] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var stdout, stderr bytes.Buffer
	if rc := run([]string{"purge", "-config", path, "-prefix", "http://site.example/img/"}, &stdout, &stderr); rc != 0 {
		t.Fatalf("exit %d: %s", rc, stderr.String())
	}
	select {
	case m := <-got:
		if m != "prefix http://site.example/img/" {
			t.Fatalf("message %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no purge message")
	}
	if !strings.Contains(stdout.String(), "published 1 purge") {
		t.Fatalf("stdout %q", stdout.String())
	}
	if rc := run([]string{"purge", "-config", path}, &stdout, &stderr); rc != 2 {
		t.Fatalf("no URL: exit %d", rc)
	}
}
