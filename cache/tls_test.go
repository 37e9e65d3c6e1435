package cache

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+".pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a server certificate for dnsName (only that name) and its
// key; it returns their paths.
func (ca *testCA) issue(t *testing.T, dir, dnsName string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", pk)
	return certFile, keyFile
}

// tlsRedis is a redis-server with a plain port (for the test's own setup
// as the default user) and a TLS port whose certificate names only
// redis.test, with an ACL user edge/secret limited to the coupon keys.
func tlsRedis(t *testing.T) (plain *redistest.Server, tlsAddr string, ca *testCA) {
	dir := t.TempDir()
	ca = newCA(t, dir, "test-ca")
	certFile, keyFile := ca.issue(t, dir, "redis.test")
	addr := redistest.FreeAddr(t)
	tlsAddr = redistest.FreeAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	args := append(redistest.BaseArgs(t, addr),
		"--tls-port", tlsPort, "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", ca.file, "--tls-auth-clients", "no",
		"--user", "edge", "on", ">secret", "~coupon:*", "+@all")
	plain = redistest.StartArgs(t, addr, args...)
	if _, err := plain.Do("ACL", "WHOAMI"); err != nil {
		t.Fatal(err)
	}
	return plain, tlsAddr, ca
}

func tlsOptions(t *testing.T, addr, caFile, serverName string) Options {
	t.Helper()
	o := probeOptions(addr, 50*time.Millisecond, 500*time.Millisecond)
	o.Username, o.Password = "edge", "secret"
	o.TLS, o.TLSCAFile, o.TLSServerName = true, caFile, serverName
	return o
}

// Over TLS with an ACL user, coupons are read and the probe passes.
func TestTLSWithACLUser(t *testing.T) {
	plain, tlsAddr, ca := tlsRedis(t)
	w := newWriter(t, testOptions(plain.Addr))
	put(t, w, `{"id":"a","lat":1,"lon":1}`)
	s := newStore(t, tlsOptions(t, tlsAddr, ca.file, "redis.test"))
	if got, _, err := readID(s, "a"); err != nil || got != `{"id":"a","lat":1,"lon":1}` {
		t.Fatalf("read over TLS = %q %v", got, err)
	}
	waitWithin(t, 5*time.Second, "probe over TLS", s.StreamUp)
	put(t, w, `{"id":"a","lat":1,"lon":1,"v":2}`)
	waitValue(t, func() string { v, _, _ := readID(s, "a"); return v }, `{"id":"a","lat":1,"lon":1,"v":2}`, time.Second)
	// The writer (coupons import) speaks TLS with the same options.
	tw := newWriter(t, tlsOptions(t, tlsAddr, ca.file, "redis.test"))
	put(t, tw, `{"id":"b","lat":1,"lon":1}`)
	if v, _ := plain.Do("GET", "coupon:id:b"); v != `{"id":"b","lat":1,"lon":1}` {
		t.Fatalf("TLS writer wrote %q", v)
	}
}

// A wrong CA, a wrong server name or a wrong password: the store starts,
// reads fall back (ErrUnavailable), and the error is logged and kept for
// /readyz in words an operator can act on.
func TestTLSAndAuthFailuresAreClear(t *testing.T) {
	plain, tlsAddr, ca := tlsRedis(t)
	w := newWriter(t, testOptions(plain.Addr))
	put(t, w, `{"id":"a","lat":1,"lon":1}`)
	other := newCA(t, t.TempDir(), "other-ca")
	for _, tc := range []struct {
		name       string
		caFile     string
		serverName string
		password   string
		want       string
	}{
		{"wrong CA", other.file, "redis.test", "secret", "certificate signed by unknown authority"},
		{"wrong server name", ca.file, "", "secret", "x509: cannot validate certificate for 127.0.0.1"},
		{"wrong password", ca.file, "redis.test", "nope", "WRONGPASS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			o := tlsOptions(t, tlsAddr, tc.caFile, tc.serverName)
			o.Password = tc.password
			o.Logger = zap.New(core)
			s := newStore(t, o)
			if _, _, err := readID(s, "a"); !errors.Is(err, coupon.ErrUnavailable) {
				t.Fatalf("read = %v, want ErrUnavailable (fallback)", err)
			}
			if text, _ := s.LastError(); !strings.Contains(text, tc.want) {
				t.Fatalf("last error %q, want it to say %q", text, tc.want)
			}
			logged := false
			for _, e := range logs.All() {
				if err, ok := e.ContextMap()["error"].(string); ok && strings.Contains(err, tc.want) {
					logged = true
				}
			}
			if !logged {
				t.Fatalf("no log line says %q: %v", tc.want, logs.All())
			}
		})
	}
}

// A CA file without a certificate is a setup error, not a Redis error.
func TestTLSCAFileWithoutCertificateIsRefused(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testOptions("127.0.0.1:1")
	o.TLS, o.TLSCAFile = true, bad
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("New = %v, want a clear CA file error", err)
	}
}
