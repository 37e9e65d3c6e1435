package proxy

import (
	"bytes"
	"errors"

	"github.com/valyala/fasthttp"
)

// Request heads that two parsers could read differently are refused before
// anything is forwarded (RFC 9112 §6.3 and §11.2). fasthttp already refuses
// most malformed heads; these are the ones it reads leniently.
var (
	errBadVersion      = errors.New("unsupported HTTP version")
	errCLAndTE         = errors.New("both Content-Length and Transfer-Encoding")
	errDuplicateCL     = errors.New("more than one Content-Length")
	errBadTE           = errors.New("Transfer-Encoding other than a single final chunked")
	errObsFold         = errors.New("obsolete line folding")
	errBareLineEnding  = errors.New("bare CR or LF in the header section")
	errBadHeaderName   = errors.New("invalid header field name")
	errBadHeaderValue  = errors.New("control character in a header field value")
	errMalformedHeader = errors.New("header line without a colon")
)

var (
	http11 = []byte("HTTP/1.1")
	http10 = []byte("HTTP/1.0")
)

// checkRequestHead validates the raw header section of a parsed request.
// It returns the status to answer with and why, or 0.
func checkRequestHead(h *fasthttp.RequestHeader) (int, error) {
	if p := h.Protocol(); !bytes.Equal(p, http11) && !bytes.Equal(p, http10) {
		return fasthttp.StatusHTTPVersionNotSupported, errBadVersion
	}
	raw := h.RawHeaders()
	var cl, te int
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		var line []byte
		if i < 0 {
			line, raw = raw, nil
		} else {
			line, raw = raw[:i], raw[i+1:]
		}
		if len(line) == 0 || line[len(line)-1] != '\r' {
			if len(line) == 0 && len(raw) == 0 {
				break
			}
			return fasthttp.StatusBadRequest, errBareLineEnding
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			break // end of the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fasthttp.StatusBadRequest, errObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return fasthttp.StatusBadRequest, errMalformedHeader
		}
		name, value := line[:colon], line[colon+1:]
		if len(name) == 0 || !isToken(name) {
			return fasthttp.StatusBadRequest, errBadHeaderName
		}
		for _, c := range value {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return fasthttp.StatusBadRequest, errBadHeaderValue
			}
		}
		switch {
		case bytes.EqualFold(name, hContentLength):
			cl++
		case bytes.EqualFold(name, hTransferEncoding):
			te++
			if !bytes.EqualFold(bytes.Trim(value, " \t"), []byte("chunked")) {
				return fasthttp.StatusBadRequest, errBadTE
			}
		}
	}
	switch {
	case cl > 0 && te > 0:
		return fasthttp.StatusBadRequest, errCLAndTE
	case cl > 1:
		return fasthttp.StatusBadRequest, errDuplicateCL
	case te > 1:
		return fasthttp.StatusBadRequest, errBadTE
	}
	return 0, nil
}

// isToken reports whether b is an RFC 9110 token (a valid field name).
func isToken(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
