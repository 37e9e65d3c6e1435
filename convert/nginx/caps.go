package nginx

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/edgeproxy/edgeproxy/config"
)

// Capability is a config key (or key and value) a translation needs. It
// is present when config.Parse accepts a small file that uses it: the
// converter asks the config package what it accepts today instead of
// keeping its own list, so a directive flips from blocking to carried the
// day its key lands in config/.
type Capability string

// The keys of SPEC §8–§10 the converter can emit.
const (
	CapRequestHeaders  Capability = "routes.request_headers"
	CapResponseHeaders Capability = "routes.response_headers"
	CapReturn          Capability = "routes.return"
	CapReturn444       Capability = "routes.return = 444"
	CapMethods         Capability = "routes.methods"
	CapAccess          Capability = "routes.access"
	CapBasicAuth       Capability = "routes.basic_auth_file"
	CapErrorPages      Capability = "routes.error_pages"
	CapInterceptErrors Capability = "routes.intercept_errors"
	CapRouteMaxBody    Capability = "routes.max_body_bytes"
	CapBufferRequest   Capability = "routes.buffer_request"
	CapWebsocket       Capability = "routes.websocket"
	CapCompress        Capability = "compression"
	CapRouteAccessLog  Capability = "routes.access_log"
	CapPathExact       Capability = "routes.path_exact"
	CapPathRegex       Capability = "routes.path_regex"
	CapRegexStops      Capability = "routes.regex_stops"
	CapRewrite         Capability = "routes.rewrite"
	CapRoot            Capability = "routes.root"
	CapTryFiles        Capability = "routes.try_files"
	CapExpires         Capability = "routes.expires"
	CapNamed           Capability = "routes.name"
	CapMatch           Capability = "routes.match"
	CapInternal        Capability = "routes.internal"
	CapHash            Capability = `upstreams.balance = "hash"`
	CapRandomTwo       Capability = `upstreams.balance = "random_two"`
	CapUnixServer      Capability = "upstreams.servers unix:"
	CapHTTPSServer     Capability = "upstreams.servers https://"
	CapResolver        Capability = "server.resolver"
	CapCache           Capability = "routes.cache"
	CapRateLimit       Capability = "routes.rate_limit"
	CapAuthRequest     Capability = "routes.auth_request"
	CapLimitRate       Capability = "routes.limit_rate"
)

const probeUpstream = "[upstreams.u]\nservers = [\"127.0.0.1:9\"]\n"

func routeProbe(keys string) string {
	return probeUpstream + "[[routes]]\npath_prefix = \"/\"\nupstream = \"u\"\n" + keys + "\n"
}

func bareRouteProbe(keys string) string {
	return probeUpstream + "[[routes]]\n" + keys + "\n"
}

// probes is a file per capability that config.Parse accepts only when the
// capability's key is there. Relative paths name files probeDir makes.
var probes = map[Capability]string{
	CapRequestHeaders:  routeProbe(`request_headers = { set = { "X-A" = "$remote_addr" }, add = {}, remove = ["X-B"] }`),
	CapResponseHeaders: routeProbe(`response_headers = { set = { "X-A" = "1" }, add = {}, remove = ["X-B"], always = true }`),
	CapReturn:          bareRouteProbe("path_prefix = \"/\"\nreturn = 301\nlocation = \"https://$host$request_uri\""),
	CapReturn444:       bareRouteProbe("path_prefix = \"/\"\nreturn = 444"),
	CapMethods:         routeProbe(`methods = ["GET"]`),
	CapAccess:          routeProbe(`access = ["allow 10.0.0.0/8", "deny all"]`),
	CapBasicAuth:       routeProbe("basic_auth_file = \"htpasswd\"\nrealm = \"r\""),
	CapErrorPages:      routeProbe(`error_pages = { "502" = "errors/502.html" }`),
	CapInterceptErrors: routeProbe("error_pages = { \"502\" = \"errors/502.html\" }\nintercept_errors = true"),
	CapRouteMaxBody:    routeProbe(`max_body_bytes = "0"`),
	CapBufferRequest:   routeProbe(`buffer_request = false`),
	CapWebsocket:       routeProbe(`websocket = false`),
	CapCompress: routeProbe("compress = true") + "[compression]\nenabled = true\nalgorithms = [\"gzip\"]\n" +
		"types = [\"text/html\"]\nmin_bytes = 20\nlevel = \"default\"\n",
	CapRouteAccessLog: routeProbe(`access_log = false`),
	CapPathExact:      bareRouteProbe("path_exact = \"/x\"\nupstream = \"u\""),
	CapPathRegex:      bareRouteProbe("path_regex = \"^/a/(.*)$\"\ncase_insensitive = true\nupstream = \"u\""),
	CapRegexStops:     routeProbe(`regex_stops = true`),
	CapRewrite:        bareRouteProbe("path_regex = \"^/a/(.*)$\"\nupstream = \"u\"\nrewrite = \"/b/$1\""),
	CapRoot:           bareRouteProbe("path_prefix = \"/\"\nroot = \"www\"\nindex = [\"index.html\"]"),
	CapTryFiles:       bareRouteProbe("path_prefix = \"/\"\nroot = \"www\"\ntry_files = [\"$uri\", \"/index.html\"]"),
	CapExpires:        bareRouteProbe("path_prefix = \"/\"\nroot = \"www\"\nexpires = \"1h\""),
	CapNamed:          routeProbe(`name = "app"`),
	CapMatch:          routeProbe(`match = { headers = { "X-A" = "^b$" }, query = {}, cookies = {}, clients = [] }`),
	CapInternal:       routeProbe(`internal = true`),
	CapHash:           "[upstreams.u]\nservers = [\"127.0.0.1:9\"]\nbalance = \"hash\"\nhash_key = \"$remote_addr\"\n",
	CapRandomTwo:      "[upstreams.u]\nservers = [\"127.0.0.1:9\"]\nbalance = \"random_two\"\n",
	CapUnixServer:     "[upstreams.u]\nservers = [\"unix:/run/app.sock\"]\n",
	CapHTTPSServer:    "[upstreams.u]\nservers = [\"https://api.internal\"]\n",
	CapResolver:       "[server]\nresolver = \"127.0.0.1:53\"\n",
	CapCache:          routeProbe(`cache = { enabled = true, max_age = "1s" }`),
	CapRateLimit:      routeProbe(`rate_limit = { key = "$remote_addr", rate = "10/s", burst = 20, mode = "local" }`),
	CapAuthRequest:    routeProbe(`auth_request = { upstream = "u", path = "/verify", copy_headers = [] }`),
	CapLimitRate:      routeProbe(`limit_rate = "1MiB"`),
}

// unfinished are capabilities the config package accepts before the proxy
// acts on them (placeholder steps). One line each: delete the line when the
// step lands, and the differential test starts comparing the feature with
// nginx.
var unfinished = map[Capability]string{
	// Empty since compression and basic auth landed in the proxy; add a
	// line here when config accepts a key before the proxy acts on it.
}

// acceptedOnly marks, in Caps, a capability config accepts but the proxy
// does not act on yet.
func acceptedOnly(c Capability) Capability { return c + " (accepted only)" }

// Accepts reports whether config accepts c's key, whether or not the proxy
// acts on it yet: a key that only switches something off (websocket = false)
// is written as soon as config accepts it.
func (cs Caps) Accepts(c Capability) bool { return cs[c] || cs[acceptedOnly(c)] }

// Caps is the set of capabilities present.
type Caps map[Capability]bool

// Has reports whether every c is present.
func (cs Caps) Has(c ...Capability) bool {
	for _, x := range c {
		if !cs[x] {
			return false
		}
	}
	return true
}

// Missing lists the capabilities of c that are absent, sorted.
func (cs Caps) Missing(c ...Capability) []string {
	var out []string
	for _, x := range c {
		if !cs[x] {
			out = append(out, string(x))
		}
	}
	sort.Strings(out)
	return out
}

// AllCaps is every capability: what the converter will emit once config
// accepts all of SPEC §8–§10 (tests of the translations use it).
func AllCaps() Caps {
	cs := Caps{}
	for c := range probes {
		cs[c] = true
	}
	return cs
}

// DetectCaps asks the config package which capabilities it accepts.
func DetectCaps() (Caps, error) {
	dir, err := os.MkdirTemp("", "edgeproxy-probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("u:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n"), 0o600); err != nil {
		return nil, err
	}
	for _, sub := range []string{"www", "errors"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "errors", "502.html"), []byte("502\n"), 0o644); err != nil {
		return nil, err
	}
	cs := Caps{}
	for c, text := range probes {
		_, err := config.Parse(filepath.Join(dir, "probe.toml"), []byte(text))
		_, pending := unfinished[c]
		cs[c] = err == nil && !pending
		if err == nil && pending {
			cs[acceptedOnly(c)] = true
		}
	}
	return cs, nil
}
