package config

import (
	"reflect"
	"strconv"
	"strings"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in every string value
// by the environment (SPEC §3): default when NAME is unset or empty; $$
// is a literal $; nginx-style $host variables are left for the proxy. An
// unset NAME without a default is an error naming the key.
func (c *Config) expandEnv(p *problems, env func(string) (string, bool)) {
	walkStrings(reflect.ValueOf(c).Elem(), "", func(key string, s string) string {
		out, err := expand(s, env)
		if err != "" {
			p.add(key, "%s", err)
			return s
		}
		return out
	})
}

// expand returns s with its ${…} replaced, or why it cannot be.
func expand(s string, env func(string) (string, bool)) (string, string) {
	if !strings.Contains(s, "$") {
		return s, ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", "unterminated ${ in " + strconv.Quote(s)
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			// Not ours: ${host} is an nginx-style variable of the proxy.
			b.WriteString(s[i : i+end+1])
			i += end
			continue
		}
		v, ok := env(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", "environment variable " + name + " is not set (write ${" + name + ":-default} for a default)"
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), ""
}

// validEnvName: environment variables are conventionally upper case,
// which also keeps them apart from the proxy's lower-case ${host}.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || ('A' <= c && c <= 'Z') || (i > 0 && '0' <= c && c <= '9')) {
			return false
		}
	}
	return true
}

// walkStrings calls f for every string in v (structs, slices, maps,
// pointers), with the TOML key path, and stores what f returns.
func walkStrings(v reflect.Value, key string, f func(key, s string) string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkStrings(v.Elem(), key, f)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			field := t.Field(i)
			if !field.IsExported() || field.Name == "Path" && key == "" {
				continue
			}
			name := strings.Split(field.Tag.Get("toml"), ",")[0]
			if name == "" {
				name = strings.ToLower(field.Name)
			}
			if key != "" {
				name = key + "." + name
			}
			walkStrings(v.Field(i), name, f)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			walkStrings(v.Index(i), key+"["+strconv.Itoa(i)+"]", f)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			sub := key + "." + k.String()
			if e.Kind() == reflect.String {
				v.SetMapIndex(k, reflect.ValueOf(f(sub, e.String())).Convert(e.Type()))
				continue
			}
			walkStrings(e, sub, f)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(f(key, v.String()))
		}
	}
}
