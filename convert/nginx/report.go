package nginx

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Status says what became of a directive.
type Status string

const (
	// Carried: the TOML does what nginx did.
	Carried Status = "carried"
	// Blocking: left out, and requests behave differently because of it.
	Blocking Status = "blocking"
	// Ignored: left out, with no effect on what a client or upstream sees
	// (process tuning, buffers, logging formats).
	Ignored Status = "ignored"
)

// Finding is one directive not carried over.
type Finding struct {
	File      string
	Line      int
	Directive string
	Status    Status
	Why       string
	seq       int
}

// String is the SPEC §2 report line: FILE:LINE: DIRECTIVE: blocking|ignored: why.
func (f Finding) String() string {
	name := f.Directive
	if name == "" || strings.ContainsAny(name, " \t\r\n:") || !utf8.ValidString(name) {
		name = strconv.Quote(name)
	}
	why := strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(f.Why)
	return fmt.Sprintf("%s:%d: %s: %s: %s", f.File, f.Line, name, f.Status, why)
}

// notCarried is what a carry function returns for a directive it cannot
// translate in this particular use (the rule as a whole may be carried).
type notCarried struct {
	status Status
	why    string
}

func (e *notCarried) Error() string { return string(e.status) + ": " + e.why }

func blocking(format string, a ...any) error {
	return &notCarried{status: Blocking, why: fmt.Sprintf(format, a...)}
}

func ignored(format string, a ...any) error {
	return &notCarried{status: Ignored, why: fmt.Sprintf(format, a...)}
}

// errReported: the carry function has reported the directive itself.
var errReported = &notCarried{}

// sortFindings orders findings as the directives stand in the config; the walk reads a block's
// settings before its servers and locations, so it finds them out of order.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		return fs[i].seq < fs[j].seq
	})
}
