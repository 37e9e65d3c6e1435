package nginx

import (
	"os"
	"strings"
	"testing"
)

// The README's directive table is generated from the converter's own table
// and today's capabilities; this test fails when they drift apart.
// `make nginx-table` (UPDATE_README=1) rewrites it.
func TestREADMEDirectiveTableIsCurrent(t *testing.T) {
	const path = "../../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i, j := strings.Index(text, TableBegin), strings.Index(text, TableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q … %q", TableBegin, TableEnd)
	}
	caps, err := DetectCaps()
	if err != nil {
		t.Fatal(err)
	}
	want := TableBegin + "\n" + DirectiveTable(caps) + TableEnd
	got := text[i : j+len(TableEnd)]
	if got == want {
		return
	}
	if os.Getenv("UPDATE_README") != "" {
		if err := os.WriteFile(path, []byte(text[:i]+want+text[j+len(TableEnd):]), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("README.md directive table rewritten")
		return
	}
	t.Fatalf("README.md's nginx directive table is stale: run `make nginx-table`")
}

func TestEveryRuleIsDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rules() {
		if seen[r.name] {
			t.Errorf("%s is in the table twice", r.name)
		}
		seen[r.name] = true
		if r.becomes == "" {
			t.Errorf("%s says nothing about what it becomes", r.name)
		}
		if (r.status == Carried) != (r.carry != nil) {
			t.Errorf("%s: carried rules have a carry function, others none", r.name)
		}
	}
}
