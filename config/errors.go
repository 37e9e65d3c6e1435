package config

import (
	"fmt"
	"strings"
)

// Error is one problem in a config file, placed as precisely as the file
// allows: FILE:LINE:COL when the key is found in the text, FILE alone when not.
type Error struct {
	File string
	Line int
	Col  int
	// Key is the dotted path of the offending key ("routes[1].upstream").
	Key string
	Msg string
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, max(e.Col, 1))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in file order.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// problems collects errors by key path while a config is validated; the
// positions are filled in afterwards from the file's text.
type problems struct {
	list []Error
}

func (p *problems) add(key, format string, args ...any) {
	p.list = append(p.list, Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}
