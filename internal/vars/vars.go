// Package vars compiles the nginx-style variables of SPEC §8 ($host,
// $http_x_real_ip, $1 …) in header values, locations, bodies and rewrites
// into a template once, when the config loads. A request evaluates a
// template by appending to a buffer it owns, through a Source that knows
// the request: no parsing and no allocation per request.
//
// The package is a leaf: config uses it to reject unknown variables with
// their key and line, proxy to evaluate them.
package vars

import (
	"fmt"
	"strings"
)

// Kind names what a variable reads.
type Kind uint8

const (
	RemoteAddr     Kind = iota + 1 // client address after trusted_proxies
	Host                           // Host name, lower case, without port
	Scheme                         // http or https
	RequestURI                     // the request target as received
	URI                            // the path (after rewrite, if any)
	Args                           // the query without '?'
	RequestMethod                  // GET, POST …
	RequestID                      // the X-Request-Id sent upstream
	ServerPort                     // the port the request arrived on
	HTTP                           // $http_NAME: a request header
	Cookie                         // $cookie_NAME
	Arg                            // $arg_NAME: a query parameter
	UpstreamAddr                   // the server that answered
	UpstreamStatus                 // its status (response side)
	Capture                        // $1 … $9 from path_regex
)

// Var is one variable reference. Name is the header name (dashes for
// underscores, as nginx maps $http_x_real_ip to X-Real-IP), the cookie
// or the query parameter; Index is the capture number.
type Var struct {
	Kind  Kind
	Name  []byte
	Index int
}

var simple = map[string]Kind{
	"remote_addr":     RemoteAddr,
	"host":            Host,
	"scheme":          Scheme,
	"request_uri":     RequestURI,
	"uri":             URI,
	"document_uri":    URI,
	"args":            Args,
	"query_string":    Args,
	"request_method":  RequestMethod,
	"request_id":      RequestID,
	"server_port":     ServerPort,
	"upstream_addr":   UpstreamAddr,
	"upstream_status": UpstreamStatus,
}

// Source evaluates variables for one request.
type Source interface {
	AppendVar(dst []byte, v *Var) []byte
}

// Template is a compiled string: literal parts and variables. The zero
// value is the empty string. It is immutable and safe for concurrent use.
type Template struct {
	raw   string
	parts []part
}

type part struct {
	lit []byte
	v   *Var // nil: lit only
}

// Parse compiles s. `$name` and `${name}` are variables; a `$` not
// followed by a name is kept as it is (nginx does the same for a trailing
// `$`, and regexes in rewrite targets never reach here). An unknown
// variable is an error that names it.
func Parse(s string) (*Template, error) {
	t := &Template{raw: s}
	var lit []byte
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit = append(lit, c)
			i++
			continue
		}
		name, next, braced := scanName(s, i+1)
		if name == "" {
			if braced {
				return nil, fmt.Errorf("unterminated ${ in %q", s)
			}
			lit = append(lit, c)
			i++
			continue
		}
		v, err := lookup(name)
		if err != nil {
			return nil, err
		}
		t.parts = append(t.parts, part{lit: lit, v: v})
		lit = nil
		i = next
	}
	if len(lit) > 0 || len(t.parts) == 0 {
		t.parts = append(t.parts, part{lit: lit})
	}
	return t, nil
}

// MustParse is Parse for templates known to be valid.
func MustParse(s string) *Template {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return t
}

// scanName reads a variable name at s[i:]: digits alone ($1), or a run of
// letters, digits and '_', or the same inside braces.
func scanName(s string, i int) (name string, next int, braced bool) {
	if i < len(s) && s[i] == '{' {
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", i, true
		}
		return s[i+1 : i+end], i + end + 1, true
	}
	j := i
	if j < len(s) && s[j] >= '1' && s[j] <= '9' {
		return s[i : j+1], j + 1, false
	}
	for j < len(s) && isNameByte(s[j]) {
		j++
	}
	return s[i:j], j, false
}

func isNameByte(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func lookup(name string) (*Var, error) {
	if k, ok := simple[name]; ok {
		return &Var{Kind: k}, nil
	}
	if len(name) == 1 && name[0] >= '1' && name[0] <= '9' {
		return &Var{Kind: Capture, Index: int(name[0] - '0')}, nil
	}
	for _, p := range []struct {
		prefix string
		kind   Kind
	}{{"http_", HTTP}, {"cookie_", Cookie}, {"arg_", Arg}} {
		if rest, ok := strings.CutPrefix(name, p.prefix); ok && rest != "" {
			if p.kind == HTTP {
				rest = strings.ReplaceAll(rest, "_", "-")
			}
			return &Var{Kind: p.kind, Name: []byte(rest)}, nil
		}
	}
	return nil, fmt.Errorf("unknown variable $%s", name)
}

// Append appends the template's value for src to dst.
func (t *Template) Append(dst []byte, src Source) []byte {
	if t == nil {
		return dst
	}
	for i := range t.parts {
		p := &t.parts[i]
		dst = append(dst, p.lit...)
		if p.v != nil {
			dst = src.AppendVar(dst, p.v)
		}
	}
	return dst
}

// Static reports whether the template has no variables, and its text.
func (t *Template) Static() ([]byte, bool) {
	if t == nil {
		return nil, true
	}
	if len(t.parts) == 1 && t.parts[0].v == nil {
		return t.parts[0].lit, true
	}
	return nil, false
}

// Uses reports whether the template reads a variable of kind k.
func (t *Template) Uses(k Kind) bool {
	if t == nil {
		return false
	}
	for _, p := range t.parts {
		if p.v != nil && p.v.Kind == k {
			return true
		}
	}
	return false
}

// MaxCapture is the highest $N the template uses, 0 if none.
func (t *Template) MaxCapture() int {
	n := 0
	if t == nil {
		return 0
	}
	for _, p := range t.parts {
		if p.v != nil && p.v.Kind == Capture && p.v.Index > n {
			n = p.v.Index
		}
	}
	return n
}

// String is the template as written.
func (t *Template) String() string {
	if t == nil {
		return ""
	}
	return t.raw
}

// Names are the names the template reads of variables of kind k (the
// header names of $http_NAME), for a caller that must know which request
// parts the value depends on.
func (t *Template) Names(k Kind) [][]byte {
	if t == nil {
		return nil
	}
	var out [][]byte
	for _, p := range t.parts {
		if p.v != nil && p.v.Kind == k {
			out = append(out, p.v.Name)
		}
	}
	return out
}
