package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/edgeproxy/edgeproxy/config"
	"github.com/edgeproxy/edgeproxy/proxy"
)

// checkProxy builds the proxy's live state from cfg as a start would
// (routes compiled, files and pages read, host names resolved) without
// serving, so -t finds what only building finds. With verbose it prints
// each upstream's servers as resolved.
func checkProxy(cfg *config.Config, verbose bool, stdout io.Writer) error {
	o := proxyOptions(cfg)
	o.ResponseCache = noStore{} // routes compile as at a start; nothing is stored
	s, err := proxy.New(o)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Path, err)
	}
	if verbose {
		for _, u := range s.Snapshot().Upstreams {
			addrs := make([]string, 0, len(u.Servers))
			for _, sv := range u.Servers {
				addrs = append(addrs, sv.Addr)
			}
			fmt.Fprintf(stdout, "upstream %s (%s): %s\n", u.Name, u.Balance, strings.Join(addrs, ", "))
		}
	}
	return nil
}
