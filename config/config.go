package config

import "time"

// Config is the whole decoded configuration file. It is a plain value: the
// packages that act on it never see it; cmd/ turns it into their Options.
type Config struct {
	// Path is the file the config was read from; relative paths in it are
	// resolved against its folder.
	Path string

	Server    Server
	Admin     Admin
	Log       Log
	Upstreams map[string]*Upstream
	Routes    []Route
	// Coupon is nil when the file has no [coupon] table: no coupon answers.
	Coupon *Coupon
	Redis  Redis
	Cache  Cache
	// Compression is the [compression] table (SPEC §8).
	Compression Compression
	// RateLimit is the [ratelimit] table: how shared and exact rate
	// limits use [redis] (ratelimit.go).
	RateLimit RateLimitExchange

	// Where each upstream and route was written (include.go), so an error
	// names the file and line it comes from.
	upstreamsFrom map[string]*source
	routesFrom    []routeOrigin
}

// Server is the public listener.
type Server struct {
	Listen          string   `toml:"listen"`
	ReadTimeout     Duration `toml:"read_timeout"`
	WriteTimeout    Duration `toml:"write_timeout"`
	IdleTimeout     Duration `toml:"idle_timeout"`
	MaxHeaderBytes  Size     `toml:"max_header_bytes"`
	MaxBodyBytes    Size     `toml:"max_body_bytes"`
	MaxConns        int      `toml:"max_conns"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	TrustedProxies  []string `toml:"trusted_proxies"`
	TLSCertFile     string   `toml:"tls_cert_file"`
	TLSKeyFile      string   `toml:"tls_key_file"`
	// BufferBodyBytes: request bodies up to this size are read whole before
	// forwarding, so an idempotent request can be retried; larger ones stream.
	BufferBodyBytes Size `toml:"buffer_body_bytes"`
	// Resolver is the DNS server ("host:port") for upstream host names;
	// "" is the system's.
	Resolver string `toml:"resolver"`
	// UpgradeIdleTimeout closes a tunnel (WebSocket …) idle this long.
	UpgradeIdleTimeout Duration `toml:"upgrade_idle_timeout"`
	// MaxUpgradedConns caps open tunnels; more upgrades get 503.
	MaxUpgradedConns int `toml:"max_upgraded_conns"`
	// PIDFile, when set, holds the PID of the process serving: written at
	// start, rewritten by the new process after a binary upgrade (SIGUSR2),
	// removed on a normal exit.
	PIDFile string `toml:"pid_file"`
}

// Admin is the operator listener.
type Admin struct {
	Listen string `toml:"listen"`
}

// Log configures the application and access logs.
type Log struct {
	Level           string   `toml:"level"`
	AccessLog       string   `toml:"access_log"`
	AccessLogBuffer Size     `toml:"access_log_buffer"`
	AccessLogFlush  Duration `toml:"access_log_flush"`
}

// Upstream is a named group of servers.
type Upstream struct {
	Servers           []string `toml:"servers"`
	Balance           string   `toml:"balance"`
	MaxConnsPerServer int      `toml:"max_conns_per_server"`
	MaxIdleTime       Duration `toml:"max_idle_time"`
	ConnectTimeout    Duration `toml:"connect_timeout"`
	ResponseTimeout   Duration `toml:"response_timeout"`
	Retries           int      `toml:"retries"`
	Host              string   `toml:"host"`
	MaxFails          int      `toml:"max_fails"`
	FailTimeout       Duration `toml:"fail_timeout"`
	HealthPath        string   `toml:"health_path"`
	HealthInterval    Duration `toml:"health_interval"`
	HealthTimeout     Duration `toml:"health_timeout"`
	// ConnWaitTimeout bounds how long a request waits for a free pooled
	// connection once max_conns_per_server are busy.
	ConnWaitTimeout Duration `toml:"conn_wait_timeout"`
	// ResolveInterval re-resolves host names in servers; every address
	// becomes a server.
	ResolveInterval Duration `toml:"resolve_interval"`
	// HashKey is what balance = "hash" hashes (a template).
	HashKey string `toml:"hash_key"`
	// https:// servers.
	TLSServerName         string `toml:"tls_server_name"`
	TLSCAFile             string `toml:"tls_ca_file"`
	TLSCertFile           string `toml:"tls_cert_file"`
	TLSKeyFile            string `toml:"tls_key_file"`
	TLSInsecureSkipVerify bool   `toml:"tls_insecure_skip_verify"`
}

// Route matches requests and then does one thing: forward to an upstream
// or return a fixed answer (SPEC §8). Its steps (access, auth, headers,
// compression, error pages) are compiled by the proxy when it loads.
type Route struct {
	Host       string `toml:"host"`
	PathPrefix string `toml:"path_prefix"`
	// PathExact matches one path only (location =); PathRegex is RE2
	// (location ~, ~* with CaseInsensitive). RegexStops on a prefix keeps
	// regexes from being tried when it is the longest (location ^~).
	PathExact       string     `toml:"path_exact"`
	PathRegex       string     `toml:"path_regex"`
	RegexStops      bool       `toml:"regex_stops"`
	CaseInsensitive bool       `toml:"case_insensitive"`
	Match           RouteMatch `toml:"match"`
	// Internal routes answer only through error_pages, try_files or an
	// upstream's X-Accel-Redirect.
	Internal bool   `toml:"internal"`
	Rewrite  string `toml:"rewrite"`

	Name        string   `toml:"name"`
	Upstream    string   `toml:"upstream"`
	StripPrefix bool     `toml:"strip_prefix"`
	Timeout     Duration `toml:"timeout"`
	Methods     []string `toml:"methods"`

	// Return answers by itself: a status, with Location for redirects or
	// Body (both may hold variables). 444 closes the connection.
	Return      int    `toml:"return"`
	Location    string `toml:"location"`
	Body        string `toml:"body"`
	ContentType string `toml:"content_type"`

	// Root serves files: root + the request path (nginx root). TryFiles
	// are tried in order; the last is a fallback path, "@name" or "=404".
	Root     string   `toml:"root"`
	TryFiles []string `toml:"try_files"`
	Index    []string `toml:"index"`
	// Expires sets Cache-Control max-age (and Expires) on files.
	Expires Duration `toml:"expires"`

	// MaxBodyBytes overrides server.max_body_bytes; 0 = unlimited.
	MaxBodyBytes  *Size `toml:"max_body_bytes"`
	BufferRequest bool  `toml:"buffer_request"`
	WebSocket     bool  `toml:"websocket"`

	Access        []string `toml:"access"`
	BasicAuthFile string   `toml:"basic_auth_file"`
	Realm         string   `toml:"realm"`

	RequestHeaders  HeaderOps         `toml:"request_headers"`
	ResponseHeaders ResponseHeaderOps `toml:"response_headers"`
	Compress        bool              `toml:"compress"`
	ErrorPages      map[string]string `toml:"error_pages"`
	InterceptErrors bool              `toml:"intercept_errors"`
	AccessLog       bool              `toml:"access_log"`

	// SPEC §10 (ratelimit.go): rate_limit is on when its rate is set,
	// auth_request when its upstream is, auth_cache when its key is.
	RateLimit   RateLimit   `toml:"rate_limit"`
	AuthRequest AuthRequest `toml:"auth_request"`
	AuthCache   AuthCache   `toml:"auth_cache"`
	// LimitRate caps each response body, bytes per second ("1MiB"); "" none.
	LimitRate string     `toml:"limit_rate"`
	Cache     RouteCache `toml:"cache"`
}

// RouteCache is a route's response cache (SPEC §10, nginx proxy_cache).
type RouteCache struct {
	Enabled              bool     `toml:"enabled"`
	Key                  string   `toml:"key"`
	MaxAge               Duration `toml:"max_age"`
	StaleWhileRevalidate Duration `toml:"stale_while_revalidate"`
	StaleIfError         Duration `toml:"stale_if_error"`
	Lock                 bool     `toml:"lock"`
	Bypass               []string `toml:"bypass"`
	MaxBody              Size     `toml:"max_body"`
	ForwardHeaders       []string `toml:"forward_headers"`
}

// RouteMatch narrows a route to requests whose headers, query parameters
// and cookies match these RE2 patterns (absent counts as "") and whose
// client address is in one of Clients. All must hold.
type RouteMatch struct {
	Headers map[string]string `toml:"headers"`
	Query   map[string]string `toml:"query"`
	Cookies map[string]string `toml:"cookies"`
	Clients []string          `toml:"clients"`
}

// Empty reports whether the match has no condition.
func (m RouteMatch) Empty() bool {
	return len(m.Headers) == 0 && len(m.Query) == 0 && len(m.Cookies) == 0 && len(m.Clients) == 0
}

// HeaderOps edit the request sent upstream (proxy_set_header): set
// replaces every field of that name ("" removes it), add appends one,
// remove drops every field of that name.
type HeaderOps struct {
	Set    map[string]string `toml:"set"`
	Add    map[string]string `toml:"add"`
	Remove []string          `toml:"remove"`
}

// ResponseHeaderOps edit the response to the client (add_header,
// proxy_hide_header). Set and Add apply to the statuses nginx's add_header
// applies to, or to every status with Always; Remove always applies.
type ResponseHeaderOps struct {
	Set    map[string]string `toml:"set"`
	Add    map[string]string `toml:"add"`
	Remove []string          `toml:"remove"`
	Always bool              `toml:"always"`
}

// Compression is the [compression] table: which responses are compressed
// and how (SPEC §8).
type Compression struct {
	Enabled    bool     `toml:"enabled"`
	Algorithms []string `toml:"algorithms"`
	Types      []string `toml:"types"`
	MinBytes   Size     `toml:"min_bytes"`
	Level      string   `toml:"level"`
}

// Coupon configures the coupon answers served by edgeproxy itself.
type Coupon struct {
	PathPrefix       string  `toml:"path_prefix"`
	Host             string  `toml:"host"`
	FallbackUpstream string  `toml:"fallback_upstream"`
	Source           string  `toml:"source"`
	File             string  `toml:"file"`
	GeohashPrecision int     `toml:"geohash_precision"`
	DefaultRadiusM   float64 `toml:"default_radius_m"`
	MaxRadiusM       float64 `toml:"max_radius_m"`
	DefaultLimit     int     `toml:"default_limit"`
	MaxLimit         int     `toml:"max_limit"`
}

// Redis is where coupon writers put coupons (SPEC §5).
type Redis struct {
	Addrs          []string `toml:"addrs"`
	Username       string   `toml:"username"`
	Password       string   `toml:"password"`
	DB             int      `toml:"db"`
	KeyPrefix      string   `toml:"key_prefix"`
	CommandTimeout Duration `toml:"command_timeout"`
	DialTimeout    Duration `toml:"dial_timeout"`
	// SentinelMaster, when set, makes Addrs the Sentinels of that master.
	SentinelMaster   string `toml:"sentinel_master"`
	SentinelUsername string `toml:"sentinel_username"`
	SentinelPassword string `toml:"sentinel_password"`
	// TLS to Redis (and to the Sentinels); TLSCAFile "" trusts the system
	// roots; TLSServerName "" checks the name of the address dialled.
	TLS           bool   `toml:"tls"`
	TLSCAFile     string `toml:"tls_ca_file"`
	TLSServerName string `toml:"tls_server_name"`
}

// Cache is the in-process coupon cache.
type Cache struct {
	MaxBytes     Size     `toml:"max_bytes"`
	TTL          Duration `toml:"ttl"`
	StaleIfError Duration `toml:"stale_if_error"`
	// ProbeInterval and ProbeTimeout drive the invalidation probe (SPEC
	// §11); OnStreamLoss ("bypass" or "serve") and DegradedTTL say what
	// happens while it fails.
	ProbeInterval Duration `toml:"probe_interval"`
	ProbeTimeout  Duration `toml:"probe_timeout"`
	OnStreamLoss  string   `toml:"on_stream_loss"`
	DegradedTTL   Duration `toml:"degraded_ttl"`
	// VerifySample is the share of hits re-read in the background.
	VerifySample float64 `toml:"verify_sample"`
	// ResponseShare is the part of MaxBytes given to the response cache
	// of routes (the rest holds coupons).
	ResponseShare float64 `toml:"response_share"`
}

func dur(d time.Duration) Duration { return Duration{d} }

// DefaultServer and the other Default* functions give each table's values
// when a key is left out; config.example.toml documents the same values.
func DefaultServer() Server {
	return Server{
		Listen:          "0.0.0.0:8080",
		ReadTimeout:     dur(10 * time.Second),
		WriteTimeout:    dur(10 * time.Second),
		IdleTimeout:     dur(75 * time.Second),
		MaxHeaderBytes:  16 << 10,
		MaxBodyBytes:    8 << 20,
		MaxConns:        10000,
		ShutdownTimeout: dur(15 * time.Second),
		BufferBodyBytes: 64 << 10,

		UpgradeIdleTimeout: dur(time.Hour),
		MaxUpgradedConns:   10000,
	}
}

func DefaultAdmin() Admin { return Admin{Listen: "127.0.0.1:9901"} }

func DefaultLog() Log {
	return Log{Level: "info", AccessLog: "stdout", AccessLogBuffer: 256 << 10, AccessLogFlush: dur(time.Second)}
}

func DefaultUpstream() Upstream {
	return Upstream{
		Balance:           "round_robin",
		MaxConnsPerServer: 1024,
		MaxIdleTime:       dur(60 * time.Second),
		ConnectTimeout:    dur(time.Second),
		ResponseTimeout:   dur(10 * time.Second),
		Retries:           1,
		Host:              "preserve",
		MaxFails:          3,
		FailTimeout:       dur(10 * time.Second),
		HealthInterval:    dur(5 * time.Second),
		HealthTimeout:     dur(2 * time.Second),
		ConnWaitTimeout:   dur(time.Second),
		ResolveInterval:   dur(30 * time.Second),
		HashKey:           "$remote_addr",
	}
}

func DefaultCoupon() Coupon {
	return Coupon{
		PathPrefix:       "/coupons",
		Source:           "redis",
		GeohashPrecision: 5,
		DefaultRadiusM:   2000,
		MaxRadiusM:       20000,
		DefaultLimit:     20,
		MaxLimit:         100,
	}
}

func DefaultRedis() Redis {
	return Redis{
		Addrs:          []string{"127.0.0.1:6379"},
		KeyPrefix:      "coupon",
		CommandTimeout: dur(200 * time.Millisecond),
		DialTimeout:    dur(500 * time.Millisecond),
	}
}

func DefaultCache() Cache {
	return Cache{MaxBytes: 256 << 20, TTL: dur(10 * time.Minute), StaleIfError: dur(time.Hour),
		ProbeInterval: dur(time.Second), ProbeTimeout: dur(500 * time.Millisecond), OnStreamLoss: "bypass", DegradedTTL: dur(time.Second),
		ResponseShare: 0.25}
}

// DefaultRoute is a route before its table is decoded: the §8 switches
// that are on unless a route turns them off.
func DefaultRoute() Route {
	return Route{
		Index:         []string{"index.html"},
		ContentType:   "text/plain; charset=utf-8",
		BufferRequest: true,
		WebSocket:     true,
		Compress:      true,
		AccessLog:     true,
		RateLimit:     DefaultRateLimit(),
		AuthRequest:   DefaultAuthRequest(),
		AuthCache:     DefaultAuthCache(),
		Cache:         RouteCache{Key: "$scheme$host$request_uri", Lock: true, MaxBody: 1 << 20},
	}
}

func DefaultCompression() Compression {
	return Compression{
		Algorithms: []string{"zstd", "br", "gzip"},
		Types:      []string{"text/*", "application/json", "application/javascript", "image/svg+xml"},
		MinBytes:   1024,
		Level:      "default",
	}
}
