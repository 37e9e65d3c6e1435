package proxy

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"
)

// Apache's documented examples (misc/password_encryptions): the password
// of each is "myPassword".
const (
	apacheApr1   = "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"
	apacheSHA    = "{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE="
	apacheBcrypt = "$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC"
	apacheCrypt  = "rqXexS6ZhobKA"
)

func writeHtpasswd(t testing.TB, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func basicValue(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func bcryptEntry(t testing.TB, prefix, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return prefix + string(h[4:]) // the same algorithm under each of its names
}

func shaEntry(password string) string {
	sum := sha1.Sum([]byte(password))
	return "{SHA}" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestApr1MatchesKnownVectors(t *testing.T) {
	// From openssl passwd -apr1 -salt Xy7.aB/9, and Apache's example.
	vectors := []struct{ password, hash string }{
		{"", "$apr1$Xy7.aB/9$f7QwgU7bG50/8DsIl7bK.1"},
		{"a", "$apr1$Xy7.aB/9$2gNFuzVT.P4OUapk7fJxT1"},
		{"password", "$apr1$Xy7.aB/9$X6LWd1qv93r9aBUJxDwBq1"},
		{"a much longer password than sixteen bytes, over 32 too", "$apr1$Xy7.aB/9$jfEMZV7mQ1X6cobS.kt1g/"},
		{"päss:wörd", "$apr1$Xy7.aB/9$2ptqb6N70AexUnyOLl61j."},
		{"myPassword", apacheApr1},
	}
	for _, v := range vectors {
		h, err := parsePasswordHash(v.hash)
		if err != nil {
			t.Fatalf("%s: %v", v.hash, err)
		}
		if !h.matches([]byte(v.password)) {
			t.Errorf("%q does not match %s", v.password, v.hash)
		}
		if h.matches([]byte(v.password + "x")) {
			t.Errorf("%q+x matches %s", v.password, v.hash)
		}
	}
}

func TestHtpasswdFormats(t *testing.T) {
	file := writeHtpasswd(t,
		"# comment", "",
		"y:"+bcryptEntry(t, "$2y$", "py", bcrypt.MinCost),
		"a:"+bcryptEntry(t, "$2a$", "pa", bcrypt.MinCost),
		"b:"+bcryptEntry(t, "$2b$", "pb", bcrypt.MinCost)+":comment after the hash",
		"s:"+shaEntry("ps")+"\r",
		"m:"+apacheApr1,
		"apache-bcrypt:"+apacheBcrypt,
		"apache-sha:"+apacheSHA,
		"y:"+shaEntry("second line of y is ignored"),
	)
	h, err := loadHtpasswd(file)
	if err != nil {
		t.Fatal(err)
	}
	for user, password := range map[string]string{"y": "py", "a": "pa", "b": "pb", "s": "ps", "m": "myPassword",
		"apache-bcrypt": "myPassword", "apache-sha": "myPassword"} {
		hash, ok := h.users[user]
		if !ok {
			t.Errorf("user %s not loaded", user)
			continue
		}
		if !hash.matches([]byte(password)) || hash.matches([]byte(password+"!")) || hash.matches(nil) {
			t.Errorf("user %s: right password refused or wrong one accepted", user)
		}
	}
	if h.dummy.kind() != "bcrypt-4" {
		t.Errorf("dummy is %s, want the most common kind bcrypt-4", h.dummy.kind())
	}
}

func TestHtpasswdRefusesOtherFormatsNamingFileAndLine(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"ann:" + apacheCrypt, `line 2: user "ann": unsupported password hash`},
		{"ann:plaintext", `line 2: user "ann": unsupported password hash`},
		{"ann:{PLAIN}secret", `line 2: user "ann": unsupported password hash`},
		{"ann:$1$salt$qJH7.N4xYta3aEG/dfqo/0", `unsupported password hash`},
		{"ann:{SSHA}abcd", `unsupported password hash`},
		{"ann", `line 2: not "user:hash"`},
		{":" + apacheSHA, "line 2: empty user name"},
		{"ann:{SHA}xyz", "malformed {SHA}"},
		{"ann:$apr1$toolongsalt$HqJZimcKQFAMYayBlzkrA/", "malformed $apr1$"},
		{"ann:$apr1$r31.....$short", "malformed $apr1$"},
		{"ann:$2y$05$tooshort", "malformed bcrypt"},
	} {
		file := writeHtpasswd(t, "ok:"+apacheSHA, tt.line)
		_, err := newBasicAuthStep(file, "")
		if err == nil || !strings.Contains(err.Error(), file+" line 2") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v lacks file, line or %q", tt.line, err, tt.want)
		}
	}
	if _, err := newBasicAuthStep(filepath.Join(t.TempDir(), "missing"), ""); err == nil {
		t.Error("missing file accepted")
	}
}

// authProxy serves one route guarded by file, before a recording upstream.
func authProxy(t *testing.T, file, realm string) (addr string, s *Server, o Options, rec *recorder) {
	rec = &recorder{}
	up := upstreamServer(t, rec.handler(func(w http.ResponseWriter) { _, _ = w.Write([]byte("secret")) }))
	o = testOptions()
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", BasicAuthFile: file, Realm: realm}}
	addr, s = startProxy(t, o)
	return addr, s, o, rec
}

func TestBasicAuthAnswers401WithChallenge(t *testing.T) {
	file := writeHtpasswd(t, "ann:"+apacheSHA, "bob:"+bcryptEntry(t, "$2y$", "bobs secret", bcrypt.MinCost), "cid:"+apacheApr1)
	addr, _, _, rec := authProxy(t, file, "")
	url := "http://" + addr + "/p"

	for _, c := range []struct{ user, password string }{{"ann", "myPassword"}, {"bob", "bobs secret"}, {"cid", "myPassword"}} {
		value := basicValue(c.user, c.password)
		resp, body := get(t, url, "Authorization", value)
		if resp.StatusCode != 200 || body != "secret" {
			t.Fatalf("%s: status %d body %q", c.user, resp.StatusCode, body)
		}
		if got := rec.last(t).header.Values("Authorization"); len(got) != 1 || got[0] != value {
			t.Errorf("%s: upstream got Authorization %q, want it unchanged", c.user, got)
		}
	}
	n := rec.count()

	refused := map[string][]string{
		"none":                    nil,
		"wrong password":          {"Authorization", basicValue("ann", "wrong")},
		"unknown user":            {"Authorization", basicValue("zed", "myPassword")},
		"user case differs":       {"Authorization", basicValue("Ann", "myPassword")},
		"empty user":              {"Authorization", basicValue("", "myPassword")},
		"other scheme":            {"Authorization", "Bearer " + base64.StdEncoding.EncodeToString([]byte("ann:myPassword"))},
		"scheme only":             {"Authorization", "Basic"},
		"scheme and space":        {"Authorization", "Basic "},
		"not base64":              {"Authorization", "Basic !!!!"},
		"no colon":                {"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("annmyPassword"))},
		"empty value":             {"Authorization", ""},
		"two fields":              {"Authorization", basicValue("ann", "myPassword"), "Authorization", basicValue("ann", "myPassword")},
		"password with trailer":   {"Authorization", basicValue("ann", "myPassword\x00")},
		"scheme glued to payload": {"Authorization", "Basic" + base64.StdEncoding.EncodeToString([]byte("ann:myPassword"))},
	}
	for name, hdr := range refused {
		resp, _ := get(t, url, hdr...)
		if resp.StatusCode != 401 {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
		if got := resp.Header.Values("Www-Authenticate"); len(got) != 1 || got[0] != `Basic realm="Restricted"` {
			t.Errorf("%s: WWW-Authenticate %q", name, got)
		}
	}
	if rec.count() != n {
		t.Errorf("upstream saw %d refused requests", rec.count()-n)
	}

	// The scheme in any case, spaces around the payload, padding optional.
	raw := base64.RawStdEncoding.EncodeToString([]byte("ann:myPassword"))
	for _, v := range []string{"basic " + raw, "BASIC  " + raw + "  ", "Basic " + raw + "=="[:(4-len(raw)%4)%4]} {
		if resp, _ := get(t, url, "authorization", v); resp.StatusCode != 200 {
			t.Errorf("%q: status %d", v, resp.StatusCode)
		}
	}
}

func TestBasicAuthRealmIsQuoted(t *testing.T) {
	file := writeHtpasswd(t, "ann:"+apacheSHA)
	addr, _, _, _ := authProxy(t, file, `Staff "only" \ here`)
	resp, _ := get(t, "http://"+addr+"/")
	if got := resp.Header.Get("Www-Authenticate"); resp.StatusCode != 401 || got != `Basic realm="Staff \"only\" \\ here"` {
		t.Fatalf("status %d, challenge %q", resp.StatusCode, got)
	}
}

func TestBasicAuthChallengeSurvivesErrorPage(t *testing.T) {
	file := writeHtpasswd(t, "ann:"+apacheSHA)
	page := filepath.Join(t.TempDir(), "401.html")
	if err := os.WriteFile(page, []byte("<p>who are you?</p>"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {})
	o := testOptions()
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", BasicAuthFile: file, ErrorPages: map[int]string{401: page}}}
	addr, _ := startProxy(t, o)
	resp, body := get(t, "http://"+addr+"/")
	if resp.StatusCode != 401 || body != "<p>who are you?</p>" || resp.Header.Get("Www-Authenticate") != `Basic realm="Restricted"` {
		t.Fatalf("status %d, body %q, challenge %q", resp.StatusCode, body, resp.Header.Get("Www-Authenticate"))
	}
}

func TestBasicAuthFileIsReadAgainOnReload(t *testing.T) {
	file := writeHtpasswd(t, "ann:"+apacheSHA)
	addr, s, o, _ := authProxy(t, file, "")
	url := "http://" + addr + "/"
	if resp, _ := get(t, url, "Authorization", basicValue("ann", "myPassword")); resp.StatusCode != 200 {
		t.Fatalf("before reload: %d", resp.StatusCode)
	}
	if err := os.WriteFile(file, []byte("ann:"+shaEntry("new password")+"\nbob:"+apacheApr1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Until the reload, the file read at load still decides.
	if resp, _ := get(t, url, "Authorization", basicValue("bob", "myPassword")); resp.StatusCode != 401 {
		t.Fatalf("new user let in before the reload: %d", resp.StatusCode)
	}
	if err := s.Reload(o); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, password string
		want           int
	}{{"ann", "myPassword", 401}, {"ann", "new password", 200}, {"bob", "myPassword", 200}} {
		if resp, _ := get(t, url, "Authorization", basicValue(c.user, c.password)); resp.StatusCode != c.want {
			t.Errorf("after reload, %s/%s: %d, want %d", c.user, c.password, resp.StatusCode, c.want)
		}
	}
	// A file broken since is refused by Reload; the running one stays.
	if err := os.WriteFile(file, []byte("ann:plaintext\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(o); err == nil || !strings.Contains(err.Error(), file+" line 1") {
		t.Fatalf("bad file on reload: %v", err)
	}
	if resp, _ := get(t, url, "Authorization", basicValue("bob", "myPassword")); resp.StatusCode != 200 {
		t.Errorf("after a refused reload: %d", resp.StatusCode)
	}
}

// TestBasicAuthTimingTellsNothing: with bcrypt, a right password, a wrong
// one and an unknown user each cost one bcrypt check. Medians of
// interleaved runs are compared: the bcrypt work (milliseconds) dwarfs
// everything else, so the bounds hold on a loaded machine; a check that
// skipped the hash for unknown users would take microseconds.
func TestBasicAuthTimingTellsNothing(t *testing.T) {
	const cost = 8 // about 15 ms a check
	for _, kind := range []string{"bcrypt", "apr1"} {
		var lines []string
		for _, u := range []string{"ann", "bob", "cid"} {
			if kind == "bcrypt" {
				lines = append(lines, u+":"+bcryptEntry(t, "$2y$", "pw-"+u, cost))
			} else {
				lines = append(lines, u+":"+apacheApr1)
			}
		}
		step, err := newBasicAuthStep(writeHtpasswd(t, lines...), "")
		if err != nil {
			t.Fatal(err)
		}
		password := "pw-ann"
		if kind == "apr1" {
			password = "myPassword"
		}
		cases := []struct {
			name, value string
			pass        bool
		}{
			{"right", basicValue("ann", password), true},
			{"wrong password", basicValue("ann", password+"x"), false},
			{"unknown user", basicValue("nobody", password), false},
		}
		rounds := 9
		if kind == "apr1" {
			rounds = 41 // 1,000 MD5 rounds are quick: more samples
		}
		times := make([][]time.Duration, len(cases))
		var ctx fasthttp.RequestCtx
		ex := &exchange{}
		for r := 0; r < rounds; r++ {
			for i, c := range cases {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.Header.Set("Authorization", c.value)
				start := time.Now()
				answered := step.onRequest(&ctx, ex)
				times[i] = append(times[i], time.Since(start))
				if answered == c.pass {
					t.Fatalf("%s %s: answered %v", kind, c.name, answered)
				}
			}
		}
		median := func(d []time.Duration) time.Duration {
			slices.Sort(d)
			return d[len(d)/2]
		}
		right := median(times[0])
		for i := 1; i < len(cases); i++ {
			m := median(times[i])
			t.Logf("%s: %s %v, right %v", kind, cases[i].name, m, right)
			if m < right/3 || m > right*3 {
				t.Errorf("%s: %s takes %v, a right password %v", kind, cases[i].name, m, right)
			}
		}
	}
}

func FuzzBasicAuth(f *testing.F) {
	for _, s := range []string{basicValue("ann", "myPassword"), "Basic", "Basic ", "basic YW5uOg", "Basic Og==",
		"Basic =", "Basic YW5u\x00", "Bearer x", "Basic  YTpi  ", "Basic YTpi==="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		user, password, buf, ok := basicCredentials([]byte("pre"), value)
		if string(buf[:3]) != "pre" {
			t.Fatalf("scratch prefix overwritten: %q", buf)
		}
		if !ok {
			return
		}
		if len(value) < 6 || !strings.EqualFold(string(value[:6]), "basic ") {
			t.Fatalf("%q accepted without the Basic scheme", value)
		}
		if strings.Contains(string(user), ":") {
			t.Fatalf("user %q holds a colon", user)
		}
		// What was decoded is the payload's base64, padded or not.
		payload := strings.Trim(string(value[6:]), " \t")
		want, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			want, err = base64.RawStdEncoding.DecodeString(payload)
		}
		if err != nil || string(user)+":"+string(password) != string(want) {
			t.Fatalf("%q decoded to %q:%q, want %q (%v)", value, user, password, want, err)
		}
	})
}
