package proxy

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// limit_rate holds a 10 MiB download to its rate within ±10%.
func TestLimitRatePacesTheDownload(t *testing.T) {
	const size, rate = 10 << 20, 10 << 20 // 1 s
	chunk := make([]byte, 64<<10)
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for n := 0; n < size; n += len(chunk) {
			w.Write(chunk)
		}
	})
	addr := routeProxy(t, addrOf(up), RouteOptions{PathPrefix: "/", Upstream: "up", LimitRate: rate})
	start := time.Now()
	resp, err := testClient.Get("http://" + addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	el := time.Since(start)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	got := float64(size) / el.Seconds()
	t.Logf("10 MiB at limit_rate 10 MiB/s: %v, %.2f MiB/s", el, got/(1<<20))
	if got < 0.9*rate || got > 1.1*rate {
		t.Fatalf("rate %.2f MiB/s, want 10 ±10%%", got/(1<<20))
	}
}
