package config

import (
	"strings"
	"testing"
	"time"
)

func TestStoreAtScaleKeys(t *testing.T) {
	cfg, err := Parse("f.toml", []byte("[cache]\nttl = \"10m\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Cache
	if k.ProbeInterval.Duration != time.Second || k.ProbeTimeout.Duration != 500*time.Millisecond ||
		k.OnStreamLoss != "bypass" || k.DegradedTTL.Duration != time.Second || k.VerifySample != 0 {
		t.Errorf("SPEC §11 defaults: %+v", k)
	}
	if cfg.Redis.TLS || cfg.Redis.SentinelMaster != "" {
		t.Errorf("redis defaults: %+v", cfg.Redis)
	}
	for _, tt := range []struct{ toml, want string }{
		{"[cache]\non_stream_loss = \"ignore\"\n", `f.toml:2:1: cache.on_stream_loss: must be "bypass" or "serve"`},
		{"[cache]\nverify_sample = 1.5\n", "f.toml:2:1: cache.verify_sample: must be between 0 and 1"},
		{"[cache]\nprobe_interval = \"-1s\"\n", "f.toml:2:1: cache.probe_interval: must not be negative"},
		{"[cache]\nprobe_timeout = \"0s\"\n", "f.toml:2:1: cache.probe_timeout: must be a positive duration"},
		{"[cache]\ndegraded_ttl = \"0s\"\n", "f.toml:2:1: cache.degraded_ttl: must be a positive duration"},
		{"[redis]\ntls_ca_file = \"ca.pem\"\n", "redis.tls: must be true when tls_ca_file or tls_server_name is set"},
		{"[redis]\ntls = true\ntls_ca_file = \"/nonexistent/ca.pem\"\n", "f.toml:3:1: redis.tls_ca_file:"},
		{"[redis]\nsentinel_password = \"x\"\n", "f.toml:2:1: redis.sentinel_password: needs sentinel_master"},
	} {
		_, err := Parse("f.toml", []byte(tt.toml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.toml, err, tt.want)
		}
	}
	// probe_interval 0 turns the probe off; its timeout is then not checked.
	if _, err := Parse("f.toml", []byte("[cache]\nprobe_interval = \"0s\"\nprobe_timeout = \"0s\"\n")); err != nil {
		t.Errorf("probe off: %v", err)
	}
}
