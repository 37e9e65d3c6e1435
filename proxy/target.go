package proxy

import (
	"unsafe"

	"github.com/valyala/fasthttp"
)

// upstreamHostRule decides the Host sent upstream (SPEC §3 upstream host,
// §8 request_headers): request_headers decides when it names Host;
// "preserve" keeps the client's field; "upstream" names the server per
// attempt (the value is set then); a fixed name replaces the value.
func upstreamHostRule(edit *headerEdit, up *upstream) (hostRule, []byte) {
	switch {
	case edit.setsHost():
		return hostDrop, nil
	case up.opts.Host == HostPreserve:
		return hostClient, nil
	case up.opts.Host == HostUpstream:
		return hostValue, nil
	}
	return hostValue, bytesOf(up.opts.Host)
}

// uriHostPlaceholder fills the parsed URI's host when out carries no field
// named exactly "Host": fasthttp refuses to write a request without either,
// and in raw-header mode it writes neither the URI's host nor its own.
var uriHostPlaceholder = []byte("upstream")

// setUpstreamTarget makes target the request-target out is written with,
// byte for byte. HostClient parses the URI of every request it sends and
// Request.Write then re-serialises it from the parse, which drops an empty
// query ("/a?") and a fragment; a target that would lose bytes is kept
// whole in the URI's original path, which is written as it is
// (HostClient.DisablePathNormalizing). The parse is the one HostClient
// would do, so an ordinary target costs nothing extra.
func setUpstreamTarget(out *fasthttp.Request, target []byte) {
	out.SetRequestURIBytes(target)
	u := out.URI()
	if len(u.Host()) == 0 {
		u.SetHostBytes(uriHostPlaceholder)
	}
	n := len(u.PathOriginal())
	if q := len(u.QueryString()); q > 0 {
		n += 1 + q
	}
	if n != len(target) {
		u.SetPathBytes(target)
		u.SetQueryStringBytes(nil)
	}
}

// bytesOf views s as bytes, for fasthttp setters that copy what they get.
// The bytes must not be written to.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
