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

	MaxBodyBytes    int64
	BufferBodyBytes int64
	TrustedProxies  []netip.Prefix

	Upstreams map[string]UpstreamOptions
	Routes    []RouteOptions

	// Logger receives application messages; AccessLog one line a request
	// (nil: no access log).
	Logger    *zap.Logger
	AccessLog *AccessLog
	// Metrics records requests; nil records nothing.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

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
}

// Host modes for UpstreamOptions.Host.
const (
	HostPreserve = "preserve"
	HostUpstream = "upstream"
)

// Balance picks a server for each attempt.
type Balance int

const (
	RoundRobin Balance = iota
	LeastConn
)

// RouteOptions send a host and path prefix either to an upstream group or
// to a handler of the route's own.
type RouteOptions struct {
	// Name labels the route in logs and metrics; default host+prefix.
	Name        string
	Host        string
	PathPrefix  string
	Upstream    string
	Handler     fasthttp.RequestHandler
	StripPrefix bool
	// Timeout overrides the upstream's ResponseTimeout when positive.
	Timeout time.Duration
}
