package config

import (
	"strconv"
	"strings"
)

// position is a 1-based line and column in the config text.
type position struct{ line, col int }

// locator maps key paths to where they are written. The TOML library keeps
// key positions to itself (BurntSushi/toml#462), so this reads the text the
// way operators write it: table headers, arrays of tables and `key = value`
// lines. A key it cannot place is still reported, just without a line.
type locator struct {
	pos map[string]position
}

func newLocator(text string) *locator {
	l := &locator{pos: map[string]position{}}
	arrayCount := map[string]int{}
	table := ""
	for i, raw := range strings.Split(text, "\n") {
		lineNo := i + 1
		trimmed := strings.TrimSpace(raw)
		indent := len(raw) - len(strings.TrimLeft(raw, " \t"))
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if strings.HasPrefix(trimmed, "[[") {
			end := strings.Index(trimmed, "]]")
			if end < 0 {
				continue
			}
			name := normalizeKey(trimmed[2:end])
			idx := arrayCount[name]
			arrayCount[name] = idx + 1
			table = name + "[" + strconv.Itoa(idx) + "]"
			l.remember(table, position{lineNo, indent + 1})
			l.remember(name, position{lineNo, indent + 1})
			continue
		}
		if trimmed[0] == '[' {
			end := strings.IndexByte(trimmed, ']')
			if end < 0 {
				continue
			}
			table = normalizeKey(trimmed[1:end])
			l.remember(table, position{lineNo, indent + 1})
			continue
		}
		eq := strings.IndexByte(trimmed, '=')
		if eq <= 0 {
			continue
		}
		key := normalizeKey(trimmed[:eq])
		full := key
		if table != "" {
			full = table + "." + key
		}
		l.remember(full, position{lineNo, indent + 1})
		// Also remember it without array indexes, the form the TOML
		// library uses for undecoded keys.
		l.remember(stripIndexes(full), position{lineNo, indent + 1})
	}
	return l
}

func (l *locator) remember(key string, p position) {
	if _, ok := l.pos[key]; !ok {
		l.pos[key] = p
	}
}

// find returns the position of key, or of its nearest enclosing table.
func (l *locator) find(key string) (position, bool) {
	for k := key; k != ""; {
		if p, ok := l.pos[k]; ok {
			return p, true
		}
		cut := strings.LastIndexAny(k, ".[")
		if cut < 0 {
			break
		}
		k = k[:cut]
	}
	return position{}, false
}

// normalizeKey turns `upstreams."news-service"` into upstreams.news-service.
func normalizeKey(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		p = strings.Trim(p, `"'`)
		parts[i] = p
	}
	return strings.Join(parts, ".")
}

func stripIndexes(k string) string {
	var b strings.Builder
	skip := false
	for _, r := range k {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}
