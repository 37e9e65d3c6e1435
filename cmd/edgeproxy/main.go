// Command edgeproxy is the edge reverse proxy: see README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/edgeproxy/edgeproxy/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "coupons" {
		return couponsCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "convert" {
		return convertCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "purge" {
		return purgeCommand(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("edgeproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.toml", "configuration `FILE`")
	test := fs.Bool("t", false, "check the configuration and exit")
	verbose := fs.Bool("v", false, "with -t: print each upstream's servers as resolved")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage:\n"+
			"  edgeproxy [-config FILE]                   run the proxy\n"+
			"  edgeproxy -t [-v] [-config FILE]           check FILE and exit (-v: upstream servers as resolved)\n"+
			"  edgeproxy -version                         print the version\n"+
			"  edgeproxy coupons import -config FILE COUPONS.jsonl\n"+
			"  edgeproxy coupons delete -config FILE ID...\n"+
			"  edgeproxy coupons check [-repair] -config FILE\n"+
			"  edgeproxy convert nginx [-o OUT.toml] NGINX.conf\n"+
			"  edgeproxy purge [-prefix] -config FILE URL...   (or -all)\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "edgeproxy: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "edgeproxy %s\n", version)
		return 0
	}
	cfg, err := config.Load(*configPath)
	if *test {
		if err == nil {
			err = checkDeep(cfg)
		}
		if err == nil {
			err = checkProxy(cfg, *verbose, stdout)
		}
		if err != nil {
			printConfigErrors(stderr, err)
			return 1
		}
		fmt.Fprintln(stdout, "configuration OK")
		return 0
	}
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	return serve(cfg, stderr)
}

// printConfigErrors prints one error a line, as FILE:LINE:COL: message.
func printConfigErrors(w io.Writer, err error) {
	var es config.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}
