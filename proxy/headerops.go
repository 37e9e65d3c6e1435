package proxy

import (
	"bytes"
	"sort"

	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// HeaderOps edit headers (SPEC §8 request_headers / response_headers): Set
// replaces every field of a name ("" removes it, as nginx's
// proxy_set_header does), Add appends a field, Remove drops every field of
// a name. Names compare case-insensitively; values may hold variables.
type HeaderOps struct {
	Set    map[string]string
	Add    map[string]string
	Remove []string
}

func (o HeaderOps) empty() bool { return len(o.Set) == 0 && len(o.Add) == 0 && len(o.Remove) == 0 }

// headerEdit is HeaderOps compiled: names as bytes, values as templates,
// in a fixed order (by name) so every request gets the same header order.
type headerEdit struct {
	drop [][]byte   // every name whose incoming fields are not kept: Set and Remove
	set  []headerOp // applied after drop; an empty value only drops
	add  []headerOp
}

type headerOp struct {
	name  []byte
	value *vars.Template
}

func compileHeaderOps(o HeaderOps) (*headerEdit, error) {
	if o.empty() {
		return nil, nil
	}
	e := &headerEdit{}
	ops := func(m map[string]string) ([]headerOp, error) {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		out := make([]headerOp, 0, len(names))
		for _, n := range names {
			t, err := vars.Parse(m[n])
			if err != nil {
				return nil, err
			}
			out = append(out, headerOp{name: []byte(n), value: t})
		}
		return out, nil
	}
	var err error
	if e.set, err = ops(o.Set); err != nil {
		return nil, err
	}
	if e.add, err = ops(o.Add); err != nil {
		return nil, err
	}
	for _, op := range e.set {
		e.drop = append(e.drop, op.name)
	}
	for _, n := range o.Remove {
		e.drop = append(e.drop, []byte(n))
	}
	return e, nil
}

// drops reports whether incoming fields named k are replaced or removed.
func (e *headerEdit) drops(k []byte) bool { return e != nil && containsFold(e.drop, k) }

// setsHost reports whether the edit decides the Host sent upstream.
func (e *headerEdit) setsHost() bool { return e != nil && containsFold(e.drop, hHost) }

// applyRequest edits the request being sent upstream. Fields from the
// client were already left out by drops; what remains to remove are the
// fields the proxy set itself (X-Forwarded-*, X-Request-Id, Host).
func (e *headerEdit) applyRequest(h *fasthttp.RequestHeader, ex *exchange) {
	for _, name := range e.drop {
		if kindOf(name) > kindOther {
			h.DelBytes(canonicalOwn(name))
		}
	}
	for _, op := range e.set {
		ex.scratch = op.value.Append(ex.scratch[:0], ex)
		if len(ex.scratch) == 0 {
			continue
		}
		if kindOf(op.name) == kindHost {
			h.SetBytesKV(hHost, ex.scratch) // a plain field: h is in raw-header mode
			continue
		}
		h.AddBytesKV(op.name, ex.scratch)
	}
	for _, op := range e.add {
		ex.scratch = op.value.Append(ex.scratch[:0], ex)
		h.AddBytesKV(op.name, ex.scratch)
	}
}

// canonicalOwn is the spelling the proxy itself uses for a field it sets.
func canonicalOwn(name []byte) []byte {
	switch kindOf(name) {
	case kindHost:
		return hHost
	case kindXForwardedFor:
		return hXForwardedFor
	case kindXForwardedProto:
		return hXForwardedProto
	case kindXForwardedHost:
		return hXForwardedHost
	case kindXRequestID:
		return hXRequestID
	}
	return name
}

// responseHeadersStep is response_headers: Set and Add for the statuses
// nginx's add_header covers (every status with Always), Remove for all.
type responseHeadersStep struct {
	edit   *headerEdit
	remove [][]byte
	always bool
}

// addHeaderStatuses are the statuses nginx's add_header applies to
// without `always`.
func addHeaderStatus(code int) bool {
	switch code {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		return true
	}
	return false
}

func (r *responseHeadersStep) onResponse(ctx *fasthttp.RequestCtx, ex *exchange) {
	h := &ctx.Response.Header
	for _, name := range r.remove {
		ex.names = delFold(h, name, ex.names)
	}
	if !r.always && !addHeaderStatus(h.StatusCode()) {
		return
	}
	for _, op := range r.edit.set {
		ex.names = delFold(h, op.name, ex.names)
		ex.scratch = op.value.Append(ex.scratch[:0], ex)
		if len(ex.scratch) > 0 {
			h.AddBytesKV(op.name, ex.scratch) // the old fields are gone: no second scan
		}
	}
	for _, op := range r.edit.add {
		ex.scratch = op.value.Append(ex.scratch[:0], ex)
		h.AddBytesKV(op.name, ex.scratch)
	}
}

// delFold deletes every field named name in any case. fasthttp compares
// names byte for byte when normalizing is off, so the spellings present
// are collected first (copied: deleting moves the header's storage).
func delFold(h *fasthttp.ResponseHeader, name []byte, scratch []byte) []byte {
	scratch = scratch[:0]
	var ends [8]int
	n := 0
	for k := range h.All() {
		if bytes.EqualFold(k, name) && n < len(ends) {
			scratch = append(scratch, k...)
			ends[n] = len(scratch)
			n++
		}
	}
	start := 0
	for i := 0; i < n; i++ {
		h.DelBytes(scratch[start:ends[i]])
		start = ends[i]
	}
	return scratch
}

var hHost = []byte("Host")
