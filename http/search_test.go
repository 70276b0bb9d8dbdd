package http_test

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	gatehttp "github.com/gatehouse/gatehouse/http"
)

type searchResult struct {
	Page struct {
		NextToken string `json:"next_token"`
		Count     int    `json:"count"`
	} `json:"page"`
	Context struct {
		Version int64 `json:"version"`
	} `json:"context"`
	Results []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"results"`
}

func (r searchResult) ids() []string {
	out := []string{}
	for _, e := range r.Results {
		out = append(out, e.ID+e.Name)
	}
	return out
}

// Searches over the AI assistant example: who may use a tool in a tenant,
// which tenants and tools a user may use, what a user may do.
func TestSearch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	tok := f.token("user:admin@example.com")
	tests := []struct {
		name, path, body string
		want             []string
	}{
		{"who may analyze loans in acme-berlin", "subject",
			`{"subject": {"type": "user"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme-berlin"}}`,
			[]string{"admin@example.com", "sara@acme.example"}},
		{"which agents may look up orders in acme-milan", "subject",
			`{"subject": {"type": "agent"}, "action": {"name": "lookup_order"}, "resource": {"type": "tenant", "id": "acme-milan"}}`,
			[]string{"support-bot"}},
		{"where sara may analyze loans", "resource",
			`{"subject": {"type": "user", "id": "sara@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant"}}`,
			[]string{"acme", "acme-berlin", "acme-milan"}},
		{"which tools carl may call in acme-berlin", "resource",
			`{"subject": {"type": "user", "id": "carl@acme.example"}, "action": {"name": "call"}, "resource": {"type": "tool", "properties": {"tenant": "acme-berlin"}}}`,
			[]string{"customer_insights"}},
		{"what gus may do in general", "action",
			`{"subject": {"type": "user", "id": "gus@example.org"}, "resource": {"type": "tenant", "id": "general"}}`,
			[]string{}},
		{"unknown tenant finds nothing", "action",
			`{"subject": {"type": "user", "id": "sara@acme.example"}, "resource": {"type": "tenant", "id": "atlantis"}}`,
			[]string{}},
	}
	for _, tt := range tests {
		r := f.do(call{path: "/access/v1/search/" + tt.path, token: tok, body: tt.body})
		if r.status != http.StatusOK {
			t.Errorf("%s: status %d: %s", tt.name, r.status, r.body)
			continue
		}
		got := decodeInto[searchResult](t, r)
		if !slices.Equal(got.ids(), tt.want) || got.Page.NextToken != "" || got.Page.Count != len(tt.want) || got.Context.Version != 1 {
			t.Errorf("%s: got %+v, want %v", tt.name, got, tt.want)
		}
	}
	// Every result, evaluated, is allowed (AuthZEN search semantics).
	r := decodeInto[searchResult](t, f.do(call{path: "/access/v1/search/action", token: tok,
		body: `{"subject": {"type": "user", "id": "carl@acme.example"}, "resource": {"type": "tenant", "id": "acme-berlin"}}`}))
	if len(r.Results) == 0 {
		t.Fatal("carl may do nothing in acme-berlin")
	}
	for _, a := range r.Results {
		body := `{"subject": {"type": "user", "id": "carl@acme.example"}, "action": {"name": "` + a.Name + `"}, "resource": {"type": "tenant", "id": "acme-berlin"}}`
		if d := decodeInto[decision](t, f.do(call{path: "/access/v1/evaluation", token: tok, body: body})); !d.Decision {
			t.Errorf("search found %q but evaluation denies it: %+v", a.Name, d)
		}
	}
}

func TestSearchPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	tok := f.token("user:admin@example.com")
	query := `"subject": {"type": "user"}, "action": {"name": "access_ai_chat"}, "resource": {"type": "tenant", "id": "acme"}`
	all := decodeInto[searchResult](t, f.do(call{path: "/access/v1/search/subject", token: tok, body: `{` + query + `}`})).ids()
	if len(all) < 3 {
		t.Fatalf("only %v may chat in acme", all)
	}
	var paged []string
	body := `{` + query + `, "page": {"limit": 2}}`
	for range len(all) {
		r := f.do(call{path: "/access/v1/search/subject", token: tok, body: body})
		page := decodeInto[searchResult](t, r)
		if r.status != http.StatusOK || len(page.Results) > 2 || page.Page.Count != len(page.Results) {
			t.Fatalf("page: %d %s", r.status, r.body)
		}
		paged = append(paged, page.ids()...)
		if page.Page.NextToken == "" {
			break
		}
		// The same position gives the same token.
		if again := decodeInto[searchResult](t, f.do(call{path: "/access/v1/search/subject", token: tok, body: body})); again.Page.NextToken != page.Page.NextToken {
			t.Errorf("tokens differ for the same page: %q, %q", again.Page.NextToken, page.Page.NextToken)
		}
		body = `{` + query + `, "page": {"limit": 2, "token": "` + page.Page.NextToken + `"}}`
	}
	if !slices.Equal(paged, all) {
		t.Errorf("pages gave %v, one request %v", paged, all)
	}

	first := decodeInto[searchResult](t, f.do(call{path: "/access/v1/search/subject", token: tok, body: `{` + query + `, "page": {"limit": 1}}`}))
	bad := []struct {
		name, body, message, field string
	}{
		{"token of another query", `{"subject": {"type": "user"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme"}, "page": {"token": "` +
			first.Page.NextToken + `"}}`, "error.bad_page_token", ""},
		{"forged token", `{` + query + `, "page": {"token": "` + base64.RawURLEncoding.EncodeToString([]byte(`{"a":"x","q":"y"}`)) + `"}}`, "error.bad_page_token", ""},
		{"garbage token", `{` + query + `, "page": {"token": "%%%"}}`, "error.bad_page_token", ""},
		{"token a number", `{` + query + `, "page": {"token": 7}}`, "error.field_not_string", "page.token"},
		{"negative limit", `{` + query + `, "page": {"limit": -1}}`, "error.field_not_integer", "page.limit"},
		{"fractional limit", `{` + query + `, "page": {"limit": 1.5}}`, "error.field_not_integer", "page.limit"},
		{"limit a string", `{` + query + `, "page": {"limit": "2"}}`, "error.field_not_integer", "page.limit"},
		{"page an array", `{` + query + `, "page": []}`, "error.field_not_object", "page"},
		{"subject id a number", `{"subject": {"type": "user", "id": 1}, "action": {"name": "read"}, "resource": {"type": "tenant", "id": "acme"}}`,
			"error.field_not_string", "subject.id"},
	}
	for _, tt := range bad {
		r := f.do(call{path: "/access/v1/search/subject", token: tok, body: tt.body})
		e := decodeInto[errorBody](t, r)
		if want := f.cat.Text("en", tt.message, map[string]any{"Field": tt.field}); r.status != http.StatusBadRequest || e.Error.Message != want {
			t.Errorf("%s: %d %+v, want 400 %q", tt.name, r.status, e.Error, want)
		}
	}
	// A huge limit is lowered to the maximum, not refused.
	if r := f.do(call{path: "/access/v1/search/subject", token: tok, body: `{` + query + `, "page": {"limit": 1000000}}`}); r.status != http.StatusOK {
		t.Errorf("huge limit: %d %s", r.status, r.body)
	}
}

// A malformed item of a batch is a deny that says what is wrong; the rest
// of the batch is decided (certification C.3.4.1).
func TestBatchItemErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, specPolicy, nil)
	tok := f.pep()
	body := `{"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "can_read"}, "options": {"evaluations_semantic": "%s"},
		"evaluations": [{}, 1, {"resource": {"type": "todo"}}, {"action": {"name": 5}, "resource": {"type": "todo", "id": "1"}}, null,
			{"resource": {"type": "todo", "id": "1"}}]}`
	type item struct {
		Decision bool `json:"decision"`
		Context  struct {
			Reason string `json:"reason"`
			Error  *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		} `json:"context"`
	}
	fields := []string{"evaluations[0].resource", "evaluations[1]", "evaluations[2].resource.id", "evaluations[3].action.name", "evaluations[4]"}
	messages := []string{"error.missing_field", "error.field_not_object", "error.missing_field", "error.field_not_string", "error.field_not_object"}
	for _, tc := range []struct {
		semantic string
		n        int
	}{{gatehttp.SemanticExecuteAll, 6}, {gatehttp.SemanticDenyOnFirstDeny, 1}, {gatehttp.SemanticPermitOnFirstPermit, 6}} {
		r := f.do(call{path: "/access/v1/evaluations", token: tok, body: strings.Replace(body, "%s", tc.semantic, 1)})
		var got struct {
			Evaluations []item `json:"evaluations"`
		}
		if err := decodeJSON(strings.NewReader(string(r.body)), &got); err != nil || r.status != http.StatusOK || len(got.Evaluations) != tc.n {
			t.Fatalf("%s: %d %s", tc.semantic, r.status, r.body)
		}
		for i, ev := range got.Evaluations {
			if i == 5 {
				if !ev.Decision || ev.Context.Error != nil {
					t.Errorf("%s: the valid item: %+v", tc.semantic, ev)
				}
				continue
			}
			want := f.cat.Text("en", messages[i], map[string]any{"Field": fields[i]})
			if ev.Decision || ev.Context.Reason != string(gatehouse.ReasonInvalidRequest) || ev.Context.Error == nil ||
				ev.Context.Error.Code != gatehouse.CodeInvalid || ev.Context.Error.Message != want {
				t.Errorf("%s: item %d = %+v, want an invalid_request deny saying %q", tc.semantic, i, ev, want)
			}
		}
	}
}

// A PDP scoped to a tenant (/{tenant}/access/v1/…) decides within that
// tenant's subtree: requests default to it and may not leave it.
func TestTenantScopedPDP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	tok := f.token("user:admin@example.com")
	eval := func(sub, action, resource string) string {
		return `{"subject": {"type": "user", "id": "` + sub + `"}, "action": {"name": "` + action + `"}, "resource": ` + resource + `}`
	}
	tests := []struct {
		name, path, body string
		want             bool
		reason           gatehouse.Reason
	}{
		{"scope is the tenant", "/acme", eval("sara@acme.example", "analyze_loan", `{"type": "tool", "id": "analyze_loan"}`), true, gatehouse.ReasonGranted},
		{"unscoped has no tenant", "", eval("carl@acme.example", "customer_insights", `{"type": "tool", "id": "customer_insights"}`), false, gatehouse.ReasonTenantRequired},
		{"scope gives carl his store", "/acme-berlin", eval("carl@acme.example", "customer_insights", `{"type": "tool", "id": "customer_insights"}`), true, gatehouse.ReasonGranted},
		{"a descendant inside the scope", "/acme", eval("sara@acme.example", "analyze_loan", `{"type": "tenant", "id": "acme-milan"}`), true, gatehouse.ReasonGranted},
		{"a tenant outside the scope", "/acme", eval("gina@globex.example", "analyze_loan", `{"type": "tenant", "id": "globex"}`), false, gatehouse.ReasonTenantOutsideScope},
		{"an ancestor is outside the scope", "/acme-berlin", eval("sara@acme.example", "analyze_loan", `{"type": "tenant", "id": "acme"}`), false, gatehouse.ReasonTenantOutsideScope},
	}
	for _, tt := range tests {
		r := f.do(call{path: tt.path + "/access/v1/evaluation", token: tok, body: tt.body})
		d := decodeInto[decision](t, r)
		if r.status != http.StatusOK || d.Decision != tt.want || d.Context.Reason != string(tt.reason) {
			t.Errorf("%s: %d %s, want %t %s", tt.name, r.status, r.body, tt.want, tt.reason)
		}
	}
	// Searches are scoped too: only acme's subtree is visible from /acme.
	r := decodeInto[searchResult](t, f.do(call{path: "/acme/access/v1/search/resource", token: tok,
		body: `{"subject": {"type": "user", "id": "admin@example.com"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant"}}`}))
	if got := r.ids(); !slices.Equal(got, []string{"acme", "acme-berlin", "acme-milan"}) {
		t.Errorf("resource search from /acme = %v", got)
	}
}

func TestAuthZENSharedToken(t *testing.T) {
	t.Parallel()
	const token = "shared-token-0123456789"
	f := newFixture(t, examplePolicy, func(c *gatehttp.Config) {
		c.AuthZENAuth = gatehttp.AuthToken
		c.AuthZENTokens = []string{"old-token-9876543210", token}
	})
	for _, tc := range []struct {
		name   string
		header string
		status int
	}{
		{"current token", "Bearer " + token, http.StatusOK},
		{"previous token during rotation", "Bearer old-token-9876543210", http.StatusOK},
		{"scheme is case-insensitive", "bearer " + token, http.StatusOK},
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer shared-token-0123456780", http.StatusUnauthorized},
		{"token prefix", "Bearer " + token[:10], http.StatusUnauthorized},
		{"a JWT is not a shared token", "Bearer " + f.token("user:admin@example.com"), http.StatusUnauthorized},
		{"basic auth", "Basic " + token, http.StatusUnauthorized},
	} {
		for _, path := range []string{"/access/v1/evaluation", "/access/v1/search/action"} {
			r := f.do(call{path: path, body: saraLoan, header: map[string]string{"Authorization": tc.header}})
			if r.status != tc.status {
				t.Errorf("%s on %s: %d, want %d: %s", tc.name, path, r.status, tc.status, r.body)
			}
		}
	}
	// The native API still wants a JWT.
	if r := f.do(call{path: "/api/v1/check", body: `{}`, header: map[string]string{"Authorization": "Bearer " + token}}); r.status != http.StatusUnauthorized {
		t.Errorf("/api/v1 with the shared token: %d", r.status)
	}
}

func TestConfigValidateAuthZENAndTLS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*gatehttp.Config)
	}{
		{"token mode without tokens", func(c *gatehttp.Config) { c.AuthZENAuth = gatehttp.AuthToken }},
		{"short token", func(c *gatehttp.Config) {
			c.AuthZENAuth = gatehttp.AuthToken
			c.AuthZENTokens = []string{"short"}
		}},
		{"unknown mode", func(c *gatehttp.Config) { c.AuthZENAuth = "basic" }},
		{"certificate without key", func(c *gatehttp.Config) { c.TLSCertFile = "cert.pem" }},
		{"key without certificate", func(c *gatehttp.Config) { c.TLSKeyFile = "key.pem" }},
	} {
		cfg := testConfig(t)
		tc.change(&cfg)
		if err := cfg.Validate(); gatehouse.ErrorCode(err) != gatehouse.CodeInvalid {
			t.Errorf("%s: Validate = %v, want invalid", tc.name, err)
		}
	}
	// A certificate that does not load fails Open, before listening.
	cfg := testConfig(t)
	cfg.Addr = "127.0.0.1:0"
	cfg.TLSCertFile, cfg.TLSKeyFile = "testdata/no-such-cert.pem", "testdata/no-such-key.pem"
	svc, _ := newService(t, examplePolicy)
	if err := gatehttp.NewServer(svc, cfg).Open(t.Context()); gatehouse.ErrorCode(err) != gatehouse.CodeInvalid {
		t.Errorf("Open with a missing certificate = %v, want invalid", err)
	}
}
