package config

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// routeOrigin is the file a route was written in and its index there.
type routeOrigin struct {
	src   *source
	index int
}

// rawInclude is what an included file may hold.
type rawInclude struct {
	Upstreams map[string]toml.Primitive `toml:"upstreams"`
	Routes    []toml.Primitive          `toml:"routes"`
}

// include merges the [upstreams.*] and [[routes]] of the files the
// top-level include globs match (SPEC §3): relative to the main file's
// folder, files in name order, their routes after the main file's.
func (c *Config) include(main *source, globs []string) Errors {
	var errs Errors
	dir := filepath.Dir(main.path)
	seen := map[string]bool{}
	var files []string
	for i, g := range globs {
		pattern := g
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			errs = append(errs, main.place(Error{Key: "include[" + strconv.Itoa(i) + "]", Msg: "bad pattern " + strconv.Quote(g) + ": " + err.Error()}))
			continue
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				files = append(files, m)
			}
		}
	}
	sort.Slice(files, func(i, j int) bool { return filepath.Base(files[i]) < filepath.Base(files[j]) })
	for _, f := range files {
		errs = append(errs, c.includeFile(f)...)
	}
	return errs
}

func (c *Config) includeFile(path string) Errors {
	data, err := os.ReadFile(path)
	if err != nil {
		return Errors{{File: path, Msg: err.Error()}}
	}
	src := &source{path: path, loc: newLocator(string(data))}
	var raw rawInclude
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return Errors{src.place(decodeError(err, ""))}
	}
	errs := c.decodeUpstreamsAndRoutes(md, src, raw.Upstreams, raw.Routes)
	for _, e := range undecodedKeys(md, src, errs) {
		if !strings.Contains(e.Key, ".") {
			e.Msg = "an included file holds only [upstreams.*] and [[routes]]"
		}
		errs = append(errs, e)
	}
	return errs
}

// place puts a validation error in the file its key was written in: a
// key of routes[N] or upstreams.NAME from an included file is shown as
// that file's own key, at that file's line.
func (c *Config) place(main *source, e Error) Error {
	if rest, ok := strings.CutPrefix(e.Key, "routes["); ok {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			if n, err := strconv.Atoi(rest[:end]); err == nil && n < len(c.routesFrom) {
				o := c.routesFrom[n]
				e.Key = "routes[" + strconv.Itoa(o.index) + "]" + rest[end+1:]
				return o.src.place(e)
			}
		}
	}
	if rest, ok := strings.CutPrefix(e.Key, "upstreams."); ok {
		name, _, _ := strings.Cut(rest, ".")
		if src := c.upstreamsFrom[name]; src != nil {
			return src.place(e)
		}
	}
	return main.place(e)
}
