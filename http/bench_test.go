package http_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/service"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

// BenchmarkEvaluation measures the server's work for one AuthZEN
// evaluation, from the parsed request to the written response, without
// the network: authentication by shared token, body checks and decoding,
// the decision, its localized message, the decision log and the request
// log line (into a discarding text handler, so that formatting is counted).
func BenchmarkEvaluation(b *testing.B) {
	svc, _ := newService(b, examplePolicy)
	cfg := testConfig(b)
	cfg.AuthZENAuth, cfg.AuthZENTokens = gatehttp.AuthToken, []string{"bench-token-0123456789"}
	cfg.Logger = slog.New(slog.NewTextHandler(discard{}, nil))
	if os.Getenv("BENCH_NO_DECISION_LOG") == "" {
		decisions := svc.DecisionLog(service.DefaultDecisionLogConfig())
		b.Cleanup(func() { decisions.Close(b.Context()) })
		cfg.Decisions = decisions
	}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	h := gatehttp.NewServer(svc, cfg).Handler()
	body := []byte(`{"subject":{"type":"user","id":"sara@acme.example"},"action":{"name":"analyze_loan"},` +
		`"resource":{"type":"tenant","id":"acme-berlin"}}`)
	b.ReportAllocs()
	// Building the server (its OpenAPI document) is not the evaluation's.
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/access/v1/evaluation", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer bench-token-0123456789")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"decision":true`)) {
				b.Fatalf("evaluation = %d %s", w.Code, w.Body)
			}
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
