package proxy

import (
	"io"
	"os"
	"sync"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// AccessLog writes one JSON line per request through a buffer, never
// sampled. It is safe for concurrent use.
type AccessLog struct {
	logger *zap.Logger
	sink   *zapcore.BufferedWriteSyncer
	file   *os.File // nil for stdout/stderr

	path string
	mu   sync.Mutex // guards file during Reopen
}

// AccessLogOptions configure NewAccessLog.
type AccessLogOptions struct {
	// Path is "stdout", "stderr" or a file path (opened for append).
	Path          string
	BufferSize    int
	FlushInterval time.Duration
}

// NewAccessLog opens the access log. Close flushes it.
func NewAccessLog(o AccessLogOptions) (*AccessLog, error) {
	a := &AccessLog{path: o.Path}
	var w io.Writer
	switch o.Path {
	case "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(o.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		a.file = f
		w = &reopenableWriter{a: a}
	}
	a.sink = &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(w), Size: o.BufferSize, FlushInterval: o.FlushInterval}
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey:       "time",
		MessageKey:    zapcore.OmitKey,
		LevelKey:      zapcore.OmitKey,
		CallerKey:     zapcore.OmitKey,
		StacktraceKey: zapcore.OmitKey,
		NameKey:       zapcore.OmitKey,
		EncodeTime:    zapcore.RFC3339NanoTimeEncoder,
		LineEnding:    zapcore.DefaultLineEnding,
	})
	a.logger = zap.New(zapcore.NewCore(enc, a.sink, zapcore.InfoLevel))
	return a, nil
}

// reopenableWriter lets Reopen swap the file under the buffered writer.
type reopenableWriter struct{ a *AccessLog }

func (w *reopenableWriter) Write(p []byte) (int, error) {
	w.a.mu.Lock()
	defer w.a.mu.Unlock()
	return w.a.file.Write(p)
}

// Reopen flushes and reopens a file access log, for log rotation
// (SIGUSR1, like `nginx -s reopen`). Standard streams are left alone.
func (a *AccessLog) Reopen() error {
	if a == nil || a.file == nil {
		return nil
	}
	_ = a.sink.Sync()
	f, err := os.OpenFile(a.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	a.mu.Lock()
	old := a.file
	a.file = f
	a.mu.Unlock()
	return old.Close()
}

// Sync flushes buffered lines.
func (a *AccessLog) Sync() error {
	if a == nil {
		return nil
	}
	return a.sink.Sync()
}

// Close flushes and closes the log.
func (a *AccessLog) Close() error {
	if a == nil {
		return nil
	}
	err := a.sink.Stop()
	if a.file != nil {
		a.mu.Lock()
		if cerr := a.file.Close(); err == nil {
			err = cerr
		}
		a.mu.Unlock()
	}
	return err
}

// write emits ex as one line. The fields slice lives in the exchange, and
// the strings view the exchange's buffers without copying: zap encodes them
// before Write returns.
func (a *AccessLog) write(ex *exchange) {
	ce := a.logger.Check(zapcore.InfoLevel, "")
	if ce == nil {
		return
	}
	ce.Time = ex.start
	f := ex.fields[:0]
	f = append(f,
		zap.String("request_id", view(ex.requestID)),
		zap.String("client", view(ex.client)),
		zap.String("method", view(ex.method)),
		zap.String("host", view(ex.host)),
		zap.String("path", view(ex.target)),
		zap.Int("status", ex.status),
		zap.Int64("bytes_in", ex.bytesIn),
		zap.Int64("bytes_out", ex.bytesOut),
		zap.Float64("duration_ms", millis(ex.end.Sub(ex.start))),
		zap.String("route", ex.route),
		zap.String("upstream", ex.upstreamAddr),
		zap.Float64("upstream_ms", millis(ex.upstreamDuration)),
	)
	if ex.cause != "" {
		f = append(f, zap.String("error", ex.cause))
	}
	if len(ex.cache) > 0 {
		f = append(f, zap.String("cache", view(ex.cache)))
	}
	ex.fields = f
	ce.Write(f...)
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d/time.Microsecond) / 1000 }

// view returns b as a string without copying; only for values encoded
// before b changes.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
