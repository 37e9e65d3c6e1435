package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads, decodes and validates the config file at path. Every problem
// found is returned at once as Errors; a nil error means the config is
// complete and usable.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

// rawFile decodes each table separately, so one bad table does not hide
// the errors of the others and each gets its defaults before decoding.
type rawFile struct {
	Server    toml.Primitive            `toml:"server"`
	Admin     toml.Primitive            `toml:"admin"`
	Log       toml.Primitive            `toml:"log"`
	Upstreams map[string]toml.Primitive `toml:"upstreams"`
	Routes    []toml.Primitive          `toml:"routes"`
	Coupon    toml.Primitive            `toml:"coupon"`
	Redis     toml.Primitive            `toml:"redis"`
	Cache     toml.Primitive            `toml:"cache"`
	Compress  toml.Primitive            `toml:"compression"`
	Include   []string                  `toml:"include"`
}

// Parse is Load for text already read; path names the file in errors and
// anchors relative paths. The environment is read once, here.
func Parse(path string, data []byte) (*Config, error) {
	return parse(path, data, os.LookupEnv)
}

// source is one file of the config: the main one or an included one.
type source struct {
	path string
	loc  *locator
}

func (s *source) place(e Error) Error {
	e.File = s.path
	if e.Line == 0 && e.Key != "" {
		if p, ok := s.loc.find(e.Key); ok {
			e.Line, e.Col = p.line, p.col
		}
	}
	return e
}

func parse(path string, data []byte, env func(string) (string, bool)) (*Config, error) {
	main := &source{path: path, loc: newLocator(string(data))}
	var errs Errors

	var raw rawFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, Errors{main.place(decodeError(err, ""))}
	}

	cfg := &Config{
		Path:   path,
		Server: DefaultServer(),
		Admin:  DefaultAdmin(),
		Log:    DefaultLog(),
		Redis:  DefaultRedis(),
		Cache:  DefaultCache(),

		Compression:   DefaultCompression(),
		upstreamsFrom: map[string]*source{},
	}
	decode := func(key string, prim toml.Primitive, into any) {
		if !md.IsDefined(strings.Split(key, ".")...) {
			return
		}
		if err := md.PrimitiveDecode(prim, into); err != nil {
			errs = append(errs, main.place(decodeError(err, key)))
		}
	}
	decode("server", raw.Server, &cfg.Server)
	decode("admin", raw.Admin, &cfg.Admin)
	decode("log", raw.Log, &cfg.Log)
	decode("redis", raw.Redis, &cfg.Redis)
	decode("cache", raw.Cache, &cfg.Cache)
	decode("compression", raw.Compress, &cfg.Compression)
	if md.IsDefined("coupon") {
		c := DefaultCoupon()
		decode("coupon", raw.Coupon, &c)
		cfg.Coupon = &c
	}
	cfg.Upstreams = make(map[string]*Upstream, len(raw.Upstreams))
	errs = append(errs, cfg.decodeUpstreamsAndRoutes(md, main, raw.Upstreams, raw.Routes)...)
	errs = append(errs, undecodedKeys(md, main, errs)...)
	errs = append(errs, cfg.include(main, raw.Include)...)

	var p problems
	cfg.expandEnv(&p, env)
	cfg.validate(&p)
	for _, e := range p.list {
		errs = append(errs, cfg.place(main, e))
	}
	if len(errs) > 0 {
		sortErrors(errs, path)
		return nil, errs
	}
	cfg.resolvePaths()
	return cfg, nil
}

// decodeUpstreamsAndRoutes decodes the [upstreams.*] and [[routes]] of one
// file, each over its defaults; routes are appended after those decoded
// before.
func (c *Config) decodeUpstreamsAndRoutes(md toml.MetaData, src *source, ups map[string]toml.Primitive, routes []toml.Primitive) Errors {
	var errs Errors
	names := make([]string, 0, len(ups))
	for name := range ups {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if prev, dup := c.upstreamsFrom[name]; dup {
			errs = append(errs, src.place(Error{Key: "upstreams." + name, Msg: "upstream " + name + " is already defined in " + prev.path}))
			continue
		}
		u := DefaultUpstream()
		if err := md.PrimitiveDecode(ups[name], &u); err != nil {
			errs = append(errs, src.place(decodeError(err, "upstreams."+name)))
		}
		c.Upstreams[name] = &u
		c.upstreamsFrom[name] = src
	}
	for i, prim := range routes {
		r := DefaultRoute()
		if err := md.PrimitiveDecode(prim, &r); err != nil {
			errs = append(errs, src.place(decodeError(err, "routes["+strconv.Itoa(i)+"]")))
		}
		c.Routes = append(c.Routes, r)
		c.routesFrom = append(c.routesFrom, routeOrigin{src: src, index: i})
	}
	return errs
}

func undecodedKeys(md toml.MetaData, src *source, failed Errors) Errors {
	var errs Errors
	for _, k := range md.Undecoded() {
		key := k.String()
		if isChildOfFailedDecode(key, failed) {
			continue
		}
		errs = append(errs, src.place(Error{Key: key, Msg: "unknown key"}))
	}
	return errs
}

// sortErrors puts the main file's errors first, then each included
// file's, each in line order.
func sortErrors(errs Errors, mainPath string) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if a.File != b.File {
			if a.File == mainPath || b.File == mainPath {
				return a.File == mainPath
			}
			return a.File < b.File
		}
		if a.Line == 0 || b.Line == 0 {
			return a.Line != 0 && b.Line == 0
		}
		return a.Line < b.Line
	})
}

var lineInMessage = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): `)

// decodeError turns the TOML library's two error shapes (positioned
// ParseError, and plain "toml: line N (last key …)" type errors) into one.
func decodeError(err error, key string) Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e := Error{Key: pe.LastKey, Msg: pe.Message}
		if e.Key == "" {
			e.Key = key
		}
		if pe.Position.Line > 0 {
			e.Line, e.Col = pe.Position.Line, pe.Position.Col
		}
		return e
	}
	msg := err.Error()
	e := Error{Key: key}
	if m := lineInMessage.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Key = m[2]
		msg = msg[len(m[0]):]
	}
	e.Msg = strings.TrimPrefix(msg, "toml: ")
	return e
}

// isChildOfFailedDecode: keys under a table whose decode failed are left
// "undecoded" by the library; reporting them as unknown would be noise.
func isChildOfFailedDecode(key string, errs Errors) bool {
	for _, e := range errs {
		k := stripIndexes(e.Key)
		if k != "" && strings.HasPrefix(key, k+".") {
			return true
		}
	}
	return false
}

// resolvePaths anchors relative paths at the config file's folder.
func (c *Config) resolvePaths() {
	dir := filepath.Dir(c.Path)
	if a, err := filepath.Abs(dir); err == nil {
		dir = a
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.Server.TLSCertFile = abs(c.Server.TLSCertFile)
	c.Server.TLSKeyFile = abs(c.Server.TLSKeyFile)
	c.Server.PIDFile = abs(c.Server.PIDFile)
	switch c.Log.AccessLog {
	case "stdout", "stderr", "off", "":
	default:
		c.Log.AccessLog = abs(c.Log.AccessLog)
	}
	if c.Coupon != nil {
		c.Coupon.File = abs(c.Coupon.File)
	}
	for _, u := range c.Upstreams {
		u.TLSCAFile, u.TLSCertFile, u.TLSKeyFile = abs(u.TLSCAFile), abs(u.TLSCertFile), abs(u.TLSKeyFile)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		r.BasicAuthFile = abs(r.BasicAuthFile)
		r.Root = abs(r.Root)
		for code, target := range r.ErrorPages {
			if !strings.HasPrefix(target, "@") {
				r.ErrorPages[code] = abs(target)
			}
		}
	}
	c.Redis.TLSCAFile = abs(c.Redis.TLSCAFile)
}

// String renders a one-line summary used in logs.
func (c *Config) String() string {
	return fmt.Sprintf("config %s: listen %s, %d upstreams, %d routes", c.Path, c.Server.Listen, len(c.Upstreams), len(c.Routes))
}
