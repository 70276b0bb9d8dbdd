package http_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	gatehttp "github.com/gatehouse/gatehouse/http"
)

// /mcp authenticates like the rest of the API and hands the gateway the
// caller in the request's context; a refused caller is pointed at the
// resource metadata (RFC 9728), as the MCP authorization spec says.
func TestMCPEndpoint(t *testing.T) {
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
