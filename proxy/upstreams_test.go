package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestUnixSocketUpstream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "unix %s host=%s", r.URL.Path, r.Host)
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	o := testOptions()
	uo := testUpstreamOptions("unix:" + sock)
	uo.Host = HostUpstream
	o.Upstreams["up"] = uo
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)
	resp, body := get(t, "http://"+addr+"/x")
	if resp.StatusCode != 200 || body != "unix /x host=localhost" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// testCA makes a CA and a certificate it signs for names, as PEM files.
func testCA(t *testing.T, dir string, names ...string) (caFile string, cert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return caFile, cert
}

func TestHTTPSUpstreamWithSNIAndClientCertificate(t *testing.T) {
	dir := t.TempDir()
	caFile, cert := testCA(t, dir, "api.internal")
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	var mu sync.Mutex
	var sni []string
	var handshakes, resumed int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close") // the next request dials anew: its session must resume
		fmt.Fprintf(w, "tls client=%s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			sni = append(sni, h.ServerName)
			mu.Unlock()
			return nil, nil
		},
	}
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateActive {
			if tc, ok := c.(*tls.Conn); ok {
				mu.Lock()
				handshakes++
				if tc.ConnectionState().DidResume {
					resumed++
				}
				mu.Unlock()
			}
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	o := testOptions()
	uo := testUpstreamOptions("https://" + addrOf(srv)[len("https://"):])
	uo.TLS = TLSOptions{ServerName: "api.internal", CAFile: caFile,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	uo.ConnectTimeout = 10 * time.Second // the handshake counts too; -race on a busy machine is slow
	o.Upstreams["up"] = uo
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)
	for i := 0; i < 3; i++ {
		resp, body := get(t, "http://"+addr+"/")
		if resp.StatusCode != 200 || body != "tls client=api.internal" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sni) == 0 || sni[0] != "api.internal" {
		t.Errorf("SNI %q, want api.internal", sni)
	}
	if handshakes > 1 && resumed == 0 {
		t.Errorf("%d handshakes, none resumed a session", handshakes)
	}

	// A server whose certificate the CA did not sign is a 502.
	bad := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(bad.Close)
	o2 := testOptions()
	uo2 := testUpstreamOptions("https://" + addrOf(bad)[len("https://"):])
	uo2.TLS = TLSOptions{ServerName: "api.internal", CAFile: caFile}
	o2.Upstreams["up"] = uo2
	o2.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr2, _ := startProxy(t, o2)
	if resp, _ := get(t, "http://"+addr2+"/"); resp.StatusCode != 502 {
		t.Errorf("unverifiable upstream: %d, want 502", resp.StatusCode)
	}
}

// hashSet is a set of n servers as balance = "hash" sees them.
func hashSet(names ...string) *serverSet {
	set := &serverSet{}
	for _, n := range names {
		set.servers = append(set.servers, &server{addr: n, id: hashOf([]byte(n))})
	}
	return set
}

func TestConsistentHashSharesAndMoves(t *testing.T) {
	names := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"}
	all := func(int) bool { return true }
	const keys = 20000
	before := make([]int, keys)
	share := map[int]int{}
	set := hashSet(names...)
	for k := 0; k < keys; k++ {
		before[k] = pickRendezvous(set, hashOf([]byte(fmt.Sprint("client-", k))), all)
		share[before[k]]++
	}
	for i := range names {
		if got, want := float64(share[i]), float64(keys)/float64(len(names)); got < 0.85*want || got > 1.15*want {
			t.Errorf("server %d has %v keys, want %v ±15%%", i, got, want)
		}
	}
	// Server 2 leaves (or is down): only its keys move.
	without := func(i int) bool { return i != 2 }
	moved := 0
	for k := 0; k < keys; k++ {
		after := pickRendezvous(set, hashOf([]byte(fmt.Sprint("client-", k))), without)
		if after != before[k] {
			moved++
			if before[k] != 2 {
				t.Fatalf("key %d moved from server %d, which did not leave", k, before[k])
			}
		}
	}
	if moved != share[2] {
		t.Errorf("%d keys moved, want exactly server 2's %d", moved, share[2])
	}
	// A sixth server joins: it takes about 1/6, from every server.
	set6 := hashSet(append(names, "10.0.0.6:80")...)
	took := 0
	for k := 0; k < keys; k++ {
		if after := pickRendezvous(set6, hashOf([]byte(fmt.Sprint("client-", k))), all); after != before[k] {
			if after != 5 {
				t.Fatalf("key %d moved between old servers", k)
			}
			took++
		}
	}
	if want := keys / 6; took < want*85/100 || took > want*115/100 {
		t.Errorf("the new server took %d keys, want about %d", took, want)
	}
}

func TestHashBalanceThroughTheProxy(t *testing.T) {
	var servers []string
	for i := 0; i < 3; i++ {
		i := i
		up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, i) })
		servers = append(servers, addrOf(up))
	}
	o := testOptions()
	uo := testUpstreamOptions(servers...)
	uo.Balance, uo.HashKey = Hash, "$arg_user"
	o.Upstreams["up"] = uo
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)
	seen := map[string]bool{}
	for u := 0; u < 30; u++ {
		_, first := get(t, fmt.Sprintf("http://%s/?user=%d", addr, u))
		for i := 0; i < 3; i++ {
			if _, again := get(t, fmt.Sprintf("http://%s/?user=%d", addr, u)); again != first {
				t.Fatalf("user %d went to %s, then %s", u, first, again)
			}
		}
		seen[first] = true
	}
	if len(seen) != 3 {
		t.Errorf("30 users reached %d of 3 servers", len(seen))
	}
}

func TestRandomTwoPrefersTheLighterServer(t *testing.T) {
	set := hashSet("a", "b", "c")
	set.servers[0].inflight.Store(100)
	set.servers[1].inflight.Store(100)
	counts := map[int]int{}
	for i := 0; i < 3000; i++ {
		counts[pickRandomTwo(set, func(int) bool { return true })]++
	}
	// c is lighter than whichever server it is drawn with: it wins every
	// draw it is in, which is 2 in 3 of them.
	if counts[2] < 1800 || counts[2] > 2200 {
		t.Errorf("the idle server was picked %d of 3000 times, want about 2000", counts[2])
	}
	if n := pickRandomTwo(set, func(i int) bool { return i == 1 }); n != 1 {
		t.Errorf("with one usable server, got %d", n)
	}
}

// Re-resolution swaps in the new addresses, keeps the pools of those that
// did not change, and keeps the last good set when a lookup fails.
func TestResolveKeepsUnchangedServersAndLastGoodSet(t *testing.T) {
	var mu sync.Mutex
	answer := []string{"10.0.0.1", "10.0.0.2"}
	var fail error
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail != nil {
			return nil, fail
		}
		var out []netip.Addr
		for _, a := range answer {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
	uo := testUpstreamOptions("app.internal:8000")
	uo.ResolveInterval = time.Hour
	u, err := newUpstream("app", uo, time.Now, zap.NewNop(), nil, lookup)
	if err != nil {
		t.Fatal(err)
	}
	addrs := func() []string {
		var out []string
		for _, s := range u.set.Load().servers {
			out = append(out, s.addr)
		}
		return out
	}
	if got := fmt.Sprint(addrs()); got != "[10.0.0.1:8000 10.0.0.2:8000]" {
		t.Fatalf("servers %s", got)
	}
	kept := u.set.Load().servers[1]
	mu.Lock()
	answer = []string{"10.0.0.2", "10.0.0.3"}
	mu.Unlock()
	u.resolveAgain()
	if got := fmt.Sprint(addrs()); got != "[10.0.0.2:8000 10.0.0.3:8000]" {
		t.Fatalf("after a change: %s", got)
	}
	if u.set.Load().servers[0] != kept {
		t.Error("10.0.0.2 got a new server (and pool) though its address did not change")
	}
	mu.Lock()
	fail = fmt.Errorf("SERVFAIL")
	mu.Unlock()
	u.resolveAgain()
	if got := fmt.Sprint(addrs()); got != "[10.0.0.2:8000 10.0.0.3:8000]" || !u.resolveFailed.Load() {
		t.Fatalf("after a failed lookup: %s (failing %v), want the last good set", got, u.resolveFailed.Load())
	}
	mu.Lock()
	fail = nil
	mu.Unlock()
	u.resolveAgain()
	if u.resolveFailed.Load() {
		t.Error("still failing after a good lookup")
	}
}

// A host name through the system's resolver, end to end.
func TestHostNameUpstreamResolves(t *testing.T) {
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "named") })
	_, port, _ := net.SplitHostPort(addrOf(up))
	o := testOptions()
	uo := testUpstreamOptions("localhost:" + port)
	uo.ResolveInterval = time.Minute
	uo.Retries = 2 // localhost may also be ::1, where nothing listens
	o.Upstreams["up"] = uo
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, s := startProxy(t, o)
	if resp, body := get(t, "http://"+addr+"/"); resp.StatusCode != 200 || body != "named" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	snap := s.Snapshot()
	found := false
	for _, sv := range snap.Upstreams[0].Servers {
		found = found || sv.Addr == "127.0.0.1:"+port
	}
	if !found || snap.Upstreams[0].ResolveInterval != "1m0s" {
		t.Errorf("status shows %+v", snap.Upstreams[0])
	}
}
