package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// rawCapture is an upstream that records every request it reads, as soon
// as it has read it: a pooled connection stays open after the answer.
type rawCapture struct {
	mu   sync.Mutex
	seen []string
}

func (rc *rawCapture) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		rc.mu.Lock()
		rc.seen = append(rc.seen, req.Method+" "+req.RequestURI+" body="+string(body)+"\n")
		rc.mu.Unlock()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

func (rc *rawCapture) requests() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return strings.Join(rc.seen, "")
}

// TestSmugglingAttemptsAreRefused sends each ambiguous framing of RFC 9112
// §6.3 and §11.2; each must get a 400 with the connection closed, and the
// upstream must never see a request from it.
func TestSmugglingAttemptsAreRefused(t *testing.T) {
	tests := []struct{ name, req string }{
		{"content-length and transfer-encoding", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"transfer-encoding then content-length", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"},
		{"duplicate content-length differing", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc"},
		{"duplicate content-length equal", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
		{"content-length list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc"},
		{"content-length with sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc"},
		{"content-length negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"},
		{"content-length hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc"},
		{"transfer-encoding not chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc"},
		{"transfer-encoding chunked not last", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
		{"transfer-encoding gzip then chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"transfer-encoding twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"transfer-encoding with space before colon", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
		{"transfer-encoding obfuscated value", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nabc\r\n0\r\n\r\n"},
		{"chunk without CRLF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"},
		{"obs-fold tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n"},
		{"bare LF in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n"},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rX-B: b\r\n\r\n"},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n"},
		{"NUL in name", "GET / HTTP/1.1\r\nHost: h\r\nX-\x00A: a\r\n\r\n"},
		{"space in name", "GET / HTTP/1.1\r\nHost: h\r\nX A: a\r\n\r\n"},
		{"empty name", "GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n"},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{"no host in HTTP/1.1", "GET / HTTP/1.1\r\nX-A: a\r\n\r\n"},
		{"over-long request line", "GET /" + strings.Repeat("a", 20000) + " HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"control character in target", "GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"bad version", "GET / HTTP/9.9\r\nHost: h\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rc rawCapture
			up := rawUpstream(t, rc.serve)
			addr, _ := oneRoute(t, testUpstreamOptions(up))
			out := rawExchange(t, addr, tt.req)
			want := "HTTP/1.1 400 "
			switch tt.name {
			case "over-long request line":
				want = "HTTP/1.1 431 "
			case "bad version":
				want = "HTTP/1.1 505 "
			}
			if !strings.HasPrefix(out, want) {
				t.Errorf("got %.120q; want %q", out, want)
			}
			if n := strings.Count(out, "HTTP/1.1 "); n != 1 {
				t.Errorf("%d responses on the connection; it must close after the refusal", n)
			}
			if got := rc.requests(); got != "" {
				t.Errorf("upstream received %q", got)
			}
		})
	}
}
