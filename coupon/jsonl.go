package coupon

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// maxLine bounds one JSONL line (one coupon).
const maxLine = 1 << 20

// ReadJSONL parses one coupon per line and calls fn with each, numbered
// from 1; blank lines are skipped. A line that is not a valid coupon is
// passed with its error and a zero Coupon. fn's error stops the reading.
func ReadJSONL(r io.Reader, fn func(line int, c Coupon, err error) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		c, err := Parse(bytes.Clone(b))
		if err := fn(line, c, err); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}
