package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBasicAuthFileIsCheckedWithKeyAndLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("good", "# users\n\nann:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n"+
		"bob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/:a comment\r\ncid:{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=\n")
	write("plain", "ann:{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=\nbob:secret\n")
	write("crypt", "ann:rqXexS6ZhobKA\n")
	write("md5crypt", "ann:$1$salt$qJH7.N4xYta3aEG/dfqo/0\n")
	write("nocolon", "\n\njust-a-name\n")
	write("badsha", "ann:{SHA}notbase64!\n")
	write("badcost", "ann:$2y$99$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n")
	unreadable := filepath.Join(dir, "unreadable")
	write("unreadable", "ann:{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=\n")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	route := func(file, realm string) string {
		return "[upstreams.a]\nservers = [\"127.0.0.1:1\"]\n[[routes]]\npath_prefix = \"/\"\nupstream = \"a\"\n" +
			"basic_auth_file = \"" + file + "\"\nrealm = \"" + realm + "\"\n"
	}
	cfgPath := filepath.Join(dir, "f.toml")
	if _, err := Parse(cfgPath, []byte(route("good", "Staff"))); err != nil {
		t.Fatalf("good file refused: %v", err)
	}
	tests := []struct{ file, realm, want string }{
		{"plain", "", ":6:1: routes[0].basic_auth_file: plain: line 2: user \"bob\": unsupported"},
		{"crypt", "", "line 1: user \"ann\": unsupported"},
		{"md5crypt", "", "line 1: user \"ann\": unsupported"},
		{"nocolon", "", "nocolon: line 3: not \"user:hash\""},
		{"badsha", "", "badsha: line 1"},
		{"badcost", "", "badcost: line 1"},
		{"missing", "", "routes[0].basic_auth_file: missing: no such file"},
		{"good", "a\\u0001b", ":7:1: routes[0].realm: must not contain control characters"},
	}
	if os.Geteuid() != 0 { // root reads any file
		tests = append(tests, struct{ file, realm, want string }{"unreadable", "", "routes[0].basic_auth_file: unreadable: permission denied"})
	}
	for _, tt := range tests {
		_, err := Parse(cfgPath, []byte(route(tt.file, tt.realm)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.file, err, tt.want)
		}
	}
}
