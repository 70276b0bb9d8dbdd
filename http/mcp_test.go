package http_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/service"
)

// /mcp authenticates like the rest of the API and hands the gateway the
// caller in the request's context; a refused caller is pointed at the
// resource metadata (RFC 9728), as the MCP authorization spec says.
func TestMCPEndpoint(t *testing.T) {
	t.Parallel()
	var seen gatehouse.Caller
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = gatehouse.CallerFromContext(r.Context())
		if r.Header.Get("Authorization") == "" {
			t.Error("the gateway got no Authorization header to ignore")
		}
		w.WriteHeader(http.StatusAccepted)
	})
	f := newFixture(t, examplePolicy, func(c *gatehttp.Config) { c.MCP = gateway })
	r := f.do(call{path: "/mcp", body: `{"jsonrpc":"2.0","id":1,"method":"initialize"}`})
	if got := r.header.Get("WWW-Authenticate"); r.status != http.StatusUnauthorized || !strings.Contains(got, `resource_metadata="`+f.url+`/.well-known/oauth-protected-resource/mcp"`) {
		t.Errorf("unauthenticated /mcp = %d, WWW-Authenticate %q", r.status, got)
	}
	r = f.do(call{method: http.MethodGet, path: "/.well-known/oauth-protected-resource/mcp"})
	var doc struct {
		Resource string   `json:"resource"`
		Scopes   []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || r.status != http.StatusOK || doc.Resource != f.url+"/mcp" {
		t.Errorf("resource metadata = %d %s", r.status, r.body)
	}
	r = f.do(call{path: "/mcp", token: f.token("user:olga@acme.example"), body: `{}`})
	if r.status != http.StatusAccepted || seen.Subject != gatehouse.User("olga@acme.example") || seen.Credential != gatehouse.CredentialToken {
		t.Errorf("authenticated /mcp = %d, caller %+v", r.status, seen)
	}
	// An API key needs the mcp scope.
	check, _, err := f.svc.IssueAPIKey(t.Context(), "test", "no mcp", gatehouse.User("olga@acme.example"), []string{gatehouse.ScopeCheck}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.do(call{path: "/mcp", token: check, body: `{}`}); r.status != http.StatusForbidden {
		t.Errorf("/mcp with a check-scoped key = %d, want 403", r.status)
	}
	withMCP, _, err := f.svc.IssueAPIKey(t.Context(), "test", "mcp", gatehouse.User("olga@acme.example"), []string{gatehouse.ScopeMCP}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.do(call{path: "/mcp", token: withMCP, body: `{}`}); r.status != http.StatusAccepted || seen.Credential != gatehouse.CredentialAPIKey {
		t.Errorf("/mcp with an mcp-scoped key = %d, caller %+v", r.status, seen)
	}
}

// An instance without a policy (version 0) is not ready: it would deny
// everything. AllowEmpty says the operator knows.
func TestReadyWithoutPolicy(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	svc, err := service.Open(t.Context(), store, service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, allow := range []bool{false, true} {
		cfg := testConfig(t)
		cfg.AllowEmpty = allow
		f := &fixture{t: t, url: newListener(t, gatehttp.NewServer(svc, cfg).Handler()), cfg: cfg}
		r := f.do(call{method: http.MethodGet, path: "/readyz"})
		if allow {
			if r.status != http.StatusOK {
				t.Errorf("readyz at version 0 with AllowEmpty = %d %s, want 200", r.status, r.body)
			}
			continue
		}
		if e := decodeInto[errorBody](t, r); r.status != http.StatusServiceUnavailable || e.Error.Code != gatehouse.CodeUnavailable || e.Error.Message == "" {
			t.Errorf("readyz at version 0 = %d %s, want 503 unavailable", r.status, r.body)
		}
	}
	// Once a policy is applied it is ready.
	f := newFixture(t, examplePolicy, nil)
	if r := f.do(call{method: http.MethodGet, path: "/readyz"}); r.status != http.StatusOK {
		t.Errorf("readyz with a policy = %d", r.status)
	}
}

// An MCP stream outlives the server's ReadTimeout and WriteTimeout: a
// session's GET stream or a subscriptions/listen POST lasts as long as its
// client. The body is still bounded by MaxBodyBytes.
func TestMCPStreamOutlivesTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	svc, _ := newService(t, examplePolicy)
	cfg := testConfig(t)
	cfg.Addr = "127.0.0.1:0"
	cfg.ReadTimeout, cfg.WriteTimeout, cfg.MaxBodyBytes = timeout, timeout, 1024
	cfg.MCP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("the gateway reads the body: %v", err)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", body)
		http.NewResponseController(w).Flush()
		// Outlive both deadlines, as a stream waiting for a change does.
		select {
		case <-r.Context().Done():
			return
		case <-time.After(5 * timeout):
		}
		fmt.Fprint(w, "data: later\n\n")
	})
	srv := gatehttp.NewServer(svc, cfg)
	if err := srv.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	token, err := gatehttp.IssueToken(cfg, "user:olga@acme.example", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, body string
		status       int
		want         string
	}{
		{http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen"}`, http.StatusOK,
			"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscriptions/listen\"}\n\ndata: later\n\n"},
		{http.MethodGet, "", http.StatusOK, "data: \n\ndata: later\n\n"},
		{http.MethodPost, strings.Repeat("x", 2048), http.StatusRequestEntityTooLarge, ""},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL()+"/mcp", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s /mcp: %v", tc.method, err)
		}
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || (tc.want != "" && (err != nil || string(got) != tc.want)) {
			t.Errorf("%s /mcp (%d bytes) = %d %q, %v; want %d %q", tc.method, len(tc.body), res.StatusCode, got, err, tc.status, tc.want)
		}
	}
}
