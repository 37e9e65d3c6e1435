package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeproxy/edgeproxy/config"
)

const unitFile = "../../deploy/edgeproxy.service"

// unitDirectives returns the unit's Key=value lines.
func unitDirectives(t *testing.T, unit string) map[string][]string {
	t.Helper()
	d := map[string][]string{}
	for _, l := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			d[k] = append(d[k], v)
		}
	}
	return d
}

// TestSystemdUnit checks the unit with systemd's own verifier and pins
// what the binary upgrade and the hardening depend on.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	d := unitDirectives(t, unit)
	for k, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "all", "ExecReload": "/bin/kill -HUP $MAINPID",
		"DynamicUser": "yes", "AmbientCapabilities": "CAP_NET_BIND_SERVICE", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "RuntimeDirectory": "edgeproxy",
	} {
		if got := d[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", k, got, want)
		}
	}
	// Each proxied connection holds a client and an upstream descriptor.
	if n, _ := strconv.Atoi(strings.Join(d["LimitNOFILE"], "")); n < 2*config.DefaultServer().MaxConns+1024 {
		t.Errorf("LimitNOFILE=%v is too low for max_conns = %d", d["LimitNOFILE"], config.DefaultServer().MaxConns)
	}
	if !strings.Contains(unit, "systemctl kill -s USR2 --kill-whom=main edgeproxy") {
		t.Errorf("the unit does not say how to upgrade the binary")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd); the unit was not verified")
	}
	// The verifier wants ExecStart's binary to exist: point it at the
	// one under test.
	path := filepath.Join(t.TempDir(), "edgeproxy.service")
	writeFile(t, filepath.Dir(path), "edgeproxy.service", strings.ReplaceAll(unit, "/usr/local/bin/edgeproxy", binary))
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestMakeInstall installs into a DESTDIR with another PREFIX: binary, unit
// pointing at it, logrotate snippet, example config, and a config.toml that
// passes -t and is not overwritten by the next install.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	dest := t.TempDir()
	bin := filepath.Join(t.TempDir(), "edgeproxy")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	install := func() {
		t.Helper()
		cmd := exec.Command("make", "-s", "install-files", "BIN="+bin, "DESTDIR="+dest, "PREFIX=/opt/edge")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install-files: %v\n%s", err, out)
		}
	}
	install()

	for path, mode := range map[string]os.FileMode{
		"opt/edge/bin/edgeproxy":                         0o755,
		"opt/edge/lib/systemd/system/edgeproxy.service":  0o644,
		"opt/edge/share/edgeproxy/coupons.example.jsonl": 0o644,
		"etc/edgeproxy/config.toml":                      0o644,
		"etc/edgeproxy/config.example.toml":              0o644,
		"etc/logrotate.d/edgeproxy":                      0o644,
	} {
		fi, err := os.Stat(filepath.Join(dest, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
		} else if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "opt/edge/lib/systemd/system/edgeproxy.service"))
	if d := unitDirectives(t, string(unit)); strings.Join(d["ExecStart"], "") != "/opt/edge/bin/edgeproxy -config /etc/edgeproxy/config.toml" {
		t.Errorf("installed unit: ExecStart=%v", d["ExecStart"])
	}
	rotate, _ := os.ReadFile(filepath.Join(dest, "etc/logrotate.d/edgeproxy"))
	if !regexp.MustCompile(`systemctl kill -s USR1 .*edgeproxy`).Match(rotate) {
		t.Errorf("logrotate snippet does not send SIGUSR1:\n%s", rotate)
	}

	// The installed config checks out once its absolute paths are read
	// under DESTDIR.
	confPath := filepath.Join(dest, "etc/edgeproxy/config.toml")
	conf, _ := os.ReadFile(confPath)
	if !strings.Contains(string(conf), `"/opt/edge/share/edgeproxy/coupons.example.jsonl"`) {
		t.Errorf("installed config does not point at the installed coupons")
	}
	staged := writeFile(t, t.TempDir(), "config.toml", strings.ReplaceAll(string(conf), `"/opt/edge/`, `"`+dest+`/opt/edge/`))
	if out, errOut, code := runBinary(t, "-t", "-config", staged); code != 0 {
		t.Errorf("installed config: %d %s %s", code, out, errOut)
	}

	// An operator's config survives the next install.
	if err := os.WriteFile(confPath, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	install()
	if conf, _ := os.ReadFile(confPath); string(conf) != "# mine\n" {
		t.Errorf("install overwrote config.toml: %q", conf)
	}

	// make install builds first.
	cmd := exec.Command("make", "-n", "install", "DESTDIR="+dest)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	// Under make test, the sub-make says "make[1]: Entering directory";
	// the first command is what counts.
	var first string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "make[") {
			first = l
			break
		}
	}
	if err != nil || !strings.HasPrefix(first, "go build") {
		t.Errorf("make -n install: %v\n%s", err, out)
	}
}
