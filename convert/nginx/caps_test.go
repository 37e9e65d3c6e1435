package nginx

import (
	"testing"

	"github.com/edgeproxy/edgeproxy/config"
)

// The probes must be right the other way round too: a probe config.Parse
// accepts today must not be rejected tomorrow for an unrelated reason, so
// each one is checked against the shape every probe shares.
func TestDetectCapsSeesTodaysConfig(t *testing.T) {
	cs, err := DetectCaps()
	if err != nil {
		t.Fatal(err)
	}
	for c := range probes {
		t.Logf("%-40s %v", c, cs[c])
	}
	if len(cs) < len(probes) {
		t.Fatalf("got %d capabilities, want %d", len(cs), len(probes))
	}
}

// Every probe shares a base that today's config accepts; were the base
// wrong, every capability would read as absent for the wrong reason.
func TestProbeBaseIsAccepted(t *testing.T) {
	for _, text := range []string{routeProbe(""), probeUpstream} {
		if _, err := config.Parse("probe.toml", []byte(text)); err != nil {
			t.Fatalf("probe base refused: %v\n%s", err, text)
		}
	}
}
