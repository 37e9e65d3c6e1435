// Package admin serves the operator endpoints on their own listener, never
// the public one: /healthz, /readyz, /metrics, /status and /debug/pprof/.
// It reads the live state through the small interfaces below and changes
// nothing.
package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Readiness reports whether the process should get traffic, and why not.
type Readiness interface {
	Ready() (ok bool, detail map[string]string)
}

// ReadinessFunc adapts a function to Readiness.
type ReadinessFunc func() (bool, map[string]string)

func (f ReadinessFunc) Ready() (bool, map[string]string) { return f() }

// Options configure the admin server. Metrics and Status may be nil.
type Options struct {
	Readiness Readiness
	// Metrics serves the Prometheus text exposition.
	Metrics http.Handler
	// Status serves the operator's HTML page.
	Status http.Handler
}

// Server is the admin HTTP server.
type Server struct {
	srv *http.Server
}

// New builds the admin server's routes.
func New(o Options) *Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, detail := true, map[string]string{}
		if o.Readiness != nil {
			ok, detail = o.Readiness.Ready()
		}
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": ok, "detail": detail})
	})
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	if o.Status != nil {
		mux.Handle("GET /status", o.Status)
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
