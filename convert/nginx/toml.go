package nginx

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// fields is an ordered set of TOML keys: the output keeps the order in
// which the walk found things, so it reads like the nginx file it came from.
type fields struct {
	keys []string
	vals map[string]any
}

func (f *fields) set(key string, v any) {
	if f.vals == nil {
		f.vals = map[string]any{}
	}
	if _, ok := f.vals[key]; !ok {
		f.keys = append(f.keys, key)
	}
	f.vals[key] = v
}

func (f *fields) get(key string) (any, bool) {
	v, ok := f.vals[key]
	return v, ok
}

func (f *fields) empty() bool { return len(f.keys) == 0 }

// strMap is an inline table of strings, written with sorted keys.
type strMap map[string]string

// inline is an inline table whose keys keep their order.
type inline struct{ fields }

// quote writes a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// bareKey is a key written without quotes when TOML allows it.
func bareKey(k string) string {
	if k == "" {
		return `""`
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return quote(k)
		}
	}
	return k
}

func value(v any) string {
	switch t := v.(type) {
	case string:
		return quote(t)
	case bool:
		return strconv.FormatBool(t)
	case int:
		return strconv.Itoa(t)
	case []string:
		parts := make([]string, len(t))
		for i, s := range t {
			parts[i] = quote(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case strMap:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = bareKey(k) + " = " + quote(t[k])
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	case *inline:
		parts := make([]string, len(t.keys))
		for i, k := range t.keys {
			parts[i] = bareKey(k) + " = " + value(t.vals[k])
		}
		if len(parts) == 0 {
			return "{}"
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	default:
		panic(fmt.Sprintf("nginx: no TOML form for %T", v))
	}
}

func writeFields(b *strings.Builder, f *fields) {
	for _, k := range f.keys {
		fmt.Fprintf(b, "%s = %s\n", bareKey(k), value(f.vals[k]))
	}
}
