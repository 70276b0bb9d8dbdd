package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/examples"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

// testSecret signs the test server's bearer tokens.
const testSecret = "0123456789abcdef0123456789abcdef-client-test"

// gatehouseServer is the real Gatehouse HTTP server on a loopback
// listener, over a store in memory holding the example policy
// (examples/ai-assistant/policy.yaml).
type gatehouseServer struct {
	URL   string
	cfg   gatehttp.Config
	ts    *httptest.Server
	store *memstore.Store
}

// startGatehouse starts a server; wrap, if not nil, wraps its handler (to
// fail or count requests).
func startGatehouse(wrap func(http.Handler) http.Handler) (*gatehouseServer, error) {
	ctx := context.Background()
	s := &gatehouseServer{store: memstore.New()}
	svc, err := service.Open(ctx, s.store, service.Config{})
	if err != nil {
		s.Close()
		return nil, err
	}
	doc, err := policy.Parse(examples.AIAssistantPolicyFile, examples.AIAssistantPolicy())
	if err == nil {
		_, err = svc.Apply(ctx, "test", doc, false)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	cat, err := locale.New()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.cfg = gatehttp.DefaultConfig()
	s.cfg.JWTSecret = []byte(testSecret)
	s.cfg.Catalog = cat
	if err := s.cfg.Validate(); err != nil {
		s.Close()
		return nil, err
	}
	h := gatehttp.NewServer(svc, s.cfg).Handler()
	if wrap != nil {
		h = wrap(h)
	}
	s.ts = httptest.NewServer(h)
	s.URL = s.ts.URL
	return s, nil
}

// Token returns a bearer token for subject ("user:EMAIL" or "agent:ID").
func (s *gatehouseServer) Token(subject string) string {
	tok, err := gatehttp.IssueToken(s.cfg, subject, time.Hour)
	if err != nil {
		panic(fmt.Sprintf("issue token for %s: %v", subject, err))
	}
	return tok
}

// Close stops the server and discards its store.
func (s *gatehouseServer) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
	s.store.Close()
}

// newGatehouse starts a server for the test and stops it at its end.
func newGatehouse(t testing.TB, wrap func(http.Handler) http.Handler) *gatehouseServer {
	t.Helper()
	s, err := startGatehouse(wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
