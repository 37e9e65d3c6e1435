package proxy

import (
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Options configure a Server. Fields marked "fixed" are read once at start;
// a reload that changes them is logged and needs a restart.
type Options struct {
	Listen          string        // fixed
	TLSCertFile     string        // fixed
	TLSKeyFile      string        // fixed
	ReadTimeout     time.Duration // fixed
	WriteTimeout    time.Duration // fixed
	IdleTimeout     time.Duration // fixed
	MaxHeaderBytes  int           // fixed
	MaxConns        int           // fixed
	ShutdownTimeout time.Duration
	// ParkIdleAfter is how often idle client connections are swept: one
	// waiting for its next request over two sweeps leaves its goroutine
	// and buffers for the parked set (park.go). Fixed; 0 is
	// DefaultParkIdleAfter, negative never parks.
	ParkIdleAfter time.Duration
	// ParkAtOnceAbove: with more client connections open, an idle one
	// parks at its first read that finds no bytes, without waiting for a
	// sweep. Fixed; 0 is DefaultParkAtOnceAbove, negative parks at once
	// always.
	ParkAtOnceAbove int

	MaxBodyBytes    int64
	BufferBodyBytes int64
	TrustedProxies  []netip.Prefix
	// Resolver is the DNS server ("host:port") asked for upstream host
	// names; "" is the system's.
	Resolver string

	Upstreams map[string]UpstreamOptions
	Routes    []RouteOptions

	Compression CompressionOptions
	// UpgradeIdleTimeout closes tunnels idle this long (default 1h);
	// MaxUpgradedConns caps them (0: no cap).
	UpgradeIdleTimeout time.Duration
	MaxUpgradedConns   int

	// Logger receives application messages; AccessLog one line a request
	// (nil: no access log).
	Logger    *zap.Logger
	AccessLog *AccessLog
	// RateLimiters makes the shared and exact rate limiters (fixed); nil:
	// those modes count locally.
	RateLimiters RateLimiters
	// ResponseCache holds cached answers of routes with cache enabled;
	// nil: such routes are refused. Fixed: a reload keeps the store.
	ResponseCache ResponseStore
	// Metrics records requests; nil records nothing.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultParkIdleAfter: a connection idle for one to two seconds parks.
// Shorter would move connections of clients that pause between requests
// in and out for nothing; nginx's keepalive_timeout is 75 s.
const DefaultParkIdleAfter = time.Second

// DefaultParkAtOnceAbove: up to this many open connections, parking
// waits for a sweep; the goroutines and buffers of that many waiting
// connections are about 25 MiB.
const DefaultParkAtOnceAbove = 1000

// UpstreamOptions configure one upstream group.
type UpstreamOptions struct {
	Servers           []string
	Balance           Balance
	MaxConnsPerServer int
	MaxIdleTime       time.Duration
	ConnectTimeout    time.Duration
	ResponseTimeout   time.Duration
	ConnWaitTimeout   time.Duration
	Retries           int
	// Host is HostPreserve, HostUpstream, or a fixed name.
	Host           string
	MaxFails       int
	FailTimeout    time.Duration
	HealthPath     string
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	// ResolveInterval re-resolves host names this often; every address
	// becomes a server (0: names are resolved at each connect).
	ResolveInterval time.Duration
	// HashKey is the template hashed for balance = Hash (default
	// "$remote_addr").
	HashKey string
	// TLS configures https:// servers.
	TLS TLSOptions
}

// Host modes for UpstreamOptions.Host.
const (
	HostPreserve = "preserve"
	HostUpstream = "upstream"
)

// Balance picks a server for each attempt.
type Balance int

// String is the config spelling.
func (b Balance) String() string {
	switch b {
	case LeastConn:
		return "least_conn"
	case RandomTwo:
		return "random_two"
	case Hash:
		return "hash"
	}
	return "round_robin"
}

const (
	RoundRobin Balance = iota
	LeastConn
	RandomTwo // the lighter of two servers drawn at random
	Hash      // consistent: HashKey's value picks the server
)

// RouteOptions describe one route (SPEC §8): what it matches, the steps
// it runs and what answers: an upstream group, a fixed answer (Return) or
// a handler of its own. The zero value of every step field means "no such
// step", so a route pays only for what it sets.
type RouteOptions struct {
	// Name labels the route in logs and metrics (default host+prefix) and
	// is what "@name" refers to.
	Name string
	Host string
	// PathPrefix is the prefix matched; "" for a route reached only by
	// its name. PathExact (nginx =) and PathRegex (~, ~* with
	// CaseInsensitive) match otherwise; RegexStops is nginx's ^~.
	PathPrefix      string
	PathExact       string
	PathRegex       string
	CaseInsensitive bool
	RegexStops      bool
	Match           MatchOptions
	// Internal routes answer only through error pages, try_files or an
	// upstream's X-Accel-Redirect.
	Internal bool
	// Rewrite is the path sent upstream (a template: $1… from PathRegex);
	// the query is kept.
	Rewrite string

	Upstream    string
	Handler     fasthttp.RequestHandler
	StripPrefix bool
	// Timeout overrides the upstream's ResponseTimeout when positive.
	Timeout time.Duration

	// Return, with Location or Body (templates) and ContentType, answers
	// without an upstream. 444 closes the connection unanswered.
	Return      int
	Location    string
	Body        string
	ContentType string

	// Root serves files from this folder: Root + the request path. Index
	// names a folder's file; TryFiles is nginx's try_files (the last entry
	// a fallback path, "@name" or "=STATUS"); Expires sets max-age.
	Root     string
	TryFiles []string
	Index    []string
	Expires  time.Duration

	// Methods, when set, are the only ones allowed (GET brings HEAD);
	// others get 405 with Allow.
	Methods []string
	// Access rules are tried in order against $remote_addr; the first
	// that matches decides; none matching allows.
	Access []AccessRule
	// BasicAuthFile is an htpasswd file; Realm names it to the client.
	BasicAuthFile string
	Realm         string

	RequestHeaders  HeaderOps
	ResponseHeaders HeaderOps
	// ResponseHeadersAlways applies ResponseHeaders.Set/Add to every
	// status, edgeproxy's own errors included.
	ResponseHeadersAlways bool

	// ErrorPages maps a status to a page file or "@name";
	// InterceptErrors applies them to upstream answers too.
	ErrorPages      map[int]string
	InterceptErrors bool

	// MaxBodyBytes overrides Options.MaxBodyBytes when non-zero;
	// Unlimited lifts the limit.
	MaxBodyBytes int64
	// StreamRequestBody forwards the request body as it arrives, never
	// buffered (proxy_request_buffering off).
	StreamRequestBody bool
	// WebSocket lets Upgrade requests through as tunnels when the
	// upstream answers 101.
	WebSocket bool
	// Compress lets [compression] apply to this route's answers.
	Compress bool
	// NoAccessLog writes no access-log line for this route.
	NoAccessLog bool

	// RateLimit, when set, answers 429 above a rate (SPEC §10).
	RateLimit *RateLimitOptions
	// AuthRequest, when set, asks an auth upstream first (SPEC §10).
	AuthRequest *AuthRequestOptions
	// LimitRate caps each response body at this many bytes per second
	// (nginx limit_rate); 0: no cap.
	LimitRate int64
	// Cache is the route's response cache (SPEC §10).
	Cache CacheOptions
}

// Unlimited as RouteOptions.MaxBodyBytes: no body size limit.
const Unlimited = -1

// AccessRule is one "allow"/"deny" line: All, or Prefix.
type AccessRule struct {
	Allow  bool
	All    bool
	Prefix netip.Prefix
}

// CompressionOptions are the [compression] table.
type CompressionOptions struct {
	Enabled bool
	// Algorithms in order of preference: "zstd", "br", "gzip".
	Algorithms []string
	// Types are media ranges ("text/*", "application/json").
	Types    []string
	MinBytes int
	// Level is "fastest", "default" or "best".
	Level string
}
