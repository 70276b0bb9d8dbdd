package http_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

type issuedKey struct {
	Token string           `json:"token"`
	Key   gatehouse.APIKey `json:"key"`
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	admin := f.token("user:admin@example.com")
	issue := func(body string) (response, issuedKey) {
		r := f.do(call{path: "/api/v1/api-keys", token: admin, body: body})
		return r, decodeLoose[issuedKey](t, r)
	}
	r, bot := issue(`{"name": "support bot", "subject": "agent:support-bot", "scopes": ["authzen", "check"], "expires_in": "720h"}`)
	if r.status != http.StatusCreated || !strings.HasPrefix(bot.Token, service.APIKeyPrefix) || bot.Key.ExpiresAt.IsZero() ||
		r.header.Get("Cache-Control") != "no-store" || strings.Contains(string(r.body), "hash") {
		t.Fatalf("issue: %d %s", r.status, r.body)
	}
	_, adminKey := issue(`{"name": "ops", "subject": "admin@example.com", "scopes": ["admin"]}`)
	_, adminAuthZEN := issue(`{"name": "pep", "subject": "admin@example.com", "scopes": ["authzen"]}`)
	_, adminCheck := issue(`{"name": "pep", "subject": "admin@example.com", "scopes": ["check"]}`)

	evaluation := `{"subject": {"type": "agent", "id": "support-bot"}, "action": {"name": "lookup_order"}, "resource": {"type": "tenant", "id": "acme-milan"}}`
	tests := []struct {
		name   string
		token  string
		method string
		path   string
		body   string
		status int
		code   string
	}{
		{"AuthZEN with an authzen key", bot.Token, http.MethodPost, "/access/v1/evaluation", evaluation, 200, ""},
		{"check as the key's subject", bot.Token, http.MethodPost, "/api/v1/check", `{"tool": "lookup_order", "tenant": "acme-milan"}`, 200, ""},
		{"admin needs the admin scope", bot.Token, http.MethodGet, "/api/v1/roles", ``, 403, "forbidden"},
		{"an admin key of an admin", adminKey.Token, http.MethodGet, "/api/v1/roles", ``, 200, ""},
		{"an admin key cannot decide", adminKey.Token, http.MethodPost, "/access/v1/evaluation", evaluation, 403, "forbidden"},
		// The matched route declares the scope, not the path's text: a role
		// whose id spells /access/v1/ or /api/v1/check is still administration.
		{"an authzen key cannot put a role named like AuthZEN", adminAuthZEN.Token, http.MethodPut, "/api/v1/roles/r%2Faccess%2Fv1%2Fx",
			`{"name": "r/access/v1/x", "permissions": ["access_ai_chat"]}`, 403, "forbidden"},
		{"an authzen key cannot delete a role named like AuthZEN", adminAuthZEN.Token, http.MethodDelete, "/api/v1/roles/r%2Faccess%2Fv1%2Fx", ``, 403, "forbidden"},
		{"a check key cannot read a role named like check", adminCheck.Token, http.MethodGet, "/api/v1/roles/x%2Fapi%2Fv1%2Fme%2F", ``, 403, "forbidden"},
		{"an authzen key on the tenant-scoped AuthZEN route", adminAuthZEN.Token, http.MethodPost, "/acme/access/v1/evaluation", evaluation, 200, ""},
		{"a check key cannot use AuthZEN", adminCheck.Token, http.MethodPost, "/access/v1/evaluation", evaluation, 403, "forbidden"},
		{"a wrong secret", bot.Token[:len(bot.Token)-2] + "xx", http.MethodPost, "/access/v1/evaluation", evaluation, 401, "unauthorized"},
		{"an unknown id", service.APIKeyPrefix + "nosuchkey_secret", http.MethodPost, "/access/v1/evaluation", evaluation, 401, "unauthorized"},
		{"a malformed key", service.APIKeyPrefix + "x", http.MethodPost, "/access/v1/evaluation", evaluation, 401, "unauthorized"},
	}
	for _, tt := range tests {
		r := f.do(call{method: tt.method, path: tt.path, token: tt.token, body: tt.body})
		if r.status != tt.status || (tt.code != "" && decodeLoose[restError](t, r).Error.Code != tt.code) {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
		}
	}
	// The check decided for the key's subject, the agent.
	r = f.do(call{path: "/api/v1/check", token: bot.Token, body: `{"tool": "lookup_order", "tenant": "acme-milan"}`})
	if a := decodeLoose[gatehouse.Answer](t, r); a.Subject != "agent:support-bot" {
		t.Errorf("check with the bot's key decided for %s", a.Subject)
	}

	// Listing never shows secrets; revoking stops the key at once here.
	r = f.do(call{method: http.MethodGet, path: "/api/v1/api-keys", token: admin})
	if r.status != http.StatusOK || strings.Contains(string(r.body), bot.Token[len(bot.Token)-20:]) || !strings.Contains(string(r.body), bot.Key.ID) {
		t.Errorf("list: %d %s", r.status, r.body)
	}
	if r := f.do(call{method: http.MethodDelete, path: "/api/v1/api-keys/" + bot.Key.ID, token: admin}); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := f.do(call{path: "/access/v1/evaluation", token: bot.Token, body: evaluation}); r.status != http.StatusUnauthorized {
		t.Errorf("a revoked key: %d", r.status)
	}
	if r := f.do(call{method: http.MethodDelete, path: "/api/v1/api-keys/" + bot.Key.ID, token: admin}); r.status != http.StatusNoContent {
		t.Errorf("revoking twice: %d", r.status)
	}

	for _, tc := range []struct{ name, body string }{
		{"unknown scope", `{"name": "x", "subject": "agent:support-bot", "scopes": ["everything"]}`},
		{"no scope", `{"name": "x", "subject": "agent:support-bot", "scopes": []}`},
		{"bad lifetime", `{"name": "x", "subject": "agent:support-bot", "scopes": ["check"], "expires_in": "forever"}`},
		{"bad subject", `{"name": "x", "subject": "robot:r2", "scopes": ["check"]}`},
		{"no name", `{"subject": "agent:support-bot", "scopes": ["check"]}`},
	} {
		if r, _ := issue(tc.body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	if r, _ := issue(`{"name": "x", "subject": "agent:nobot", "scopes": ["check"]}`); r.status != http.StatusNotFound {
		t.Errorf("unknown subject: %d", r.status)
	}
	if r := f.do(call{path: "/api/v1/api-keys", token: f.token("user:carl@acme.example"), body: `{"name": "x", "subject": "agent:support-bot", "scopes": ["check"]}`}); r.status != http.StatusForbidden {
		t.Errorf("a non-admin issues a key: %d", r.status)
	}
	// Issuing and revoking are audited.
	events, err := f.store.ListAudit(t.Context(), gatehouse.AuditFilter{TargetPrefix: "api_key/"})
	if err != nil || len(events) != 5 {
		t.Errorf("audit of keys: %d events, %v", len(events), err)
	}
}
