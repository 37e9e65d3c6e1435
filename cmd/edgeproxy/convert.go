package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/edgeproxy/edgeproxy/convert/nginx"
)

// convertCommand is `edgeproxy convert nginx [-o OUT.toml] NGINX.conf`
// (SPEC §2): exit 0 everything carried over, 3 something blocking was
// left out, 1 unreadable input.
func convertCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "nginx" {
		fmt.Fprintln(stderr, "usage: edgeproxy convert nginx [-o OUT.toml] NGINX.conf")
		return 2
	}
	fs := flag.NewFlagSet("edgeproxy convert nginx", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the TOML to `FILE` instead of stdout")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: edgeproxy convert nginx [-o OUT.toml] NGINX.conf")
		return 2
	}
	res, err := nginx.Convert(fs.Arg(0), nginx.Options{})
	if err != nil {
		var se *nginx.SyntaxError
		if errors.As(err, &se) {
			fmt.Fprintln(stderr, se.Error())
		} else {
			fmt.Fprintf(stderr, "edgeproxy convert nginx: %v\n", err)
		}
		return 1
	}
	for _, f := range res.Findings {
		fmt.Fprintln(stderr, f.String())
	}
	if *out == "" {
		if _, err := stdout.Write(res.TOML); err != nil {
			return 1
		}
	} else if err := os.WriteFile(*out, res.TOML, 0o644); err != nil {
		fmt.Fprintf(stderr, "edgeproxy convert nginx: %v\n", err)
		return 1
	}
	if res.Blocking() {
		return 3
	}
	return 0
}
