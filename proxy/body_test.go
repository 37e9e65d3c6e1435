package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bigBodySize is 1 GiB, or EDGEPROXY_BIG_BODY_MB megabytes. Under the race
// detector, which copies at about 70 MB/s on a CI machine, it is 256 MiB:
// still four times the heap growth the test allows.
func bigBodySize(t *testing.T) int64 {
	if s := os.Getenv("EDGEPROXY_BIG_BODY_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return int64(n) << 20
	}
	if raceEnabled {
		return 256 << 20
	}
	return 1 << 30
}

// patternReader yields n bytes of a repeating pattern without holding them.
type patternReader struct{ left int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	p.left -= int64(len(b))
	return len(b), nil
}

// peakHeap samples the process's heap while f runs.
func peakHeap(f func()) (peak uint64) {
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for !stop.Load() {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak {
				peak = ms.HeapInuse
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	f()
	stop.Store(true)
	<-done
	return peak
}

func vmRSS() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "VmHWM:") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return "?"
}

func TestHugeBodiesStreamWithBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves a large body both ways")
	}
	size := bigBodySize(t)
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				w.WriteHeader(500)
				return
			}
			fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.Copy(w, &patternReader{left: size})
	})
	o := testOptions() // server max_body_bytes stays 8 MiB: the route lifts it
	uo := testUpstreamOptions(addrOf(up))
	uo.ResponseTimeout = 30 * time.Second
	o.Upstreams["up"] = uo
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", MaxBodyBytes: Unlimited}}
	o.ReadTimeout, o.WriteTimeout = 5*time.Minute, 5*time.Minute
	addr, _ := startProxy(t, o)

	h := sha256.New()
	io.Copy(h, &patternReader{left: size})
	want := fmt.Sprintf("%d %s", size, hex.EncodeToString(h.Sum(nil)))

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	for _, chunked := range []bool{false, true} {
		peak := peakHeap(func() {
			req, _ := http.NewRequest("POST", "http://"+addr+"/up", io.NopCloser(&patternReader{left: size}))
			if !chunked {
				req.ContentLength = size
			}
			// Not testClient: its 15 s would make this a test of speed.
			resp, err := (&http.Client{Timeout: 3 * time.Minute}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != want {
				t.Errorf("upload (chunked=%v): upstream got %q, want %q", chunked, b, want)
			}
		})
		t.Logf("upload %d MiB (chunked=%v): peak heap in use %d MiB (before %d MiB), %s", size>>20, chunked, peak>>20, base.HeapInuse>>20, vmRSS())
		if peak > base.HeapInuse+64<<20 {
			t.Errorf("heap grew by %d MiB while streaming an upload", (peak-base.HeapInuse)>>20)
		}
	}

	peak := peakHeap(func() {
		resp, err := http.Get("http://" + addr + "/down")
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			t.Errorf("download: %d bytes, %v", n, err)
		}
	})
	t.Logf("download %d MiB: peak heap in use %d MiB (before %d MiB), %s", size>>20, peak>>20, base.HeapInuse>>20, vmRSS())
	if peak > base.HeapInuse+64<<20 {
		t.Errorf("heap grew by %d MiB while streaming a download", (peak-base.HeapInuse)>>20)
	}
}

func TestExpect100Continue(t *testing.T) {
	var rec recorder
	up := upstreamServer(t, rec.handler(nil))
	addr, _ := oneRoute(t, testUpstreamOptions(addrOf(up)))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue before the body, got %q %v", line, err)
	}
	br.ReadString('\n') // blank line after the interim response
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || rec.last(t).body != "hello" {
		t.Errorf("status %d, upstream body %q", resp.StatusCode, rec.last(t).body)
	}
	if rec.last(t).header.Get("Expect") != "" {
		t.Errorf("Expect forwarded after the proxy answered it")
	}
}

func TestRequestLimits(t *testing.T) {
	var rec recorder
	up := upstreamServer(t, rec.handler(nil))
	o := testOptions()
	o.MaxBodyBytes = 1000
	o.BufferBodyBytes = 100
	o.MaxHeaderBytes = 4096
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)

	chunk := func(n int) string { return fmt.Sprintf("%x\r\n%s\r\n", n, strings.Repeat("b", n)) }
	tests := []struct {
		name, req string
		status    int
	}{
		{"body over the limit by length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n" + strings.Repeat("a", 1001), 413},
		{"body at the limit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n" + strings.Repeat("a", 1000), 200},
		{"chunked body over the limit", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(600) + chunk(600) + "0\r\n\r\n", 413},
		{"chunked body under the limit", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunk(300) + chunk(300) + "0\r\n\r\n", 200},
		{"headers over the limit", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("x", 5000) + "\r\n\r\n", 431},
		{"malformed request line", "GET\r\n\r\n", 400},
		{"malformed header", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400},
		{"bad content length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := rawExchange(t, addr, tt.req)
			want := fmt.Sprintf("HTTP/1.1 %d ", tt.status)
			if !strings.HasPrefix(out, want) {
				t.Errorf("got %.80q, want %q", out, want)
			}
		})
	}
}

func TestSlowClientIsCutOffWhileOthersAreServed(t *testing.T) {
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	o := testOptions()
	o.ReadTimeout = 300 * time.Millisecond
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ")
	start := time.Now()
	for i := 0; i < 5; i++ {
		if resp, body := get(t, "http://"+addr+"/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("other client: %d %q", resp.StatusCode, body)
		}
	}
	slow.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(slow)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("slow client held its connection for %v; read_timeout is 300ms", took)
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
		t.Errorf("slow client got %.60q", b)
	}
}

// TestLargeAnswersRelayedWhole: answers larger than the relay buffer come
// through byte for byte, fixed-length, chunked in pieces of odd sizes and
// delimited by the upstream's close, each followed by a small answer on
// the same client connection, which shows that each one ended where its
// framing said.
func TestLargeAnswersRelayedWhole(t *testing.T) {
	const size = 3*relayBufferSize + 12345
	body, _ := io.ReadAll(&patternReader{left: size})
	up := pathUpstream(t, func(c net.Conn, path string) bool {
		switch path {
		case "/fixed":
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
			c.Write(body)
		case "/chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			rest := body
			for i, step := 0, 1; len(rest) > 0; i++ {
				n := min(len(rest), step)
				fmt.Fprintf(c, "%x\r\n%s\r\n", n, rest[:n])
				rest = rest[n:]
				step = []int{1, 1000, relayBufferSize + 1, 77, 3 * relayBufferSize}[i%5]
			}
			io.WriteString(c, "0\r\n\r\n")
		case "/close":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
			c.Write(body)
			return false
		case "/small":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall")
		}
		return true
	})
	addr, _ := oneRoute(t, testUpstreamOptions(up))

	k := dialKeepAlive(t, addr)
	for _, path := range []string{"/fixed", "/chunked", "/close"} {
		if status, got := k.get(t, path); status != 200 || got != string(body) {
			t.Errorf("GET %s: %d, %d bytes (want %d), the same bytes: %v", path, status, len(got), size, got == string(body))
		}
		if _, got := k.get(t, "/small"); got != "small" {
			t.Errorf("after GET %s: the next answer on the connection was %q", path, got)
		}
	}
}
