package proxy

import (
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encoder is what gzip.Writer, brotli.Writer and zstd.Encoder have in
// common; Reset makes one reusable, which is why they are pooled.
type encoder interface {
	io.Writer
	Flush() error
	Close() error
	Reset(w io.Writer)
}

// Window sizes: enough for every web answer's repetitions, while keeping
// what one pooled encoder holds near 1 MiB instead of the 4–8 MiB the
// libraries would pick.
const (
	zstdWindow  = 1 << 20
	brotliLGWin = 20
)

// levels are the per-coding levels of one [compression] level setting:
// "default" is each library's own default (gzip 6, as zlib and nginx's
// gzip_comp_level 6; brotli 6; zstd's SpeedDefault, about level 3).
type levels struct {
	gzip, br int
	zstd     zstd.EncoderLevel
}

func parseLevel(s string) (levels, error) {
	switch s {
	case "fastest":
		return levels{gzip: gzip.BestSpeed, br: 1, zstd: zstd.SpeedFastest}, nil
	case "", "default":
		return levels{gzip: 6, br: brotli.DefaultCompression, zstd: zstd.SpeedDefault}, nil
	case "best":
		return levels{gzip: gzip.BestCompression, br: brotli.BestCompression, zstd: zstd.SpeedBestCompression}, nil
	}
	return levels{}, fmt.Errorf("level %q: want fastest, default or best", s)
}

// coderPools hold one pool of coders per coding. They belong to a
// compressStep, so a reload with another level gets fresh ones.
type coderPools struct {
	pools [numCodings]sync.Pool
}

func newCoderPools(lv levels) *coderPools {
	p := &coderPools{}
	for c := codingGzip; c < numCodings; c++ {
		c := c
		p.pools[c].New = func() any { return &coder{pools: p, coding: c, enc: newEncoder(c, lv)} }
	}
	return p
}

func newEncoder(c coding, lv levels) encoder {
	switch c {
	case codingGzip:
		w, err := gzip.NewWriterLevel(nil, lv.gzip)
		if err != nil {
			panic(err) // the levels above are all valid
		}
		return w
	case codingBr:
		return brotli.NewWriterOptions(nil, brotli.WriterOptions{Quality: lv.br, LGWin: brotliLGWin})
	default:
		w, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lv.zstd), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err) // constant options
		}
		return w
	}
}

func (p *coderPools) get(c coding) *coder {
	z := p.pools[c].Get().(*coder)
	z.out.b = z.out.b[:0]
	z.enc.Reset(&z.out)
	return z
}

// maxKeptBuffer bounds the output buffer a pooled coder keeps: a rare
// large in-memory answer does not pin its size in every pool.
const maxKeptBuffer = 256 << 10

func (z *coder) release() {
	z.src = responseBody{}
	z.pending = nil
	z.done = false
	z.sent = 0
	z.remaining = 0
	if cap(z.out.b) > maxKeptBuffer {
		z.out.b = nil
	}
	z.pools.pools[z.coding].Put(z)
}

// coder is one pooled encoder with its buffers. It compresses a body in
// memory (compressBytes) or, as a body stream, an upstream body on the fly
// (compress_stream.go).
type coder struct {
	pools  *coderPools
	coding coding
	enc    encoder
	out    sliceWriter // compressed bytes not yet handed on
	in     []byte      // upstream bytes read, for streams; made on first use

	// Stream state, cleared by release.
	src       responseBody // the upstream body this coder now owns
	pending   []byte       // out's bytes not yet returned by Read
	remaining int64        // upstream bytes still expected; -1 unknown
	sent      int64        // compressed bytes returned by Read
	done      bool         // the encoder is closed: pending is all there is
}

// compressBytes compresses body whole into z.out.
func (z *coder) compressBytes(body []byte) ([]byte, error) {
	if _, err := z.enc.Write(body); err != nil {
		return nil, err
	}
	if err := z.enc.Close(); err != nil {
		return nil, err
	}
	return z.out.b, nil
}

// sliceWriter appends what is written to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
