package proxy

import (
	"errors"

	"github.com/valyala/fasthttp"
)

// basicAuthStep checks credentials against an htpasswd file.
// Placeholder until the basic-auth step lands.
type basicAuthStep struct{}

func newBasicAuthStep(file, realm string) (*basicAuthStep, error) {
	return nil, errors.New("basic_auth_file is not supported yet")
}

func (b *basicAuthStep) onRequest(ctx *fasthttp.RequestCtx, ex *exchange) bool { return false }
