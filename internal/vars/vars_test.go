package vars

import (
	"strconv"
	"strings"
	"testing"
)

// mapSource answers each variable with a fixed text, for tests.
type mapSource map[Kind]string

func (m mapSource) AppendVar(dst []byte, v *Var) []byte {
	switch v.Kind {
	case HTTP, Cookie, Arg:
		return append(dst, m[v.Kind]+":"+string(v.Name)...)
	case Capture:
		return append(dst, "cap"+strconv.Itoa(v.Index)...)
	}
	return append(dst, m[v.Kind]...)
}

func TestParseAndAppend(t *testing.T) {
	src := mapSource{Host: "example.com", RequestURI: "/a?b", Scheme: "https", HTTP: "h", Cookie: "c", Arg: "a", RemoteAddr: "10.0.0.1"}
	tests := []struct {
		name, in, want string
	}{
		{"plain", "ok\n", "ok\n"},
		{"empty", "", ""},
		{"redirect", "https://$host$request_uri", "https://example.com/a?b"},
		{"braces", "${scheme}x", "httpsx"},
		{"header maps underscores", "$http_x_real_ip", "h:x-real-ip"},
		{"cookie and arg", "$cookie_session/$arg_page", "c:session/a:page"},
		{"captures", "/v2/$2/$1", "/v2/cap2/cap1"},
		{"lone dollar", "cost $ 5 $", "cost $ 5 $"},
		{"name stops at punctuation", "$remote_addr:80", "10.0.0.1:80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(tpl.Append(nil, src)); got != tc.want {
				t.Fatalf("Append(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestUnknownVariableIsAnError(t *testing.T) {
	for _, in := range []string{"$hots", "${nope}", "$http_", "x${unterminated"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
	_, err := Parse("$hots")
	if err == nil || !strings.Contains(err.Error(), "$hots") {
		t.Fatalf("error %v does not name the variable", err)
	}
}

func TestStaticAndCaptures(t *testing.T) {
	if b, ok := MustParse("abc").Static(); !ok || string(b) != "abc" {
		t.Fatal("literal not static")
	}
	if _, ok := MustParse("$host").Static(); ok {
		t.Fatal("variable reported static")
	}
	if n := MustParse("/$3/$1").MaxCapture(); n != 3 {
		t.Fatalf("MaxCapture = %d", n)
	}
}

func TestAppendAllocatesNothing(t *testing.T) {
	tpl := MustParse("https://$host$request_uri?id=$request_id&c=$cookie_s")
	src := mapSource{Host: "example.com", RequestURI: "/x", RequestID: "abc", Cookie: "v"}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() { buf = tpl.Append(buf[:0], src) })
	if allocs != 0 {
		t.Fatalf("Append allocates %v times", allocs)
	}
}

func BenchmarkAppend(b *testing.B) {
	tpl := MustParse("https://$host$request_uri")
	src := mapSource{Host: "example.com", RequestURI: "/x"}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = tpl.Append(buf[:0], src)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "$host", "${a}", "$1$2", "x$", "$http_a_b", "${", "$$", "$arg_"} {
		f.Add(s)
	}
	src := mapSource{}
	f.Fuzz(func(t *testing.T, s string) {
		tpl, err := Parse(s)
		if err != nil {
			return
		}
		if tpl.String() != s {
			t.Fatalf("String() = %q, want %q", tpl.String(), s)
		}
		_ = tpl.Append(nil, src)
		if !strings.Contains(s, "$") {
			if got := string(tpl.Append(nil, src)); got != s {
				t.Fatalf("literal %q became %q", s, got)
			}
		}
	})
}
