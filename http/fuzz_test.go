package http_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

// FuzzEvaluationRequest feeds arbitrary bodies to every AuthZEN endpoint:
// the decoders never panic, the answer is a decision or search result (200)
// or a bad request (400), never a 500, and a 200 is always a decision
// document or a result list.
func FuzzEvaluationRequest(f *testing.F) {
	for _, seed := range []string{
		saraLoan,
		`{"subject": {"type": "agent", "id": "support-bot", "properties": {"on_behalf_of": "user:olga@acme.example"}}, "action": {"name": "process_refund"}, "resource": {"type": "tool", "id": "process_refund", "properties": {"tenant": "acme-berlin"}}, "context": {"amount": 12.5}}`,
		`{"subject": {"type": "user", "id": "sara@acme.example"}, "action": {"name": "read"}, "options": {"evaluations_semantic": "deny_on_first_deny"}, "evaluations": [{"resource": {"type": "document", "id": "1"}}, {"resource": {"type": "tenant", "id": "acme"}, "action": {"name": "analyze_loan"}}]}`,
		`{"evaluations": [null, 1, "x", {}]}`,
		`{"subject": null, "action": [], "resource": {"type": 1, "id": {}}, "context": "c"}`,
		`{"subject": {"type": "user", "id": "\u0000"}, "action": {"name": "\ud800"}, "resource": {"type": "tenant", "id": ""}}`,
		`[[[[[[[[[[]]]]]]]]]]`,
		``,
		`{`,
		`{"subject": {"type": "user"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme"}, "page": {"limit": 1}}`,
		`{"subject": {"type": "user", "id": "sara@acme.example"}, "resource": {"type": "tenant"}, "action": {"name": "x"}, "page": {"token": "eyJhIjoieCJ9", "limit": -1}}`,
		`{"a": 1, "a": 2}`,
	} {
		f.Add([]byte(seed))
	}
	svc, _ := newService(f, examplePolicy)
	cfg := testConfig(f)
	cfg.AuthZENAuth = gatehttp.AuthNone
	cfg.MaxEvaluations = 50
	h := gatehttp.NewServer(svc, cfg).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/access/v1/evaluation", "/access/v1/evaluations", "/acme/access/v1/evaluations",
			"/access/v1/search/subject", "/access/v1/search/resource", "/access/v1/search/action"} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case http.StatusOK:
				var doc map[string]json.RawMessage
				if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || (doc["decision"] == nil && doc["evaluations"] == nil && doc["results"] == nil) {
					t.Fatalf("%s %q: 200 without a decision: %s", path, body, rec.Body)
				}
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			default:
				t.Fatalf("%s %q: status %d: %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzActionLimitRequest feeds arbitrary bodies to POST
// /api/v1/permissions/limits: a body is set (200, with its row), refused
// (400) or about an unknown action type (404), never a 500.
func FuzzActionLimitRequest(f *testing.F) {
	for _, seed := range []string{
		`{"action_type": "process_refund", "limit_type": "max_amount", "limit_value": "80.00"}`,
		`{"action_type": "process_refund", "limit_type": "time_window", "limit_value": 3, "time_window_hours": 1}`,
		`{"action_type": "process_refund", "limit_type": "max_total_amount", "limit_value": 1e3, "window": "24h", "currency": "EUR"}`,
		`{"action_type": "apply_discount", "limit_type": "max_percentage", "limit_value": "100.00"}`,
		`{"action_type": "lookup_order", "limit_type": "max_amount", "limit_value": "1", "currency": "JPY"}`,
		`{"action_type": "process_refund", "limit_type": "max_count", "limit_value": 9223372036854775807, "window": "9600h", "time_window_hours": 9600}`,
		`{"action_type": "process_refund", "limit_type": "max_count", "limit_value": "-0", "time_window_hours": -9223372036854775808}`,
		`{"action_type": "process_refund", "limit_type": "max_amount", "limit_value": "1e-99999"}`,
		`{"action_type": "", "limit_type": null, "limit_value": {}}`,
		`{"action_type": "launch_rocket"}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	svc, _ := newService(f, examplePolicy)
	cfg := testConfig(f)
	token, err := gatehttp.IssueToken(cfg, "user:admin@example.com", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	h := gatehttp.NewServer(svc, cfg).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/permissions/limits", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Tenant-ID", "acme-berlin")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var row struct {
				ID         string `json:"id"`
				LimitValue string `json:"limit_value"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &row); err != nil || row.ID == "" || row.LimitValue == "" {
				t.Fatalf("%q: 200 without a limit row: %s", body, rec.Body)
			}
		case http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("%q: status %d: %s", body, rec.Code, rec.Body)
		}
	})
}
