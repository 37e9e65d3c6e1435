package proxy

import "github.com/valyala/fasthttp"

// compressStep compresses answers by Accept-Encoding ([compression]).
// Placeholder until the compression step lands: never built.
type compressStep struct{}

func newCompressStep(o CompressionOptions) (*compressStep, error) { return nil, nil }

func (c *compressStep) onResponse(ctx *fasthttp.RequestCtx, ex *exchange) {}
