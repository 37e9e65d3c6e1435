package proxy

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// lookupWith resolves host names through the DNS server at resolver
// ("host:port"), or the system's when it is "".
func lookupWith(resolver string) func(context.Context, string) ([]netip.Addr, error) {
	r := net.DefaultResolver
	if resolver != "" {
		r = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				d := net.Dialer{Timeout: 2 * time.Second}
				return d.DialContext(ctx, network, resolver)
			},
		}
	}
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		return r.LookupNetIP(ctx, "ip", host)
	}
}
