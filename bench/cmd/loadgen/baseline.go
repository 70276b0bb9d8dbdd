package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// baselineCommand makes loadgen serve the fixed answer instead.
const baselineCommand = "serve-baseline"

// baselineAnswer has the size and shape of a Gatehouse decision.
var baselineAnswer = []byte(`{"decision":true,"context":{"reason":"granted","message":"Allowed: user:sara@acme.example holds analyze_loan.","version":1}}` + "\n")

// serveBaseline serves on addr, until ctx ends, a handler that reads the
// request body and writes a fixed decision: the cost of Go's net/http alone
// on this machine, the ceiling of any Go HTTP server here.
func serveBaseline(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(baselineAnswer)
	})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
