package http_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
)

type actionAnswer struct {
	Allowed              bool   `json:"allowed"`
	Reason               string `json:"reason"`
	RequiresConfirmation bool   `json:"requires_confirmation"`
	ActionID             string `json:"action_id"`
	Status               string `json:"status"`
	Replayed             bool   `json:"replayed"`
	Message              string `json:"message"`
	Problem              string `json:"problem"`
	Limit                *struct {
		Limit, Max, Requested string
	} `json:"limit"`
}

// lenient decodes the fields of the response that T names.
func lenient[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

// The seed 004 flow over REST: the support bot asks to refund a customer,
// the customer confirms with her own token, the bot reports the refund
// executed; limits, idempotency and illegal steps answer with stable codes.
func TestActionsAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	bot, olga, carl := f.token("agent:support-bot"), f.token("user:olga@acme.example"), f.token("user:carl@acme.example")
	admin := f.token("user:admin@example.com")
	refund := func(amount string) string {
		return `{"on_behalf_of":"user:olga@acme.example","tool":"process_refund","args":{"amount":` + amount + `,"currency":"EUR"}}`
	}
	tenant := map[string]string{"X-Tenant-ID": "acme-berlin"}

	r := f.do(call{path: "/api/v1/actions/authorize", token: bot, body: refund(`"20.00"`), header: map[string]string{"X-Tenant-ID": "acme-berlin", "Idempotency-Key": "conv-1"}})
	first := lenient[actionAnswer](t, r)
	if r.status != http.StatusOK || !first.Allowed || first.Reason != "confirmation_required" || first.Status != "pending" || first.ActionID == "" {
		t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	r = f.do(call{path: "/api/v1/actions/authorize", token: bot, body: refund(`"20.00"`), header: map[string]string{"X-Tenant-ID": "acme-berlin", "Idempotency-Key": "conv-1"}})
	if again := lenient[actionAnswer](t, r); !again.Replayed || again.ActionID != first.ActionID {
		t.Errorf("authorize with the same Idempotency-Key: %s", r.body)
	}
	// A number with more digits than a float keeps is read exactly.
	r = f.do(call{path: "/api/v1/actions/authorize", token: bot, body: refund(`50.000000000000000001`), header: tenant})
	if a := lenient[actionAnswer](t, r); a.Reason != "invalid_request" || !strings.Contains(a.Problem, "more than 2 decimals") {
		t.Errorf("authorize 50.000000000000000001: %s", r.body)
	}
	r = f.do(call{path: "/api/v1/actions/authorize", token: bot, body: refund(`"60.00"`), header: map[string]string{"X-Tenant-ID": "acme-berlin", "Accept-Language": "fr"}})
	if a := lenient[actionAnswer](t, r); a.Allowed || a.Reason != "limit_exceeded" || a.Limit == nil || a.Limit.Max != "50.00" ||
		!strings.Contains(a.Message, "60.00 EUR") {
		t.Errorf("authorize over max_amount: %s", r.body)
	}
	r = f.do(call{path: "/api/v1/actions/simulate", token: bot, body: refund(`"10"`), header: tenant})
	if a := lenient[actionAnswer](t, r); !a.Allowed || a.ActionID != "" {
		t.Errorf("simulate: %s", r.body)
	}

	id := first.ActionID
	steps := []struct {
		op, token, body string
		status          int
		code            string
	}{
		{"executed", bot, "", http.StatusConflict, "illegal_transition"},
		{"confirm", carl, "", http.StatusForbidden, "not_approver"},
		{"confirm", bot, "", http.StatusForbidden, "not_approver"},
		{"confirm", olga, "", http.StatusOK, ""},
		{"confirm", olga, "", http.StatusConflict, "illegal_transition"},
		{"failed", bot, `{"error_message":""}`, http.StatusBadRequest, "invalid"},
		{"executed", bot, "", http.StatusOK, ""},
		{"cancel", olga, "", http.StatusConflict, "illegal_transition"},
	}
	for _, s := range steps {
		r := f.do(call{path: "/api/v1/actions/" + id + "/" + s.op, token: s.token, body: s.body})
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(r.body, &e)
		if r.status != s.status || e.Error.Code != s.code {
			t.Errorf("%s: %d %s, want %d %q", s.op, r.status, r.body, s.status, s.code)
		}
	}
	// One record: for its subject, the user it was for, or an admin; a
	// stranger sees no such record.
	for _, tc := range []struct {
		token  string
		status int
	}{{bot, http.StatusOK}, {olga, http.StatusOK}, {admin, http.StatusOK}, {carl, http.StatusNotFound}} {
		r := f.do(call{method: http.MethodGet, path: "/api/v1/actions/" + id, token: tc.token})
		if rec := lenient[gatehouse.ActionRecord](t, r); r.status != tc.status || (r.status == http.StatusOK && (rec.ID != id || rec.Status != gatehouse.ActionExecuted)) {
			t.Errorf("GET the record: %d %s, want %d", r.status, r.body, tc.status)
		}
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/actions/nope", token: admin}); r.status != http.StatusNotFound {
		t.Errorf("GET an unknown record: %d", r.status)
	}
	if r := f.do(call{path: "/api/v1/actions/nope/confirm", token: olga}); r.status != http.StatusNotFound {
		t.Errorf("confirm an unknown action: %d %s", r.status, r.body)
	}

	type page struct {
		Actions []struct {
			ID, Status string
		} `json:"actions"`
	}
	r = f.do(call{method: http.MethodGet, path: "/api/v1/actions?tenant=acme-berlin&status=executed", token: admin})
	if p := lenient[page](t, r); r.status != http.StatusOK || len(p.Actions) != 1 || p.Actions[0].ID != id {
		t.Errorf("list executed actions as admin: %d %s", r.status, r.body)
	}
	r = f.do(call{method: http.MethodGet, path: "/api/v1/actions?id=" + id, token: carl})
	if p := lenient[page](t, r); r.status != http.StatusOK || len(p.Actions) != 0 {
		t.Errorf("carl lists the bot's action: %s", r.body)
	}
	r = f.do(call{method: http.MethodGet, path: "/api/v1/actions?id=" + id, token: bot})
	if p := lenient[page](t, r); len(p.Actions) != 1 || p.Actions[0].Status != "executed" {
		t.Errorf("the bot lists its own action: %s", r.body)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/actions?status=approved", token: admin}); r.status != http.StatusBadRequest {
		t.Errorf("list with an unknown status: %d %s", r.status, r.body)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/actions?since=yesterday", token: admin}); r.status != http.StatusBadRequest {
		t.Errorf("list with a bad since: %d %s", r.status, r.body)
	}

	bad := []struct{ name, token, body string }{
		{"no tool", bot, `{"tenant":"acme-berlin"}`},
		{"args not an object", bot, `{"tool":"process_refund","tenant":"acme-berlin","args":[1]}`},
		{"unknown field", bot, `{"tool":"process_refund","amount":5}`},
		{"another subject", carl, `{"subject":"agent:support-bot","tool":"process_refund","tenant":"acme-berlin"}`},
	}
	for _, b := range bad {
		if r := f.do(call{path: "/api/v1/actions/authorize", token: b.token, body: b.body}); r.status < 400 || r.status >= 500 {
			t.Errorf("%s: %d %s, want a 4xx", b.name, r.status, r.body)
		}
	}

	// Replaying a stricter refund limit over REST, as an administrator.
	src, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(strings.Replace(string(src), `max_amount: "50.00"`, `max_amount: "10.00"`, 1)), &doc); err != nil {
		t.Fatal(err)
	}
	docJSON, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"tool":"process_refund","replay":{"policy":` + string(docJSON) + `,"days":1}}`
	r = f.do(call{path: "/api/v1/actions/simulate", token: admin, body: body})
	var rep struct {
		AllowedToDenied int `json:"allowed_to_denied"`
	}
	if err := json.Unmarshal(r.body, &rep); err != nil || r.status != http.StatusOK || rep.AllowedToDenied != 1 {
		t.Errorf("replay: %d %s", r.status, r.body)
	}
	if r := f.do(call{path: "/api/v1/actions/simulate", token: bot, body: body}); r.status != http.StatusForbidden {
		t.Errorf("replay by the bot: %d %s", r.status, r.body)
	}
}
