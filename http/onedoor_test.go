package http_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// oneDoorCases are agent tool calls of the example policy (the demo's):
// acme-berlin caps refunds at 50.00 EUR and needs a confirmation; acme caps
// discounts at 15 %; update_address is disabled by default; acme-milan
// cancels orders without a confirmation. Every surface must give the
// guard's answer.
var oneDoorCases = []struct {
	name, tool, tenant, args string
	allowed                  bool
	reason                   gatehouse.Reason
	limit                    string
}{
	{"refund over the limit", "process_refund", "acme-berlin", `{"amount": "5000.00", "currency": "EUR"}`, false, gatehouse.ReasonLimitExceeded, gatehouse.LimitMaxAmount},
	{"refund as a JSON number", "process_refund", "acme-berlin", `{"amount": 5000, "currency": "EUR"}`, false, gatehouse.ReasonLimitExceeded, gatehouse.LimitMaxAmount},
	{"discount over the limit", "apply_discount", "acme-berlin", `{"percentage": "90"}`, false, gatehouse.ReasonLimitExceeded, gatehouse.LimitMaxPercentage},
	{"refund within the limit needs a confirmation", "process_refund", "acme-berlin", `{"amount": "20.00", "currency": "EUR"}`, false, gatehouse.ReasonConfirmationRequired, ""},
	{"refund without its amount", "process_refund", "acme-berlin", `{}`, false, gatehouse.ReasonInvalidRequest, ""},
	{"disabled action", "update_address", "acme-berlin", `{}`, false, gatehouse.ReasonActionDisabled, ""},
	{"action without confirmation", "cancel_order", "acme-milan", `{}`, true, gatehouse.ReasonGranted, ""},
}

const botForOlga = `{"type": "agent", "id": "support-bot", "properties": {"on_behalf_of": "user:olga@acme.example"}}`

func authzenCall(tool, tenant, args string) string {
	return fmt.Sprintf(`{"subject": %s, "action": {"name": %q}, "resource": {"type": "tenant", "id": %q}, "context": %s}`,
		botForOlga, tool, tenant, args)
}

// The 5,000 EUR refund and the 90 % discount are denied on every surface,
// with the guard's reason codes.
func TestOneDoorAgentActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	pep := f.pep()
	var batch []string
	for _, tc := range oneDoorCases {
		batch = append(batch, authzenCall(tc.tool, tc.tenant, tc.args))
		check := func(surface string, allowed bool, reason, limit string, hint *struct{ Method, Endpoint string }) {
			t.Helper()
			if allowed != tc.allowed || reason != string(tc.reason) || limit != tc.limit {
				t.Errorf("%s: %s = %v %s limit %q, want %v %s limit %q", tc.name, surface, allowed, reason, limit, tc.allowed, tc.reason, tc.limit)
			}
			if hint != nil && (tc.reason == gatehouse.ReasonConfirmationRequired) != (hint.Endpoint == "/api/v1/actions/authorize") {
				t.Errorf("%s: %s confirmation hint %+v", tc.name, surface, hint)
			}
		}

		d := decodeInto[decision](t, f.do(call{path: "/access/v1/evaluation", token: pep, body: authzenCall(tc.tool, tc.tenant, tc.args)}))
		hint := &struct{ Method, Endpoint string }{}
		if c := d.Context.Confirmation; c != nil {
			hint.Method, hint.Endpoint = c.Method, c.Endpoint
		}
		check("AuthZEN evaluation", d.Decision, d.Context.Reason, limitOf(d), hint)

		// The same as action.properties, the tool as the resource.
		body := fmt.Sprintf(`{"subject": %s, "action": {"name": "call", "properties": %s}, "resource": {"type": "tool", "id": %q, "properties": {"tenant": %q}}}`,
			botForOlga, tc.args, tc.tool, tc.tenant)
		d = decodeInto[decision](t, f.do(call{path: "/access/v1/evaluation", token: pep, body: body}))
		check("AuthZEN tool resource", d.Decision, d.Context.Reason, limitOf(d), nil)

		c := decodeInto[checkResponse](t, f.do(call{path: "/api/v1/check", token: pep, body: fmt.Sprintf(
			`{"subject": "agent:support-bot", "on_behalf_of": "user:olga@acme.example", "tool": %q, "tenant": %q, "args": %s}`, tc.tool, tc.tenant, tc.args)}))
		limit := ""
		if c.Limit != nil {
			limit = c.Limit.Limit
		}
		check("/api/v1/check", c.Allowed, string(c.Reason), limit, nil)
		if c.Action != tc.tool || c.Policy == nil {
			t.Errorf("%s: /api/v1/check action %q policy %v, want the action and its policy", tc.name, c.Action, c.Policy)
		}

		// Search gives the evaluation's answer: the bot is found only where allowed.
		sr := decodeInto[searchResult](t, f.do(call{path: "/access/v1/search/subject", token: pep, body: fmt.Sprintf(
			`{"subject": {"type": "agent", "properties": {"on_behalf_of": "user:olga@acme.example"}}, "action": {"name": %q}, "resource": {"type": "tenant", "id": %q}, "context": %s}`,
			tc.tool, tc.tenant, tc.args)}))
		if found := strings.Contains(strings.Join(sr.ids(), ","), "support-bot"); found != tc.allowed {
			t.Errorf("%s: search/subject found the bot %v, want %v", tc.name, found, tc.allowed)
		}
	}
	// A batch decides each item as a single evaluation would, from one snapshot.
	res := decodeInto[batchResponse](t, f.do(call{path: "/access/v1/evaluations", token: pep,
		body: `{"evaluations": [` + strings.Join(batch, ",") + `]}`}))
	if len(res.Evaluations) != len(oneDoorCases) {
		t.Fatalf("evaluations: %d results, want %d", len(res.Evaluations), len(oneDoorCases))
	}
	for i, tc := range oneDoorCases {
		if d := res.Evaluations[i]; d.Decision != tc.allowed || d.Context.Reason != string(tc.reason) {
			t.Errorf("%s: evaluations[%d] = %v %s, want %v %s", tc.name, i, d.Decision, d.Context.Reason, tc.allowed, tc.reason)
		}
	}
}

func limitOf(d decision) string {
	if d.Context.Limit == nil {
		return ""
	}
	return d.Context.Limit.Limit
}

// Window usage counts as the guard counts it: a read-only evaluation sees
// the reservations made through the agent action API.
func TestOneDoorWindows(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	pep := f.pep()
	// acme-berlin: at most 500.00 EUR of refunds in 24 h.
	for i := range 10 {
		r := f.do(call{path: "/api/v1/actions/authorize", token: pep, body: `{"subject": "agent:support-bot", "on_behalf_of": "user:olga@acme.example",
			"tool": "process_refund", "tenant": "acme-berlin", "args": {"amount": "50.00", "currency": "EUR"}}`})
		if a := decodeInto[checkResponse](t, r); r.status != http.StatusOK || !a.Allowed || a.ActionID == "" {
			t.Fatalf("authorize refund %d = %d %s", i, r.status, r.body)
		}
	}
	d := decodeInto[decision](t, f.do(call{path: "/access/v1/evaluation", token: pep,
		body: authzenCall("process_refund", "acme-berlin", `{"amount": "1.00", "currency": "EUR"}`)}))
	if d.Decision || d.Context.Reason != string(gatehouse.ReasonLimitExceeded) || limitOf(d) != gatehouse.LimitMaxTotalAmount {
		t.Errorf("evaluation after 500.00 EUR of refunds = %+v, want limit_exceeded max_total_amount", d)
	}
	// A store that cannot count the window is a deny with internal_error.
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	d = decodeInto[decision](t, f.do(call{path: "/access/v1/evaluation", token: pep,
		body: authzenCall("process_refund", "acme-berlin", `{"amount": "1.00", "currency": "EUR"}`)}))
	if d.Decision || d.Context.Reason != string(gatehouse.ReasonInternalError) {
		t.Errorf("evaluation with the store closed = %+v, want internal_error", d)
	}
}

// Who may ask about whom, on every endpoint: a user asks about itself (and
// an agent acting for it); a PEP credential or an administrator about
// anyone.
func TestOneDoorWhoMayAsk(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	carl, admin, pep := f.token("user:carl@acme.example"), f.token("user:admin@example.com"), f.pep()
	aboutSara := `{"subject": {"type": "user", "id": "sara@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme"}}`
	aboutCarl := `{"subject": {"type": "user", "id": "carl@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme-berlin"}}`
	endpoints := []struct {
		name, path, other, self string
	}{
		{"evaluation", "/access/v1/evaluation", aboutSara, aboutCarl},
		{"evaluations", "/access/v1/evaluations", `{"evaluations": [` + aboutCarl + `,` + aboutSara + `]}`, `{"evaluations": [` + aboutCarl + `]}`},
		{"search/subject", "/access/v1/search/subject", `{"subject": {"type": "user"}, "action": {"name": "manage_ai_tools"}, "resource": {"type": "tenant", "id": "acme"}}`, ""},
		{"search/resource", "/access/v1/search/resource", `{"subject": {"type": "user", "id": "sara@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant"}}`,
			`{"subject": {"type": "user", "id": "carl@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant"}}`},
		{"search/action", "/access/v1/search/action", `{"subject": {"type": "user", "id": "sara@acme.example"}, "resource": {"type": "tenant", "id": "acme"}}`,
			`{"subject": {"type": "user", "id": "carl@acme.example"}, "resource": {"type": "tenant", "id": "acme-berlin"}}`},
		{"check", "/api/v1/check", `{"subject": "user:sara@acme.example", "tool": "analyze_loan", "tenant": "acme"}`, `{"tool": "analyze_loan", "tenant": "acme-berlin"}`},
		{"explain", "/api/v1/explain", `{"subject": "user:sara@acme.example", "tool": "analyze_loan", "tenant": "acme"}`, `{"tool": "analyze_loan", "tenant": "acme-berlin"}`},
		{"simulate", "/api/v1/actions/simulate", `{"subject": "agent:support-bot", "on_behalf_of": "user:olga@acme.example", "tool": "lookup_order", "tenant": "acme-berlin"}`,
			`{"subject": "agent:support-bot", "on_behalf_of": "user:carl@acme.example", "tool": "lookup_order", "tenant": "acme-berlin"}`},
		{"authorize", "/api/v1/actions/authorize", `{"subject": "agent:support-bot", "on_behalf_of": "user:carl@acme.example", "tool": "lookup_order", "tenant": "acme-berlin"}`, ""},
	}
	for _, e := range endpoints {
		r := f.do(call{path: e.path, token: carl, body: e.other})
		if b := decodeInto[errorBody](t, r); r.status != http.StatusForbidden || b.Error.Code != gatehouse.CodeAskForbidden {
			t.Errorf("%s: carl about another = %d %s, want 403 ask_forbidden", e.name, r.status, r.body)
		}
		for who, tok := range map[string]string{"admin": admin, "PEP key": pep} {
			if r := f.do(call{path: e.path, token: tok, body: e.other}); r.status != http.StatusOK {
				t.Errorf("%s: %s about another = %d %s, want 200", e.name, who, r.status, r.body)
			}
		}
		if e.self != "" {
			if r := f.do(call{path: e.path, token: carl, body: e.self}); r.status != http.StatusOK {
				t.Errorf("%s: carl about himself = %d %s, want 200", e.name, r.status, r.body)
			}
		}
	}
}
