package cache

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/redis/rueidis"
)

func netDialer(timeout time.Duration) net.Dialer {
	return net.Dialer{Timeout: timeout, KeepAlive: time.Second}
}

// LoadTLS builds the client TLS settings for Redis: caFile "" trusts the
// system roots, serverName "" checks the certificate against the host
// dialled (each Sentinel, then the master it names).
func LoadTLS(caFile, serverName string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis.tls_ca_file %s: no PEM certificate in it", caFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// baseOption is what every client of ours shares: addresses, credentials,
// TLS and Sentinel. With SentinelMaster set, Addrs are the Sentinels.
func baseOption(o Options, name string) (rueidis.ClientOption, error) {
	opt := rueidis.ClientOption{
		InitAddress: o.Addrs,
		Username:    o.Username,
		Password:    o.Password,
		SelectDB:    o.DB,
		Dialer:      netDialer(o.DialTimeout),
		ClientName:  name,
	}
	var tc *tls.Config
	if o.TLS {
		var err error
		if tc, err = LoadTLS(o.TLSCAFile, o.TLSServerName); err != nil {
			return opt, err
		}
		opt.TLSConfig = tc
	}
	if o.SentinelMaster != "" {
		opt.Sentinel = rueidis.SentinelOption{
			MasterSet: o.SentinelMaster,
			Username:  o.SentinelUsername,
			Password:  o.SentinelPassword,
			Dialer:    netDialer(o.DialTimeout),
			// A missed +switch-master would otherwise bind us to a
			// demoted master until restart.
			TopologyRefreshInterval: 5 * time.Second,
			ClientName:              name,
		}
		if tc != nil {
			opt.Sentinel.TLSConfig = tc.Clone()
		}
	}
	return opt, nil
}
