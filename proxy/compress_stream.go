package proxy

import (
	"io"

	"github.com/valyala/fasthttp"
)

// streamReadSize is the most read from the upstream at once. A fast
// upstream fills it (good ratio); a slow one, an SSE source, returns each
// event on its own read, which becomes its own flushed chunk.
const streamReadSize = 32 << 10

var _ fasthttp.ReadCloserWithError = (*coder)(nil)

// startStream makes z the body stream in place of the upstream body src,
// which z now owns: z's CloseWithError closes it, exactly once.
// remaining is the upstream's Content-Length, -1 when unknown.
func (z *coder) startStream(src responseBody, remaining int64) {
	if z.in == nil {
		z.in = make([]byte, streamReadSize)
	}
	z.src = src
	z.remaining = remaining
}

// Read hands on compressed bytes. Each upstream read is compressed and
// flushed at once (not when a compressor block fills), and the server
// writes each Read as a chunk and flushes it: an event the upstream sends
// reaches the client without waiting for the next.
func (z *coder) Read(p []byte) (int, error) {
	if err := z.refill(); err != nil {
		return 0, err
	}
	n := copy(p, z.pending)
	z.pending = z.pending[n:]
	z.sent += int64(n)
	return n, nil
}

// SupportsBodyWriteTo and WriteTo let the server take each upstream
// read's compressed bytes whole, as one flushed chunk: through Read,
// fasthttp's 4 KiB copy buffer cut them into chunks of 4 KiB, each flushed
// with a system call of its own.
func (z *coder) SupportsBodyWriteTo() bool { return true }

func (z *coder) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		switch err := z.refill(); {
		case err == io.EOF:
			return total, nil
		case err != nil:
			return total, err
		}
		n, err := w.Write(z.pending)
		z.pending = z.pending[n:]
		z.sent += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// refill makes pending hold compressed bytes, reading the upstream as
// often as that takes; io.EOF once the stream has ended.
func (z *coder) refill() error {
	for len(z.pending) == 0 {
		if z.done {
			return io.EOF
		}
		if err := z.fill(); err != nil {
			return err
		}
	}
	return nil
}

// fill reads the upstream once and compresses what came into pending.
func (z *coder) fill() error {
	z.out.b = z.out.b[:0]
	n, err := z.src.Read(z.in)
	if n > 0 {
		if _, werr := z.enc.Write(z.in[:n]); werr != nil {
			return werr
		}
		if z.remaining > 0 {
			z.remaining -= int64(n)
			if z.remaining <= 0 && err == nil {
				err = io.EOF // the whole announced body is in: end the stream now, not after one more read
			}
		}
	}
	switch {
	case err == io.EOF && z.remaining > 0:
		return io.ErrUnexpectedEOF
	case err == io.EOF:
		if cerr := z.enc.Close(); cerr != nil {
			return cerr
		}
		z.done = true
	case err != nil:
		return err
	case n > 0:
		if ferr := z.enc.Flush(); ferr != nil {
			return ferr
		}
	}
	z.pending = z.out.b
	return nil
}

// CloseWithError is called by the server once the body is written or has
// failed: the coder goes back to its pool, then the upstream body is
// closed with the same error, which finishes the exchange. The access log
// counts the compressed bytes, those the client was sent.
func (z *coder) CloseWithError(err error) error {
	src := z.src
	src.n = z.sent
	z.release()
	return src.CloseWithError(err)
}
