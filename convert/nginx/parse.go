package nginx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// A hand-written reader rather than github.com/tufanbarisyildirim/gonginx:
// gonginx records the line of a statement's last token ("}" for a block, so
// `server` is reported where it ends), does not say which included file a
// directive came from, and reports some syntax errors without a line
// ("unexpected eof in block"). The converter's whole output is FILE:LINE
// lines, and a config nginx rejects must be reported at nginx's line, so the
// reader below follows ngx_conf_read_token (src/core/ngx_conf_file.c)
// token by token instead: quoting and escapes, "${" inside words, comments,
// and nginx's own error texts.

// Directive is one nginx statement with its block, if it has one.
type Directive struct {
	Name string
	Args []string
	// File and Line locate the directive's name; EndLine is where its ";"
	// or "{" is, the line nginx itself names in its errors.
	File     string
	Line     int
	EndLine  int
	HasBlock bool
	Block    []*Directive
	// seq is the directive's place in the whole config, includes expanded.
	seq int
}

// Where is FILE:LINE of the directive.
func (d *Directive) Where() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// SyntaxError is a config nginx refuses to read at all.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d: nginx rejects this config: %s", e.File, e.Line, e.Msg)
}

// maxIncludeDepth stops include cycles (nginx itself would loop until it
// runs out of file descriptors).
const maxIncludeDepth = 32

// maxTokens bounds one directive's arguments; nginx allows at most 8 for
// any directive it knows, a map or types body line has 2.
const maxTokens = 1 << 12

// ParseFile reads path and every file it includes. Relative include
// patterns are resolved against path's folder, as nginx resolves them
// against the folder of the file given with -c.
func ParseFile(path string) ([]*Directive, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	p := &parser{root: filepath.Dir(path)}
	return p.parse(path, data, 0)
}

// maxConfigBytes bounds one config file: `include /dev/zero` must not
// read forever.
const maxConfigBytes = 64 << 20

// readConfigFile reads a regular file of at most maxConfigBytes.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxConfigBytes)
	}
	return data, nil
}

// ParseBytes is ParseFile for text already read; includes are resolved
// against root.
func ParseBytes(name string, data []byte, root string) ([]*Directive, error) {
	p := &parser{root: root}
	return p.parse(name, data, 0)
}

type parser struct {
	root string
	seq  int
}

func (p *parser) parse(name string, data []byte, depth int) ([]*Directive, error) {
	lx := &lexer{file: name, src: data, line: 1}
	list, err := p.block(lx, false, depth)
	if err != nil {
		return nil, err
	}
	return list, nil
}

// block reads statements until "}" (inBlock) or the end of the file.
func (p *parser) block(lx *lexer, inBlock bool, depth int) ([]*Directive, error) {
	var out []*Directive
	for {
		words, startLine, end, err := lx.statement()
		if err != nil {
			return nil, err
		}
		switch end {
		case endFile:
			if inBlock {
				return nil, lx.errorf(`unexpected end of file, expecting "}"`)
			}
			return out, nil
		case endBlock:
			if !inBlock {
				return nil, lx.errorf(`unexpected "}"`)
			}
			return out, nil
		}
		p.seq++
		d := &Directive{Name: words[0], Args: words[1:], File: lx.file, Line: startLine, EndLine: lx.line, seq: p.seq}
		if end == endOpen {
			d.HasBlock = true
			if d.Block, err = p.block(lx, true, depth); err != nil {
				return nil, err
			}
			out = append(out, d)
			continue
		}
		if d.Name == "include" && len(d.Args) == 1 {
			inc, err := p.include(d, depth)
			if err != nil {
				return nil, err
			}
			out = append(out, inc...)
			continue
		}
		out = append(out, d)
	}
}

// include reads the files an include pattern names, in nginx's order
// (glob(3) sorts, and skips hidden files for a wildcard).
func (p *parser) include(d *Directive, depth int) ([]*Directive, error) {
	if depth >= maxIncludeDepth {
		return nil, &SyntaxError{File: d.File, Line: d.EndLine, Msg: "includes nested too deep (a cycle?)"}
	}
	pattern := d.Args[0]
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(p.root, pattern)
	}
	wild := strings.ContainsAny(pattern, "*?[")
	var files []string
	if wild {
		m, err := filepath.Glob(pattern)
		if err != nil {
			return nil, &SyntaxError{File: d.File, Line: d.EndLine, Msg: fmt.Sprintf("include %q: %v", d.Args[0], err)}
		}
		for _, f := range m {
			if !strings.HasPrefix(filepath.Base(f), ".") {
				files = append(files, f)
			}
		}
		sort.Strings(files)
	} else {
		files = []string{pattern}
	}
	var out []*Directive
	for _, f := range files {
		data, err := readConfigFile(f)
		if err != nil {
			return nil, &SyntaxError{File: d.File, Line: d.EndLine, Msg: fmt.Sprintf("open() %q failed: %v", f, err)}
		}
		list, err := p.parse(f, data, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	return out, nil
}

type ending int

const (
	endStatement ending = iota // ";"
	endOpen                    // "{"
	endBlock                   // "}"
	endFile
)

type lexer struct {
	file string
	src  []byte
	pos  int
	line int
}

func (lx *lexer) errorf(format string, a ...any) error {
	return &SyntaxError{File: lx.file, Line: lx.line, Msg: fmt.Sprintf(format, a...)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// statement reads one statement's words and how it ended, following
// ngx_conf_read_token.
func (lx *lexer) statement() (words []string, startLine int, end ending, err error) {
	var (
		lastSpace = true
		needSpace = false
		comment   = false
		escaped   = false
		variable  = false
		dQuoted   = false
		sQuoted   = false
		start     = 0
		firstLine = 0
	)
	for {
		if lx.pos >= len(lx.src) {
			if len(words) > 0 || !lastSpace {
				return nil, 0, 0, lx.errorf(`unexpected end of file, expecting ";" or "}"`)
			}
			return nil, 0, endFile, nil
		}
		ch := lx.src[lx.pos]
		lx.pos++
		if ch == '\n' {
			lx.line++
			if comment {
				comment = false
			}
		}
		if comment {
			continue
		}
		if escaped {
			escaped = false
			continue
		}
		if needSpace {
			if isSpace(ch) {
				lastSpace, needSpace = true, false
				continue
			}
			switch ch {
			case ';':
				return words, firstLine, endStatement, nil
			case '{':
				return words, firstLine, endOpen, nil
			case ')':
				lastSpace, needSpace = true, false
			default:
				return nil, 0, 0, lx.errorf("unexpected %q", string(ch))
			}
		}
		if lastSpace {
			start = lx.pos - 1
			if isSpace(ch) {
				continue
			}
			switch ch {
			case ';', '{':
				if len(words) == 0 {
					return nil, 0, 0, lx.errorf("unexpected %q", string(ch))
				}
				if ch == '{' {
					return words, firstLine, endOpen, nil
				}
				return words, firstLine, endStatement, nil
			case '}':
				if len(words) != 0 {
					return nil, 0, 0, lx.errorf(`unexpected "}"`)
				}
				return nil, 0, endBlock, nil
			case '#':
				comment = true
				continue
			case '\\':
				escaped, lastSpace = true, false
				continue
			case '"':
				start++
				dQuoted, lastSpace = true, false
				continue
			case '\'':
				start++
				sQuoted, lastSpace = true, false
				continue
			case '$':
				variable, lastSpace = true, false
				continue
			default:
				lastSpace = false
			}
			continue
		}
		if ch == '{' && variable {
			continue
		}
		variable = false
		if ch == '\\' {
			escaped = true
			continue
		}
		if ch == '$' {
			variable = true
			continue
		}
		found := false
		stop := lx.pos - 1
		switch {
		case dQuoted:
			if ch == '"' {
				dQuoted, needSpace, found = false, true, true
			}
		case sQuoted:
			if ch == '\'' {
				sQuoted, needSpace, found = false, true, true
			}
		case isSpace(ch) || ch == ';' || ch == '{':
			lastSpace, found = true, true
		}
		if !found {
			continue
		}
		if len(words) == 0 {
			firstLine = lx.lineAt(start)
		}
		if len(words) >= maxTokens {
			return nil, 0, 0, lx.errorf("too many parameters")
		}
		words = append(words, unescape(lx.src[start:stop]))
		switch ch {
		case ';':
			return words, firstLine, endStatement, nil
		case '{':
			return words, firstLine, endOpen, nil
		}
	}
}

// lineAt counts the line of byte offset off.
func (lx *lexer) lineAt(off int) int {
	return lx.line - strings.Count(string(lx.src[off:lx.pos]), "\n")
}

// unescape applies nginx's escapes: \" \' \\ lose the backslash, \t \r \n
// become the control characters, any other backslash stays.
func unescape(b []byte) string {
	if !strings.Contains(string(b), `\`) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			switch b[i+1] {
			case '"', '\'', '\\':
				i++
			case 't':
				sb.WriteByte('\t')
				i++
				continue
			case 'r':
				sb.WriteByte('\r')
				i++
				continue
			case 'n':
				sb.WriteByte('\n')
				i++
				continue
			}
		}
		sb.WriteByte(b[i])
	}
	return sb.String()
}
