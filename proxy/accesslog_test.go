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
	o.Routes = []RouteOptions{{Name: "main", PathPrefix: "/", Upstream: "up"}, {Name: "dead", PathPrefix: "/dead", Upstream: "dead"}}
	addr, _ := startProxy(t, o)

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
