package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
)

func (c *Config) validate(p *problems) {
	s := &c.Server
	listenAddr(p, "server.listen", s.Listen)
	positive(p, "server.read_timeout", s.ReadTimeout)
	positive(p, "server.write_timeout", s.WriteTimeout)
	positive(p, "server.idle_timeout", s.IdleTimeout)
	positive(p, "server.shutdown_timeout", s.ShutdownTimeout)
	if s.MaxHeaderBytes < 1024 {
		p.add("server.max_header_bytes", "must be at least 1KiB (got %d)", s.MaxHeaderBytes)
	}
	if s.MaxBodyBytes <= 0 {
		p.add("server.max_body_bytes", "must be positive")
	}
	if s.BufferBodyBytes <= 0 {
		p.add("server.buffer_body_bytes", "must be positive")
	}
	if s.MaxConns <= 0 {
		p.add("server.max_conns", "must be positive (got %d)", s.MaxConns)
	}
	for i, cidr := range s.TrustedProxies {
		if _, err := ParsePrefix(cidr); err != nil {
			p.add("server.trusted_proxies["+strconv.Itoa(i)+"]", "%v", err)
		}
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		p.add("server.tls_cert_file", "tls_cert_file and tls_key_file must be set together")
	}
	if s.PIDFile != "" && (strings.HasSuffix(s.PIDFile, "/") || isDir(s.PIDFile)) {
		p.add("server.pid_file", "must name a file, not a folder (got %q)", s.PIDFile)
	}

	if s.Resolver != "" {
		if err := checkHostPort(s.Resolver); err != nil {
			p.add("server.resolver", "%v", err)
		}
	}
	listenAddr(p, "admin.listen", c.Admin.Listen)
	if c.Admin.Listen != "" && c.Admin.Listen == s.Listen && !strings.HasSuffix(s.Listen, ":0") {
		p.add("admin.listen", "must differ from server.listen (%s): the admin listener is never public", s.Listen)
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "must be one of debug, info, warn, error (got %q)", c.Log.Level)
	}
	if c.Log.AccessLog == "" {
		p.add("log.access_log", `must be "stdout", "stderr", "off" or a file path`)
	}
	if c.Log.AccessLogBuffer < 0 {
		p.add("log.access_log_buffer", "must not be negative")
	}
	positive(p, "log.access_log_flush", c.Log.AccessLogFlush)

	for name, u := range c.Upstreams {
		c.validateUpstream(p, name, u)
	}
	for i := range c.Routes {
		c.validateRoute(p, i, &c.Routes[i])
	}
	if c.Coupon != nil {
		c.validateCoupon(p)
	}
	c.validateRedisAndCache(p)
	c.validateCompression(p)
	c.validateRateLimitExchange(p)
	if s.UpgradeIdleTimeout.Duration <= 0 {
		p.add("server.upgrade_idle_timeout", "must be a positive duration")
	}
	if s.MaxUpgradedConns <= 0 {
		p.add("server.max_upgraded_conns", "must be positive (got %d)", s.MaxUpgradedConns)
	}
}

func (c *Config) validateUpstream(p *problems, name string, u *Upstream) {
	k := "upstreams." + name
	if !validName.MatchString(name) {
		p.add(k, "upstream name must be letters, digits, '-', '_' or '.'")
	}
	if len(u.Servers) == 0 {
		p.add(k+".servers", "needs at least one server")
	}
	seen := map[string]bool{}
	for i, s := range u.Servers {
		key := k + ".servers[" + strconv.Itoa(i) + "]"
		if err := checkServer(s); err != nil {
			p.add(key, "%v", err)
		}
		if seen[s] {
			p.add(key, "server %q is listed twice", s)
		}
		seen[s] = true
	}
	switch u.Balance {
	case "round_robin", "least_conn", "random_two", "hash":
	default:
		p.add(k+".balance", `must be "round_robin", "least_conn", "random_two" or "hash" (got %q)`, u.Balance)
	}
	if u.Balance == "hash" {
		template(p, k+".hash_key", u.HashKey)
	}
	if u.ResolveInterval.Duration < 0 {
		p.add(k+".resolve_interval", "must not be negative (0: resolve at each connect)")
	}
	if (u.TLSCertFile == "") != (u.TLSKeyFile == "") {
		p.add(k+".tls_cert_file", "tls_cert_file and tls_key_file must be set together")
	}
	for _, f := range []struct{ key, path string }{{"tls_ca_file", u.TLSCAFile}, {"tls_cert_file", u.TLSCertFile}, {"tls_key_file", u.TLSKeyFile}} {
		if f.path != "" {
			if _, err := os.Stat(c.abs(f.path)); err != nil {
				p.add(k+"."+f.key, "cannot read %s: %v", f.path, pathCause(err))
			}
		}
	}
	if u.MaxConnsPerServer <= 0 {
		p.add(k+".max_conns_per_server", "must be positive (got %d)", u.MaxConnsPerServer)
	}
	positive(p, k+".max_idle_time", u.MaxIdleTime)
	positive(p, k+".connect_timeout", u.ConnectTimeout)
	positive(p, k+".response_timeout", u.ResponseTimeout)
	positive(p, k+".fail_timeout", u.FailTimeout)
	positive(p, k+".health_interval", u.HealthInterval)
	positive(p, k+".health_timeout", u.HealthTimeout)
	positive(p, k+".conn_wait_timeout", u.ConnWaitTimeout)
	if u.Retries < 0 {
		p.add(k+".retries", "must not be negative (got %d)", u.Retries)
	}
	if u.MaxFails < 0 {
		p.add(k+".max_fails", "must not be negative (0 turns passive health off) (got %d)", u.MaxFails)
	}
	if u.Host == "" {
		p.add(k+".host", `must be "preserve", "upstream" or a host name`)
	} else if u.Host != "preserve" && u.Host != "upstream" && !validHost.MatchString(u.Host) {
		p.add(k+".host", "%q is not a valid host name", u.Host)
	}
	if u.HealthPath != "" && !strings.HasPrefix(u.HealthPath, "/") {
		p.add(k+".health_path", "must start with '/' (got %q)", u.HealthPath)
	}
}

func (c *Config) validateCoupon(p *problems) {
	cp := c.Coupon
	if !strings.HasPrefix(cp.PathPrefix, "/") || strings.HasSuffix(cp.PathPrefix, "/") {
		p.add("coupon.path_prefix", "must start with '/' and not end with one (got %q)", cp.PathPrefix)
	}
	if err := checkRouteHost(cp.Host); err != nil {
		p.add("coupon.host", "%v", err)
	}
	if cp.FallbackUpstream != "" {
		if _, ok := c.Upstreams[cp.FallbackUpstream]; !ok {
			p.add("coupon.fallback_upstream", "names upstream %q, which is not defined in [upstreams]", cp.FallbackUpstream)
		}
	}
	switch cp.Source {
	case "redis":
	case "file":
		if cp.File == "" {
			p.add("coupon.file", `is required when source = "file"`)
		}
	default:
		p.add("coupon.source", `must be "redis" or "file" (got %q)`, cp.Source)
	}
	if cp.GeohashPrecision < 1 || cp.GeohashPrecision > 9 {
		p.add("coupon.geohash_precision", "must be 1..9 (got %d)", cp.GeohashPrecision)
	}
	if cp.MaxRadiusM <= 0 || cp.MaxRadiusM > 1000000 {
		p.add("coupon.max_radius_m", "must be in (0, 1000000] (got %v)", cp.MaxRadiusM)
	}
	if cp.DefaultRadiusM <= 0 || cp.DefaultRadiusM > cp.MaxRadiusM {
		p.add("coupon.default_radius_m", "must be positive and at most max_radius_m (got %v)", cp.DefaultRadiusM)
	}
	if cp.MaxLimit <= 0 || cp.MaxLimit > 10000 {
		p.add("coupon.max_limit", "must be in 1..10000 (got %d)", cp.MaxLimit)
	}
	if cp.DefaultLimit <= 0 || cp.DefaultLimit > cp.MaxLimit {
		p.add("coupon.default_limit", "must be positive and at most max_limit (got %d)", cp.DefaultLimit)
	}
}

func (c *Config) validateRedisAndCache(p *problems) {
	r := &c.Redis
	usesRedis := c.Coupon != nil && c.Coupon.Source == "redis"
	if usesRedis && len(r.Addrs) == 0 {
		p.add("redis.addrs", "needs at least one address")
	}
	for i, a := range r.Addrs {
		if err := checkHostPort(a); err != nil {
			p.add("redis.addrs["+strconv.Itoa(i)+"]", "%v", err)
		}
	}
	if r.DB < 0 {
		p.add("redis.db", "must not be negative")
	}
	if r.KeyPrefix == "" || strings.ContainsAny(r.KeyPrefix, " \t\r\n") {
		p.add("redis.key_prefix", "must be a non-empty name without spaces")
	}
	positive(p, "redis.command_timeout", r.CommandTimeout)
	positive(p, "redis.dial_timeout", r.DialTimeout)
	if strings.ContainsAny(r.SentinelMaster, " \t\r\n") {
		p.add("redis.sentinel_master", "must be a master name without spaces")
	}
	if r.SentinelMaster == "" && r.SentinelUsername != "" {
		p.add("redis.sentinel_username", "needs sentinel_master")
	}
	if r.SentinelMaster == "" && r.SentinelPassword != "" {
		p.add("redis.sentinel_password", "needs sentinel_master")
	}
	if !r.TLS && (r.TLSCAFile != "" || r.TLSServerName != "") {
		p.add("redis.tls", "must be true when tls_ca_file or tls_server_name is set")
	}
	if r.TLSCAFile != "" {
		if _, err := os.Stat(r.TLSCAFile); err != nil {
			p.add("redis.tls_ca_file", "%v", err)
		}
	}

	k := &c.Cache
	if k.MaxBytes < 1<<20 {
		p.add("cache.max_bytes", "must be at least 1MiB (got %d)", k.MaxBytes)
	}
	if k.TTL.Duration < 1e9 {
		p.add("cache.ttl", "must be at least 1s (got %s)", k.TTL.Duration)
	}
	if k.StaleIfError.Duration < 0 {
		p.add("cache.stale_if_error", "must not be negative")
	}
	if k.ProbeInterval.Duration < 0 {
		p.add("cache.probe_interval", "must not be negative (0 turns the probe off)")
	}
	if k.ProbeInterval.Duration > 0 {
		positive(p, "cache.probe_timeout", k.ProbeTimeout)
	}
	if k.OnStreamLoss != "bypass" && k.OnStreamLoss != "serve" {
		p.add("cache.on_stream_loss", `must be "bypass" or "serve" (got %q)`, k.OnStreamLoss)
	}
	positive(p, "cache.degraded_ttl", k.DegradedTTL)
	if !(k.VerifySample >= 0 && k.VerifySample <= 1) {
		p.add("cache.verify_sample", "must be between 0 and 1 (got %v)", k.VerifySample)
	}
	if k.ResponseShare < 0 || k.ResponseShare > 0.9 {
		p.add("cache.response_share", "must be in 0..0.9 (got %g)", k.ResponseShare)
	}
}

var (
	validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	validHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]+)?$`)
)

func positive(p *problems, key string, d Duration) {
	if d.Duration <= 0 {
		p.add(key, "must be a positive duration (got %q)", d.Duration.String())
	}
}

func listenAddr(p *problems, key, addr string) {
	if addr == "" {
		p.add(key, "is required")
		return
	}
	if _, port, err := net.SplitHostPort(addr); err != nil {
		p.add(key, "%q is not host:port", addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(key, "%q has an invalid port", addr)
	}
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("%q has an invalid port", s)
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHost.MatchString(host) {
		return fmt.Errorf("%q has an invalid host", s)
	}
	return nil
}

// checkServer accepts "host:port", "unix:/path", "https://host[:port]"
// and "http://host[:port]".
func checkServer(s string) error {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%q: a unix socket needs an absolute path", s)
		}
		return nil
	}
	rest, scheme := s, ""
	for _, p := range []string{"https://", "http://"} {
		if r, ok := strings.CutPrefix(s, p); ok {
			rest, scheme = strings.TrimSuffix(r, "/"), p
		}
	}
	if scheme != "" && !strings.Contains(strings.TrimPrefix(rest, "["), "]:") && strings.Count(rest, ":") == 0 {
		rest += ":443"
	}
	if strings.Contains(rest, "/") {
		return fmt.Errorf("%q: a server is an address, without a path", s)
	}
	return checkHostPort(rest)
}

func checkRouteHost(h string) error {
	if h == "" {
		return nil
	}
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") || !validHost.MatchString(name) || strings.Contains(name, ":") {
		return fmt.Errorf(`%q is not a host name or "*.domain" wildcard`, h)
	}
	return nil
}

// ParsePrefix accepts a CIDR or a bare address (a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a valid CIDR", s)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a valid CIDR or address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// isDir reports whether path names an existing folder.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
