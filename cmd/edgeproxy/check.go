package main

import (
	"context"
	"fmt"
	"io"

	"github.com/edgeproxy/edgeproxy/cache"
)

// checkCoupons runs `edgeproxy coupons check [-repair]` (SPEC §2, §11): one
// line "ID: problem" on stdout per coupon whose id key and cells disagree;
// exit 0 clean, 3 disagreements found. With -repair each is repaired after
// it is listed: exit 0 when all were, 1 on any error.
func checkCoupons(ctx context.Context, w *cache.Writer, repair bool, stdout, stderr io.Writer) int {
	if err := w.CheckPrecision(ctx); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	found, err := w.Check(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "checking coupons: %v\n", err)
		return 1
	}
	for _, d := range found {
		fmt.Fprintln(stdout, d.String())
	}
	switch {
	case len(found) == 0:
		fmt.Fprintln(stderr, "coupons check: id keys and cells agree")
		return 0
	case !repair:
		fmt.Fprintf(stderr, "coupons check: %d coupons disagree; -repair makes their cells agree with their id keys\n", len(found))
		return 3
	}
	failed := 0
	for _, d := range found {
		if err := w.Repair(ctx, d); err != nil {
			failed++
			fmt.Fprintf(stderr, "repairing %s: %v\n", d.ID, err)
		}
	}
	fmt.Fprintf(stderr, "coupons check: repaired %d of %d coupons\n", len(found)-failed, len(found))
	if failed > 0 {
		return 1
	}
	return 0
}
