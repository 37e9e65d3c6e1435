package nginx

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Options steer a conversion.
type Options struct {
	// Caps is what the config package accepts; nil means DetectCaps.
	Caps Caps
}

// Result is a finished conversion.
type Result struct {
	// TOML is the edgeproxy config; it passes `edgeproxy -t`.
	TOML []byte
	// Findings lists every directive not carried over, in file order.
	Findings []Finding
}

// Blocking reports whether a left-out directive changes behaviour.
func (r *Result) Blocking() bool {
	for _, f := range r.Findings {
		if f.Status == Blocking {
			return true
		}
	}
	return false
}

// Convert reads the nginx config at path (with its includes) and
// translates it. The error is non-nil only when the input cannot be read
// at all (a missing file, or a syntax error nginx would stop at); anything
// else, unknown directives included, becomes a Finding and the rest of the
// config is still converted.
func Convert(path string, opt Options) (*Result, error) {
	tree, err := ParseFile(path)
	if err != nil {
		return nil, err
	}
	return ConvertTree(tree, filepath.Dir(path), opt)
}

// ConvertTree translates a parsed config; root anchors relative paths
// (certificates, roots, htpasswd files) as nginx's config folder does.
func ConvertTree(tree []*Directive, root string, opt Options) (*Result, error) {
	caps := opt.Caps
	if caps == nil {
		var err error
		if caps, err = DetectCaps(); err != nil {
			return nil, fmt.Errorf("probe config keys: %w", err)
		}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	c := &converter{caps: caps, root: abs, rules: ruleIndex(), upstreams: map[string]*upstreamBlock{}, maps: map[string]*mapVar{}}
	top := &scope{c: c, kind: cMain, set: &settings{}}
	c.walk(top, asMain(tree))
	out := c.finish()
	sortFindings(c.findings)
	return &Result{TOML: out, Findings: c.findings}, nil
}

// asMain wraps a site file (server and upstream blocks at the top, as in
// sites-enabled/ files that nginx.conf includes inside http) in an http
// block, so converting just that file works as an operator expects.
func asMain(tree []*Directive) []*Directive {
	site := false
	for _, d := range tree {
		switch d.Name {
		case "http", "events":
			return tree
		case "server", "upstream", "map":
			site = site || d.HasBlock
		}
	}
	if !site {
		return tree
	}
	return []*Directive{{Name: "http", HasBlock: true, Block: tree, File: tree[0].File, Line: tree[0].Line, EndLine: tree[0].Line}}
}

// converter holds one conversion's state.
type converter struct {
	caps     Caps
	root     string
	rules    map[string]*rule
	findings []Finding

	http      *settings
	upstreams map[string]*upstreamBlock
	upOrder   []*upstreamBlock
	maps      map[string]*mapVar
	servers   []*serverScope
	httpCert  val[string]
	httpKey   val[string]
	resolver  val[string]
	gz        *gzipPlan
	zones     map[string]*reqZone
	// authTargets are the locations auth_request asks.
	authTargets map[*locScope]bool
	// quiet > 0: reading a location that is left out as a whole.
	quiet int
}

func (c *converter) report(d *Directive, st Status, format string, a ...any) {
	if c.quiet > 0 {
		return
	}
	c.findings = append(c.findings, Finding{File: d.File, Line: d.Line, Directive: d.Name, Status: st, Why: fmt.Sprintf(format, a...), seq: d.seq})
}

// reject reports what nginx itself refuses, at the line nginx names.
func (c *converter) reject(d *Directive, format string, a ...any) {
	if c.quiet > 0 {
		return
	}
	c.findings = append(c.findings, Finding{File: d.File, Line: d.EndLine, Directive: d.Name, Status: Blocking,
		Why: "nginx rejects this config: " + fmt.Sprintf(format, a...), seq: d.seq})
}

// deferred directives are read after the other directives of their block:
// nginx merges a block's settings into the blocks inside it wherever in
// the block they are written.
func deferred(name string) bool {
	return name == "server" || name == "location" || name == "if" || name == "limit_except"
}

func (c *converter) walk(s *scope, list []*Directive) {
	for _, d := range list {
		if !deferred(d.Name) {
			c.apply(s, d)
		}
	}
	for _, d := range list {
		if deferred(d.Name) {
			c.apply(s, d)
		}
	}
}

// apply looks d up in the directive table and carries it over or reports it.
func (c *converter) apply(s *scope, d *Directive) {
	r, ok := c.rules[d.Name]
	if !ok {
		c.reject(d, "unknown directive %q (a module edgeproxy has no equivalent of)", d.Name)
		return
	}
	if r.ctx&s.kind == 0 {
		c.reject(d, "%q directive is not allowed here", d.Name)
		return
	}
	if len(d.Args) < r.min || (r.max >= 0 && len(d.Args) > r.max) {
		c.reject(d, "invalid number of arguments in %q directive", d.Name)
		return
	}
	if !r.anyBlock && r.block && !d.HasBlock {
		c.reject(d, "directive %q has no opening \"{\"", d.Name)
		return
	}
	if !r.anyBlock && !r.block && d.HasBlock {
		c.reject(d, "directive %q is not terminated by \";\"", d.Name)
		return
	}
	if r.carry == nil {
		c.report(d, r.status, "%s", r.becomes)
		return
	}
	for _, a := range d.Args {
		if !utf8.ValidString(a) {
			c.report(d, Blocking, "an argument is not valid UTF-8, which a TOML file cannot hold")
			return
		}
	}
	if m := c.caps.Missing(r.needs...); len(m) > 0 {
		c.report(d, Blocking, "%s", missingCaps(m).why)
		return
	}
	if err := r.carry(s, d); err != nil {
		var nc *notCarried
		if errors.As(err, &nc) {
			if nc == errReported {
				return
			}
			c.report(d, nc.status, "%s", nc.why)
			return
		}
		c.report(d, Blocking, "%v", err)
	}
}

func missingCaps(m []string) *notCarried {
	var absent, pending []string
	for _, c := range m {
		if _, ok := unfinished[Capability(c)]; ok {
			pending = append(pending, c)
		} else {
			absent = append(absent, c)
		}
	}
	var why []string
	if len(absent) > 0 {
		why = append(why, "edgeproxy's config does not accept "+strings.Join(absent, ", ")+" yet")
	}
	if len(pending) > 0 {
		why = append(why, "edgeproxy accepts "+strings.Join(pending, ", ")+" but does not act on it yet")
	}
	return &notCarried{status: Blocking, why: strings.Join(why, "; ")}
}

// path makes a path from the nginx config absolute, as nginx resolves it.
func (c *converter) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.root, p)
}
