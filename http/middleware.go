package http

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gatehouse/gatehouse"
)

// maxRequestID bounds an echoed X-Request-ID; a longer one is replaced.
const maxRequestID = 200

// requestInfo travels in a request's context: what the middleware learned
// about the request, filled in as it passes through.
type requestInfo struct {
	id   string
	lang string
	// caller is the authenticated caller (also in the context, see
	// callerOf), for the request log and the rate limiter; zero when
	// unauthenticated.
	caller gatehouse.Caller
	// scope is the API key scope the matched route declares (see route).
	scope string
}

type infoKey struct{}

func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

func requestID(ctx context.Context) string { return info(ctx).id }

func language(ctx context.Context) string { return info(ctx).lang }

// withRequestID echoes the caller's X-Request-ID (AuthZEN: the PDP must
// return the PEP's identifier) or generates one, and picks the language of
// messages from Accept-Language.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if id == "" || len(id) > maxRequestID {
			id = rand.Text()
		}
		w.Header().Set("X-Request-ID", id)
		ri := &requestInfo{id: id, lang: s.cfg.Catalog.Match(r.Header.Get("Accept-Language"))}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), infoKey{}, ri)))
	})
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withLog logs one line per request.
func (s *Server) withLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.cfg.Clock.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		ri := info(r.Context())
		s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("request_id", ri.id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", s.cfg.Clock.Now().Sub(start).Round(time.Microsecond)),
			slog.String("caller", ri.caller.Subject.String()), slog.String("remote", r.RemoteAddr))
	})
}

// withRecover turns a handler panic into the table's 500; the panic and its
// stack go to the log only.
func (s *Server) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.cfg.Logger.Error("handler panic", "request_id", requestID(r.Context()), "panic", v, "stack", string(debug.Stack()))
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				// The response has begun; all that is left is to cut it off.
				panic(http.ErrAbortHandler)
			}
			s.writeError(w, r, &Error{Code: gatehouse.CodeInternal, Err: fmt.Errorf("panic: %v", v)})
		}()
		next.ServeHTTP(w, r)
	})
}
