package main

import (
	"strconv"

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
		Resolver:        s.Resolver,
		Upstreams:       make(map[string]proxy.UpstreamOptions, len(c.Upstreams)),
	}
	for _, cidr := range s.TrustedProxies {
		// Validated when the config was loaded.
		if p, err := config.ParsePrefix(cidr); err == nil {
			o.TrustedProxies = append(o.TrustedProxies, p)
		}
	}
	for name, u := range c.Upstreams {
		balance := map[string]proxy.Balance{"least_conn": proxy.LeastConn, "random_two": proxy.RandomTwo, "hash": proxy.Hash}[u.Balance]
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
			ResolveInterval:   u.ResolveInterval.Duration,
			HashKey:           u.HashKey,
			TLS: proxy.TLSOptions{
				ServerName:         u.TLSServerName,
				CAFile:             u.TLSCAFile,
				CertFile:           u.TLSCertFile,
				KeyFile:            u.TLSKeyFile,
				InsecureSkipVerify: u.TLSInsecureSkipVerify,
			},
		}
	}
	for i := range c.Routes {
		o.Routes = append(o.Routes, routeOptions(&c.Routes[i]))
	}
	z := c.Compression
	o.Compression = proxy.CompressionOptions{
		Enabled:    z.Enabled,
		Algorithms: append([]string(nil), z.Algorithms...),
		Types:      append([]string(nil), z.Types...),
		MinBytes:   int(z.MinBytes),
		Level:      z.Level,
	}
	o.UpgradeIdleTimeout = s.UpgradeIdleTimeout.Duration
	o.MaxUpgradedConns = s.MaxUpgradedConns
	return o
}

// routeOptions turns one [[routes]] entry into the proxy's RouteOptions.
func routeOptions(r *config.Route) proxy.RouteOptions {
	ro := proxy.RouteOptions{
		Name:            r.Name,
		Host:            r.Host,
		PathPrefix:      r.PathPrefix,
		PathExact:       r.PathExact,
		PathRegex:       r.PathRegex,
		CaseInsensitive: r.CaseInsensitive,
		RegexStops:      r.RegexStops,
		Internal:        r.Internal,
		Rewrite:         r.Rewrite,
		Match: proxy.MatchOptions{
			Headers: r.Match.Headers,
			Query:   r.Match.Query,
			Cookies: r.Match.Cookies,
		},
		Upstream:              r.Upstream,
		StripPrefix:           r.StripPrefix,
		Timeout:               r.Timeout.Duration,
		Root:                  r.Root,
		TryFiles:              r.TryFiles,
		Index:                 r.Index,
		Expires:               r.Expires.Duration,
		Return:                r.Return,
		Location:              r.Location,
		Body:                  r.Body,
		ContentType:           r.ContentType,
		Methods:               r.Methods,
		BasicAuthFile:         r.BasicAuthFile,
		Realm:                 r.Realm,
		RequestHeaders:        proxy.HeaderOps(r.RequestHeaders),
		ResponseHeaders:       proxy.HeaderOps{Set: r.ResponseHeaders.Set, Add: r.ResponseHeaders.Add, Remove: r.ResponseHeaders.Remove},
		ResponseHeadersAlways: r.ResponseHeaders.Always,
		InterceptErrors:       r.InterceptErrors,
		StreamRequestBody:     !r.BufferRequest,
		WebSocket:             r.WebSocket,
		Compress:              r.Compress,
		NoAccessLog:           !r.AccessLog,
		Cache:                 cacheRouteOptions(r.Cache),
	}
	guardOptions(&ro, r)
	if r.MaxBodyBytes != nil {
		ro.MaxBodyBytes = int64(*r.MaxBodyBytes)
		if ro.MaxBodyBytes == 0 {
			ro.MaxBodyBytes = proxy.Unlimited
		}
	}
	for _, cidr := range r.Match.Clients {
		if p, err := config.ParsePrefix(cidr); err == nil {
			ro.Match.Clients = append(ro.Match.Clients, p)
		}
	}
	for _, rule := range r.Access {
		// Validated when the config was loaded.
		allow, cidr, _ := config.ParseAccessRule(rule)
		ar := proxy.AccessRule{Allow: allow, All: cidr == "all"}
		if !ar.All {
			ar.Prefix, _ = config.ParsePrefix(cidr)
		}
		ro.Access = append(ro.Access, ar)
	}
	if len(r.ErrorPages) > 0 {
		ro.ErrorPages = make(map[int]string, len(r.ErrorPages))
		for code, target := range r.ErrorPages {
			n, _ := strconv.Atoi(code)
			ro.ErrorPages[n] = target
		}
	}
	return ro
}
