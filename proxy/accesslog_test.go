package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func readLogLines(t *testing.T, a *AccessLog, path string) []map[string]any {
	t.Helper()
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestAccessLogOneJSONLinePerRequest(t *testing.T) {
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write([]byte(strings.Repeat("z", 100000)))
			return
		}
		io.WriteString(w, "hello")
	})
	path := filepath.Join(t.TempDir(), "access.log")
	al, err := NewAccessLog(AccessLogOptions{Path: path, BufferSize: 64 << 10, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	o := testOptions()
	o.AccessLog = al
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Upstreams["dead"] = testUpstreamOptions(closedPort(t))
	o.Routes = []RouteOptions{{Name: "main", PathPrefix: "/", Upstream: "up"}, {Name: "dead", PathPrefix: "/dead", Upstream: "dead"},
		{Name: "quiet", PathPrefix: "/healthz", Return: 200, NoAccessLog: true}}
	addr, _ := startProxy(t, o)

	get(t, "http://"+addr+"/healthz") // access_log = false: no line
	get(t, "http://"+addr+"/a?b=1", "X-Request-Id", "rid-1", "Host", "site.test")
	get(t, "http://"+addr+"/big")
	get(t, "http://"+addr+"/dead/x")
	rawExchange(t, addr, "GET\r\n\r\n")

	var lines []map[string]any
	waitFor(t, func() bool { lines = readLogLines(t, al, path); return len(lines) >= 4 }, 2*time.Second)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4: %v", len(lines), lines)
	}
	first := lines[0]
	for k, want := range map[string]any{
		"request_id": "rid-1", "client": "127.0.0.1", "method": "GET", "host": "site.test",
		"path": "/a?b=1", "status": 200.0, "bytes_out": 5.0, "route": "main", "upstream": addrOf(up),
	} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v", k, first[k], want)
		}
	}
	for _, k := range []string{"time", "duration_ms", "upstream_ms", "bytes_in"} {
		if _, ok := first[k]; !ok {
			t.Errorf("line lacks %s: %v", k, first)
		}
	}
	if lines[1]["bytes_out"] != 100000.0 {
		t.Errorf("streamed response bytes_out = %v", lines[1]["bytes_out"])
	}
	dead := lines[2]
	if dead["status"] != 502.0 || !strings.Contains(dead["error"].(string), "connect") {
		t.Errorf("failed request line: %v", dead)
	}
	if lines[3]["status"] != 400.0 || lines[3]["error"] == nil {
		t.Errorf("malformed request line: %v", lines[3])
	}
}

func TestAccessLogReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	al, err := NewAccessLog(AccessLogOptions{Path: path, BufferSize: 0, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {})
	o := testOptions()
	o.AccessLog = al
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)
	get(t, "http://"+addr+"/before")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := al.Reopen(); err != nil {
		t.Fatal(err)
	}
	get(t, "http://"+addr+"/after")
	al.Sync()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "/before") || !strings.Contains(string(cur), "/after") || strings.Contains(string(cur), "/before") {
		t.Errorf("rotated file %q, new file %q", old, cur)
	}
}

// zapLine is the line zap's JSON encoder writes for ex, with the settings
// the access log used before it appended lines itself: the format operators'
// log pipelines were built on.
func zapLine(t testing.TB, ex *exchange) string {
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey: "time", MessageKey: zapcore.OmitKey, LevelKey: zapcore.OmitKey, CallerKey: zapcore.OmitKey,
		StacktraceKey: zapcore.OmitKey, NameKey: zapcore.OmitKey,
		EncodeTime: zapcore.RFC3339NanoTimeEncoder, LineEnding: zapcore.DefaultLineEnding,
	})
	millis := func(d time.Duration) float64 { return float64(d/time.Microsecond) / 1000 }
	fields := []zap.Field{
		zap.ByteString("request_id", ex.requestID), zap.ByteString("client", ex.client),
		zap.ByteString("method", ex.method), zap.ByteString("host", ex.host), zap.ByteString("path", ex.target),
		zap.Int("status", ex.status), zap.Int64("bytes_in", ex.bytesIn), zap.Int64("bytes_out", ex.bytesOut),
		zap.Float64("duration_ms", millis(ex.end.Sub(ex.start))), zap.String("route", ex.route),
		zap.String("upstream", ex.upstreamAddr), zap.Float64("upstream_ms", millis(ex.upstreamDuration)),
	}
	if ex.cause != "" {
		fields = append(fields, zap.String("error", ex.cause))
	}
	if len(ex.cache) > 0 {
		fields = append(fields, zap.ByteString("cache", ex.cache))
	}
	buf, err := enc.EncodeEntry(zapcore.Entry{Time: ex.start}, fields)
	if err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// appendedLine is the line AccessLog.write hands to its sink.
func appendedLine(t testing.TB, ex *exchange) string {
	path := filepath.Join(t.TempDir(), "access.log")
	al, err := NewAccessLog(AccessLogOptions{Path: path, BufferSize: 4096, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	al.write(ex)
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAccessLogLineIsWhatZapWrote(t *testing.T) {
	start := time.Date(2026, 11, 26, 8, 37, 18, 120004000, time.UTC)
	for _, tc := range []struct {
		name           string
		target, host   string
		took, upstream time.Duration
		cause, cache   string
	}{
		{name: "plain", target: "/news/item?id=12345&lang=en", host: "news.example.com", took: 1234 * time.Microsecond, upstream: time.Millisecond},
		{name: "whole milliseconds", target: "/", host: "a", took: 2 * time.Second, upstream: 0},
		{name: "sub-microsecond", target: "/", host: "a", took: 999, upstream: 1500 * time.Nanosecond},
		{name: "trailing zeros", target: "/", host: "a", took: 1100 * time.Microsecond, upstream: 1010 * time.Microsecond},
		{name: "escapes", target: "/q\"uo\\te\t\x01\x7f/é/\xff\xfe/😀", host: "h\nx\r", took: 5, cause: "upstream: connect: \"refused\"", cache: "HIT"},
		{name: "negative clock step", target: "/", host: "a", took: -1500 * time.Microsecond, upstream: -time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &exchange{start: start, end: start.Add(tc.took), status: 502, bytesIn: 17, bytesOut: 1 << 40,
				route: "/news/", upstreamAddr: "127.0.0.1:9001", upstreamDuration: tc.upstream, cause: tc.cause}
			ex.requestID, ex.client, ex.method = []byte("c93266cb475fbb430000000000000001"), []byte("10.1.2.3"), []byte("GET")
			ex.host, ex.target, ex.cache = []byte(tc.host), []byte(tc.target), []byte(tc.cache)
			want, got := zapLine(t, ex), appendedLine(t, ex)
			if got != want {
				t.Errorf("line differs from zap's\n got %q\nwant %q", got, want)
			}
		})
	}
}

// FuzzAccessLogString: whatever bytes a client sends as a path or host,
// the line is escaped exactly as zap escapes it, so it stays one valid
// JSON line.
func FuzzAccessLogString(f *testing.F) {
	for _, s := range []string{"/", "/a?b=1", "\"\\\n\r\t\x00\x1f", "\xff\xfe\xfd", "é😀", "\xed\xa0\x80", "a\u2028b"} {
		f.Add(s)
	}
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{})
	f.Fuzz(func(t *testing.T, s string) {
		got := string(appendJSONString(nil, s))
		buf, err := enc.EncodeEntry(zapcore.Entry{}, []zap.Field{zap.String("k", s)})
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(strings.TrimPrefix(buf.String(), `{"k":"`), "\"}\n")
		if got != want {
			t.Fatalf("escaped %q as %q, zap as %q", s, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(`"`+got+`"`), &back); err != nil {
			t.Fatalf("not a JSON string: %q: %v", got, err)
		}
	})
}
