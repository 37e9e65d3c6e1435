// Command gencoupons writes the bundled sample data set, testdata/coupons.jsonl:
// a few thousand coupons around Tokyo with the fields a news app shows.
// The output is deterministic; regenerate with
//
//	go run ./cmd/gencoupons > testdata/coupons.jsonl
package main

import (
	"bufio"
	"os"

	"github.com/edgeproxy/edgeproxy/internal/benchdata"
)

func main() {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for _, line := range benchdata.Generate(20261126, 3000, "tky-%05d") {
		w.Write(line)
		w.WriteByte('\n')
	}
}
