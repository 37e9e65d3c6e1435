package main

import (
	"github.com/edgeproxy/edgeproxy/config"
	"github.com/edgeproxy/edgeproxy/proxy"
)

// proxyOptions turns the decoded config into the proxy's own options. The
// coupon route, when there is one, is added by the caller.
func proxyOptions(c *config.Config) proxy.Options {
	s := c.Server
	o := proxy.Options{
		Listen:          s.Listen,
		TLSCertFile:     s.TLSCertFile,
		TLSKeyFile:      s.TLSKeyFile,
		ReadTimeout:     s.ReadTimeout.Duration,
		WriteTimeout:    s.WriteTimeout.Duration,
		IdleTimeout:     s.IdleTimeout.Duration,
		MaxHeaderBytes:  int(s.MaxHeaderBytes),
		MaxConns:        s.MaxConns,
		ShutdownTimeout: s.ShutdownTimeout.Duration,
		MaxBodyBytes:    int64(s.MaxBodyBytes),
		BufferBodyBytes: int64(s.BufferBodyBytes),
		Upstreams:       make(map[string]proxy.UpstreamOptions, len(c.Upstreams)),
	}
	for _, cidr := range s.TrustedProxies {
		// Validated when the config was loaded.
		if p, err := config.ParsePrefix(cidr); err == nil {
			o.TrustedProxies = append(o.TrustedProxies, p)
		}
	}
	for name, u := range c.Upstreams {
		balance := proxy.RoundRobin
		if u.Balance == "least_conn" {
			balance = proxy.LeastConn
		}
		o.Upstreams[name] = proxy.UpstreamOptions{
			Servers:           append([]string(nil), u.Servers...),
			Balance:           balance,
			MaxConnsPerServer: u.MaxConnsPerServer,
			MaxIdleTime:       u.MaxIdleTime.Duration,
			ConnectTimeout:    u.ConnectTimeout.Duration,
			ResponseTimeout:   u.ResponseTimeout.Duration,
			ConnWaitTimeout:   u.ConnWaitTimeout.Duration,
			Retries:           u.Retries,
			Host:              u.Host,
			MaxFails:          u.MaxFails,
			FailTimeout:       u.FailTimeout.Duration,
			HealthPath:        u.HealthPath,
			HealthInterval:    u.HealthInterval.Duration,
			HealthTimeout:     u.HealthTimeout.Duration,
		}
	}
	for _, r := range c.Routes {
		o.Routes = append(o.Routes, proxy.RouteOptions{
			Host:        r.Host,
			PathPrefix:  r.PathPrefix,
			Upstream:    r.Upstream,
			StripPrefix: r.StripPrefix,
			Timeout:     r.Timeout.Duration,
		})
	}
	return o
}
