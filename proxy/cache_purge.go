package proxy

import (
	"net/url"
	"strings"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// PurgeResponses removes the answers a purge names from the response
// store: the key each cached route's template gives the URL (or, with
// prefix, every key starting with it); all drops everything. Variants of
// a key go with it (their 'V' record does). Keys read from the URL only:
// a template reading headers or cookies gets them empty.
func (s *Server) PurgeResponses(rawURL string, prefix, all bool) {
	st := s.state.Load()
	if all {
		if st.opts.ResponseCache != nil {
			st.opts.ResponseCache.Reset()
		}
		return
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return
	}
	src := urlSource{u: u}
	done := map[string]bool{}
	for _, t := range st.caches {
		key := t.key.Append(nil, src)
		if done[string(key)] {
			continue
		}
		done[string(key)] = true
		if prefix {
			t.store.DeletePrefix(key)
		} else {
			t.store.Delete(key)
		}
	}
}

// urlSource evaluates a key template for a purge URL.
type urlSource struct{ u *url.URL }

func (s urlSource) AppendVar(dst []byte, v *vars.Var) []byte {
	u := s.u
	switch v.Kind {
	case vars.Scheme:
		return append(dst, u.Scheme...)
	case vars.Host:
		return append(dst, strings.ToLower(u.Hostname())...)
	case vars.RequestURI:
		return append(dst, u.RequestURI()...)
	case vars.URI:
		return append(dst, u.EscapedPath()...)
	case vars.Args:
		return append(dst, u.RawQuery...)
	case vars.Arg:
		return append(dst, u.Query().Get(string(v.Name))...)
	case vars.ServerPort:
		return append(dst, u.Port()...)
	case vars.RequestMethod:
		return append(dst, "GET"...)
	}
	return dst
}
