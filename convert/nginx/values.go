package nginx

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// nginxDuration reads nginx's time syntax ("30", "30s", "1m30s", "500ms",
// "1h", "2d"); a bare number is seconds.
func nginxDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty time")
	}
	units := map[string]time.Duration{
		"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
		"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "M": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour,
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return 0, fmt.Errorf("invalid time %q", s)
		}
		n, _ := strconv.Atoi(rest[:i])
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		u := rest[:j]
		rest = rest[j:]
		if u == "" {
			if rest != "" || total != 0 {
				return 0, fmt.Errorf("invalid time %q", s)
			}
			u = "s"
		}
		m, ok := units[u]
		if !ok {
			return 0, fmt.Errorf("invalid time %q", s)
		}
		total += time.Duration(n) * m
	}
	return total, nil
}

// goDuration writes d the way config reads it, in its largest whole unit.
func goDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

// nginxSize reads "1024", "8k", "10m", "1g"; ok is false when malformed.
func nginxSize(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult, s = 1<<10, s[:len(s)-1]
	case 'm', 'M':
		mult, s = 1<<20, s[:len(s)-1]
	case 'g', 'G':
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, false
	}
	return n * mult, true
}

// sizeString writes a byte count with the largest whole unit.
func sizeString(n int64) string {
	switch {
	case n > 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n > 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n > 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

var varRef = regexp.MustCompile(`\$(\{[A-Za-z0-9_]+\}|[A-Za-z0-9_]+)`)

// knownVar reports whether edgeproxy evaluates the nginx variable name
// (SPEC §8 "Variables in header values …").
func knownVar(name string) bool {
	switch name {
	case "remote_addr", "host", "scheme", "request_uri", "uri", "args", "request_method",
		"request_id", "server_port", "upstream_addr", "upstream_status":
		return true
	}
	if len(name) == 1 && name[0] >= '1' && name[0] <= '9' {
		return true
	}
	for _, p := range []string{"http_", "cookie_", "arg_"} {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// checkVars returns the first variable in s edgeproxy cannot evaluate.
func checkVars(s string) error {
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		name := strings.Trim(m[1], "{}")
		if !knownVar(name) {
			return blocking("variable $%s has no edgeproxy equivalent", name)
		}
	}
	return nil
}

var headerToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// checkHeaderName refuses a name that is not an HTTP field name.
func checkHeaderName(name string) error {
	if !headerToken.MatchString(name) {
		return blocking("%q is not an HTTP header name", name)
	}
	return nil
}
