package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// serverSpec is one entry of an upstream's servers (SPEC §9): "host:port",
// "unix:/path/to.sock", "https://host[:port]" or "http://host:port".
type serverSpec struct {
	network string // "tcp" or "unix"
	host    string // name or address; the socket path for unix
	port    string
	tls     bool
}

func parseServerSpec(s string) (serverSpec, error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" {
			return serverSpec{}, fmt.Errorf("%q: unix: needs a socket path", s)
		}
		return serverSpec{network: "unix", host: path}, nil
	}
	spec := serverSpec{network: "tcp"}
	rest := s
	switch {
	case strings.HasPrefix(s, "https://"):
		spec.tls, rest = true, strings.TrimPrefix(s, "https://")
	case strings.HasPrefix(s, "http://"):
		rest = strings.TrimPrefix(s, "http://")
	}
	rest = strings.TrimSuffix(rest, "/")
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		if !spec.tls && !strings.HasPrefix(s, "http://") {
			return serverSpec{}, fmt.Errorf("%q is not host:port", s)
		}
		host, port = strings.Trim(rest, "[]"), "80"
		if spec.tls {
			port = "443"
		}
	}
	spec.host, spec.port = host, port
	return spec, nil
}

// isName reports whether the host is a name to resolve, not an address.
func (s serverSpec) isName() bool {
	if s.network != "tcp" {
		return false
	}
	_, err := netip.ParseAddr(s.host)
	return err != nil
}

// hostPort is the spec's "host:port" as written (the Host header and
// TLS name for host = "upstream").
func (s serverSpec) hostPort() string {
	if s.network == "unix" {
		return "localhost"
	}
	return net.JoinHostPort(s.host, s.port)
}

// TLSOptions configure https:// servers.
type TLSOptions struct {
	ServerName         string // SNI and verification name; default the server's host
	CAFile             string // default: the system's roots
	CertFile, KeyFile  string // client certificate
	InsecureSkipVerify bool
}

// clientTLS builds the TLS config shared by an upstream's https servers;
// one session cache per upstream lets reconnects resume sessions.
func clientTLS(o TLSOptions) (*tls.Config, error) {
	c := &tls.Config{
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // an operator's explicit choice
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
		MinVersion:         tls.VersionTLS12,
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file %s: no PEM certificate in it", o.CAFile)
		}
		c.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_cert_file/tls_key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
