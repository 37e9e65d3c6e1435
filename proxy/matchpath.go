package proxy

import "errors"

// errBadPath: a path that climbs above the root or holds a NUL byte.
var errBadPath = errors.New("request path leaves the root or holds a NUL byte")

// matchPath is the path routes are matched against, as nginx matches
// $uri: percent-decoded, slashes merged, "." and ".." resolved. A request
// is still forwarded with its path byte for byte; only the choice of route
// (and so access rules tied to it) sees the clean form, so /x/../admin/
// cannot slip past a route for /admin/. Paths that need no cleaning, the
// usual case, are returned as they are, without a copy.
func matchPath(dst, raw []byte) ([]byte, []byte, error) {
	if !needsCleaning(raw) {
		return raw, dst, nil
	}
	dst = dst[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		if c == 0 {
			return nil, dst, errBadPath
		}
		dst = append(dst, c)
	}
	clean, err := cleanSegments(dst)
	return clean, dst, err
}

func needsCleaning(p []byte) bool {
	for i, c := range p {
		switch c {
		case '%':
			return true
		case '/':
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				return true
			}
		}
	}
	return false
}

// cleanSegments merges slashes and resolves dot segments in place.
func cleanSegments(p []byte) ([]byte, error) {
	out := p[:0]
	i := 0
	for i < len(p) {
		if p[i] == '/' {
			i++
			continue
		}
		j := i
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i:j]
		switch {
		case len(seg) == 1 && seg[0] == '.':
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if len(out) == 0 {
				return nil, errBadPath
			}
			k := len(out) - 1
			for k > 0 && out[k] != '/' {
				k--
			}
			out = out[:k]
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		i = j
	}
	// A trailing slash or dot segment keeps the path a directory.
	if len(p) > 0 && (p[len(p)-1] == '/' || endsWithDotSegment(p)) || len(out) == 0 {
		out = append(out, '/')
	}
	return out, nil
}

func endsWithDotSegment(p []byte) bool {
	n := len(p)
	return (n >= 2 && p[n-1] == '.' && p[n-2] == '/') || (n >= 3 && p[n-1] == '.' && p[n-2] == '.' && p[n-3] == '/')
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
