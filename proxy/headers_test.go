package proxy

import (
	"strings"
	"testing"
)

func TestKindOfNamesEveryFieldTheProxyHandles(t *testing.T) {
	want := map[string]headerKind{
		"Connection": kindConnection, "Keep-Alive": kindHopByHop, "Proxy-Connection": kindHopByHop,
		"TE": kindHopByHop, "Trailer": kindHopByHop, "Transfer-Encoding": kindHopByHop, "Upgrade": kindHopByHop,
		"Proxy-Authenticate": kindHopByHop, "Proxy-Authorization": kindHopByHop,
		"Host": kindHost, "Content-Length": kindContentLength, "Expect": kindExpect,
		"X-Forwarded-For": kindXForwardedFor, "X-Forwarded-Proto": kindXForwardedProto,
		"X-Forwarded-Host": kindXForwardedHost, "X-Request-Id": kindXRequestID,
		// Same lengths as the names above, or near them: none of them.
		"Te": kindHopByHop, "TX": kindOther, "Hosts": kindOther, "Hos": kindOther, "Accept": kindOther,
		"Referer": kindOther, "Connectio": kindOther, "Keep-Alivf": kindOther, "Content-Type": kindOther,
		"X-Forwarded-Fox": kindOther, "X-Forwarded-Hosts": kindOther, "Authorization": kindOther, "": kindOther,
	}
	for name, kind := range want {
		for _, n := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if got := kindOf([]byte(n)); got != kind {
				t.Errorf("kindOf(%q) = %d, want %d", n, got, kind)
			}
		}
	}
	if !isHopByHop([]byte("connection")) || isHopByHop([]byte("Host")) {
		t.Errorf("isHopByHop disagrees with kindOf")
	}
}
