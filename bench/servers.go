package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// The bench binary also runs its own helper servers as child processes,
// so each can be pinned to a core and measured apart:
//
//	bench -serve upstream ADDR        the loopback upstream of every system
//	bench -serve bare ADDR FILE...    a bare fasthttp server answering the
//	                                  bytes of FILE for /0, /1, …, and of
//	                                  X.answers.json by request URI: the ceiling

// upstreamHandler answers /size/N with N bytes, /json/N with N bytes of
// API-like JSON, /file/K with the K-th file's bytes as JSON, and POSTs
// with the size of their body. byURI holds answers by request URI (the
// mixed nearby queries).
func upstreamHandler(files [][]byte, byURI map[string][]byte) fasthttp.RequestHandler {
	cache := map[int][]byte{}
	jsonCache := map[int][]byte{}
	return func(ctx *fasthttp.RequestCtx) {
		path := ctx.Path()
		if b, ok := byURI[string(ctx.RequestURI())]; ok {
			ctx.SetContentType("application/json")
			ctx.SetBody(b)
			return
		}
		switch {
		case ctx.IsPost():
			ctx.SetBodyString(strconv.Itoa(len(ctx.PostBody())))
		case bytes.HasPrefix(path, []byte("/size/")):
			n, _ := strconv.Atoi(string(path[len("/size/"):]))
			b, ok := cache[n]
			if !ok {
				b = bytes.Repeat([]byte("x"), n)
				cache[n] = b
			}
			ctx.SetBody(b)
		case bytes.HasPrefix(path, []byte("/json/")):
			n, _ := strconv.Atoi(string(path[len("/json/"):]))
			b, ok := jsonCache[n]
			if !ok {
				b = jsonOfSize(n)
				jsonCache[n] = b
			}
			ctx.SetContentType("application/json")
			ctx.SetBody(b)
		case bytes.HasPrefix(path, []byte("/file/")):
			k, _ := strconv.Atoi(string(path[len("/file/"):]))
			if k < 0 || k >= len(files) {
				ctx.SetStatusCode(404)
				return
			}
			ctx.SetContentType("application/json")
			ctx.SetBody(files[k])
		default:
			ctx.SetStatusCode(404)
		}
	}
}

func serveChild(args []string) {
	kind, addr := args[0], args[1]
	var files [][]byte
	byURI := map[string][]byte{}
	for _, f := range args[2:] {
		b, err := os.ReadFile(f)
		if err != nil {
			panic(err)
		}
		if strings.HasSuffix(f, ".answers.json") {
			var m map[string]string
			if err := json.Unmarshal(b, &m); err != nil {
				panic(err)
			}
			for k, v := range m {
				byURI[k] = []byte(v)
			}
			continue
		}
		files = append(files, b)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	h := upstreamHandler(files, byURI)
	if kind == "bare" {
		// The ceiling: the same bytes edgeproxy answers, from memory, for
		// the same request (one map look-up finds a mixed query's answer).
		h = func(ctx *fasthttp.RequestCtx) {
			if b, ok := byURI[string(ctx.RequestURI())]; ok {
				ctx.SetContentType("application/json")
				ctx.Response.Header.Set("X-Cache", "HIT")
				ctx.SetBody(b)
				return
			}
			k, _ := strconv.Atoi(string(ctx.Path()[1:]))
			ctx.SetContentType("application/json")
			ctx.Response.Header.Set("X-Cache", "HIT")
			ctx.SetBody(files[k%len(files)])
		}
	}
	srv := &fasthttp.Server{Handler: h, Concurrency: 50000, NoDefaultServerHeader: true}
	if err := srv.Serve(ln); err != nil {
		panic(err)
	}
}

// jsonOfSize is n bytes of JSON shaped like an API's list answer: repeated
// keys, varied values, so it compresses as real answers do (about 4:1 to
// 6:1), not as a run of one byte would.
func jsonOfSize(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"coupons":[`)
	var item []byte
	for i := 0; ; i++ {
		item = fmt.Appendf(item[:0], `{"id":"tky-%05d","title":"%d%% off at store %d","lat":35.%04d,"lon":139.%04d,"valid_until":"2026-12-%02dT00:00:00Z"}`,
			i*7919%100000, 5+i*37%60, i*104729%9973, i*7901%10000, i*6007%10000, 1+i%28)
		if b.Len()+1+len(item)+2 > n {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(item)
	}
	for b.Len() < n-2 {
		b.WriteByte(' ') // valid JSON, exactly n bytes
	}
	b.WriteString("]}")
	return b.Bytes()
}
