package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load("../config.example.toml")
	if err != nil {
		t.Fatalf("config.example.toml: %v", err)
	}
	if cfg.Server.Listen != "0.0.0.0:8080" || cfg.Admin.Listen != "127.0.0.1:9901" {
		t.Errorf("listen = %q, admin = %q", cfg.Server.Listen, cfg.Admin.Listen)
	}
	if got := cfg.Upstreams["news-service"].ResponseTimeout.Duration; got != 10*time.Second {
		t.Errorf("response_timeout = %v", got)
	}
	if cfg.Coupon == nil || cfg.Coupon.Source != "file" || !filepath.IsAbs(cfg.Coupon.File) {
		t.Errorf("coupon = %+v", cfg.Coupon)
	}
	if _, err := os.Stat(cfg.Coupon.File); err != nil {
		t.Errorf("coupon file: %v", err)
	}
}

// The example documents every key with its default: a file holding only
// the required keys must decode to the same values.
func TestExampleShowsDefaults(t *testing.T) {
	cfg, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	gotServer, wantServer := cfg.Server, DefaultServer()
	gotServer.TrustedProxies, wantServer.TrustedProxies = nil, nil
	if !reflect.DeepEqual(gotServer, wantServer) {
		t.Errorf("[server] differs from DefaultServer():\n%+v\n%+v", gotServer, wantServer)
	}
	if cfg.Log != DefaultLog() {
		t.Errorf("[log] differs from DefaultLog()")
	}
	u := *cfg.Upstreams["news-service"]
	d := DefaultUpstream()
	u.Servers, d.Servers = nil, nil
	if !reflect.DeepEqual(u, d) {
		t.Errorf("[upstreams.news-service] differs from DefaultUpstream():\n%+v\n%+v", u, d)
	}
	if cfg.Cache != DefaultCache() {
		t.Errorf("[cache] differs from DefaultCache()")
	}
	r, dr := cfg.Routes[0], DefaultRoute()
	dr.PathPrefix, dr.Upstream = r.PathPrefix, r.Upstream
	if !r.Match.Empty() || len(r.TryFiles) != 0 || len(r.ErrorPages) != 0 || len(r.Methods) != 0 || len(r.Access) != 0 {
		t.Errorf("routes[0] shows non-empty lists: %+v", r)
	}
	// Empty tables and lists decode as empty, not nil.
	r.RequestHeaders, r.ResponseHeaders, r.ErrorPages, r.Methods, r.Access = dr.RequestHeaders, dr.ResponseHeaders, dr.ErrorPages, dr.Methods, dr.Access
	r.Match, r.TryFiles = dr.Match, dr.TryFiles
	r.Cache.Bypass, r.Cache.ForwardHeaders = dr.Cache.Bypass, dr.Cache.ForwardHeaders
	if !reflect.DeepEqual(r, dr) {
		t.Errorf("routes[0] differs from DefaultRoute():\n%+v\n%+v", r, dr)
	}
	c, dc := *cfg.Coupon, DefaultCoupon()
	c.Source, c.File, c.FallbackUpstream = dc.Source, dc.File, dc.FallbackUpstream
	if c != dc {
		t.Errorf("[coupon] differs from DefaultCoupon():\n%+v\n%+v", c, dc)
	}
}

func TestMinimalConfigGetsDefaults(t *testing.T) {
	cfg, err := Parse("min.toml", []byte(`
[upstreams.a]
servers = ["127.0.0.1:1"]
[[routes]]
path_prefix = "/"
upstream = "a"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.MaxBodyBytes != 8<<20 || cfg.Upstreams["a"].Retries != 1 || cfg.Coupon != nil {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestErrorsNameKeyAndLine(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // each must appear in the error text
	}{
		{
			name: "unknown key",
			toml: "[server]\nlisten = \"127.0.0.1:8080\"\nlistne = \"x\"\n",
			want: []string{"f.toml:3:1: server.listne: unknown key"},
		},
		{
			name: "unknown table",
			toml: "[sever]\nlisten = \"x\"\n",
			want: []string{"f.toml:1:1: sever: unknown key"},
		},
		{
			name: "bare integer duration",
			toml: "[server]\n\nread_timeout = 5\n",
			want: []string{"f.toml:3:", "server.read_timeout", "duration string with a unit"},
		},
		{
			name: "bad duration",
			toml: "[server]\nread_timeout = \"5 parsecs\"\n",
			want: []string{"f.toml:2:", "invalid duration"},
		},
		{
			name: "wrong type",
			toml: "[server]\nmax_conns = \"many\"\n",
			want: []string{"f.toml:2", "max_conns"},
		},
		{
			name: "negative timeout and zero conns",
			toml: "[server]\nwrite_timeout = \"-1s\"\nmax_conns = 0\n",
			want: []string{"f.toml:2:1: server.write_timeout: must be a positive duration", "f.toml:3:1: server.max_conns: must be positive"},
		},
		{
			name: "route to undefined upstream",
			toml: "[upstreams.a]\nservers = [\"127.0.0.1:1\"]\n\n[[routes]]\npath_prefix = \"/\"\nupstream = \"a\"\n\n[[routes]]\npath_prefix = \"/b\"\nupstream = \"nope\"\n",
			want: []string{"f.toml:10:1: routes[1].upstream: names upstream \"nope\""},
		},
		{
			name: "malformed address and CIDR",
			toml: "[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n[upstreams.\"a\"]\nservers = [\"nohost\"]\n",
			want: []string{"server.trusted_proxies[0]", "not a valid CIDR", "f.toml:4:1: upstreams.a.servers[0]", "not host:port"},
		},
		{
			name: "duplicate listen",
			toml: "[server]\nlisten = \"127.0.0.1:8080\"\n[admin]\nlisten = \"127.0.0.1:8080\"\n",
			want: []string{"f.toml:4:1: admin.listen: must differ from server.listen"},
		},
		{
			name: "syntax error",
			toml: "[server\nlisten = 1\n",
			want: []string{"f.toml:2:", "table name"},
		},
		{
			name: "bad size",
			toml: "[server]\nmax_body_bytes = \"8 elephants\"\n",
			want: []string{"f.toml:2:", "invalid size"},
		},
		{
			name: "bad balance and host",
			toml: "[upstreams.a]\nservers = [\"127.0.0.1:1\"]\nbalance = \"random\"\nhost = \"bad host!\"\n",
			want: []string{"f.toml:3:1: upstreams.a.balance", "f.toml:4:1: upstreams.a.host"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tt.toml))
			if err == nil {
				t.Fatal("no error")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not Errors", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error text lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	_, err := Parse("f.toml", []byte("[server]\nread_timeout = 5\nbogus = 1\n[log]\nlevel = \"loud\"\n[upstreams.a]\nservers = []\n"))
	var es Errors
	if !errors.As(err, &es) || len(es) < 4 {
		t.Fatalf("want at least 4 errors, got %v", err)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "16KiB": 16 << 10, "8MiB": 8 << 20, "1GB": 1e9, "2k": 2048, "1 MiB": 1 << 20} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "MiB", "1.5MiB", "1XB", "99999999999999999999"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestRelativePathsResolveAgainstConfigFolder(t *testing.T) {
	cfg, err := Parse("/etc/edge/edge.toml", []byte("[log]\naccess_log = \"logs/access.log\"\n[coupon]\nsource = \"file\"\nfile = \"c.jsonl\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.AccessLog != "/etc/edge/logs/access.log" || cfg.Coupon.File != "/etc/edge/c.jsonl" {
		t.Errorf("paths not resolved: %q %q", cfg.Log.AccessLog, cfg.Coupon.File)
	}
}

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../config.example.toml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("[server]\nread_timeout = 5\n"))
	f.Add([]byte("[[routes]]\npath_prefix = \"/\"\n[upstreams.\"a\"]\nservers=[\"x:1\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not a non-empty Errors: %v", err)
			}
		}
	})
}

func TestPIDFile(t *testing.T) {
	cfg, err := Parse("/etc/edge/edge.toml", []byte("[server]\npid_file = \"run/edge.pid\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.PIDFile != "/etc/edge/run/edge.pid" {
		t.Errorf("pid_file not resolved against the config folder: %q", cfg.Server.PIDFile)
	}
	if d := DefaultServer().PIDFile; d != "" {
		t.Errorf("default pid_file %q, want none", d)
	}
	dir := t.TempDir()
	_, err = Parse(dir+"/f.toml", []byte("[server]\n\npid_file = \""+dir+"\"\n"))
	if err == nil || !strings.Contains(err.Error(), "f.toml:3:1: server.pid_file: must name a file") {
		t.Errorf("a folder as pid_file: %v", err)
	}
}
