package http_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

type batchResponse struct {
	Evaluations []decision `json:"evaluations"`
}

func decisions(b batchResponse) []bool {
	out := make([]bool, len(b.Evaluations))
	for i, d := range b.Evaluations {
		out[i] = d.Decision
	}
	return out
}

// The examples of the AuthZEN 1.0 text, decided against testdata/spec.yaml.
func TestAuthZENSpecExamples(t *testing.T) {
	t.Parallel()
	f := newFixture(t, specPolicy, nil)
	tok := f.pep()
	single := []struct {
		name   string
		body   string
		want   bool
		reason string
	}{
		{"access evaluation request example", `{
			"subject": {"type": "user", "id": "alice@example.com"},
			"resource": {"type": "account", "id": "123"},
			"action": {"name": "can_read", "properties": {"method": "GET"}},
			"context": {"time": "1985-10-26T01:22-07:00"}}`, true, "granted"},
		{"HTTPS binding example", `{
			"subject": {"type": "user", "id": "alice@example.com"},
			"resource": {"type": "todo", "id": "1"},
			"action": {"name": "can_read"},
			"context": {"time": "1985-10-26T01:22-07:00"}}`, true, "granted"},
		{"subject with properties", `{
			"subject": {"type": "user", "id": "alice@example.com", "properties": {"ip_address": "172.217.22.14", "device_id": "8:65:ee:17:7e:0b"}},
			"resource": {"type": "book", "id": "123", "properties": {"library_record": {"title": "AuthZEN in Action", "isbn": "978-0593383322"}}},
			"action": {"name": "can_read"}}`, true, "granted"},
		{"unknown top-level fields are ignored", `{
			"subject": {"type": "user", "id": "alice@example.com", "extra": 1},
			"resource": {"type": "todo", "id": "1", "more": [1]},
			"action": {"name": "can_read", "x": null},
			"evaluations": "ignored by the single endpoint",
			"future_option": {"nested": true}}`, true, "granted"},
		{"properties and context reach conditions", `{
			"subject": {"type": "user", "id": "alice@example.com", "properties": {"department": "Sales"}},
			"resource": {"type": "doc", "id": "d1", "properties": {"ownerID": "alice@example.com"}},
			"action": {"name": "update", "properties": {"method": "PATCH"}},
			"context": {"channel": "web"}}`, true, "granted"},
		{"condition fails on another owner", `{
			"subject": {"type": "user", "id": "alice@example.com", "properties": {"department": "Sales"}},
			"resource": {"type": "doc", "id": "d1", "properties": {"ownerID": "bob@example.com"}},
			"action": {"name": "update", "properties": {"method": "PATCH"}},
			"context": {"channel": "web"}}`, false, "condition_failed"},
		{"action with properties, context with a schema", `{
			"subject": {"type": "user", "id": "alice@example.com", "properties": {"department": "Sales"}},
			"resource": {"type": "book", "id": "123"},
			"action": {"name": "extend-loan", "properties": {"period": "2W"}},
			"context": {"time": "1985-10-26T01:22-07:00", "schema": "https://schema.example.com/access-request.schema.json"}}`, false, "unknown_permission"},
		{"unknown subject is a deny", `{
			"subject": {"type": "user", "id": "mallory@example.com"},
			"resource": {"type": "todo", "id": "1"},
			"action": {"name": "can_read"}}`, false, "unknown_subject"},
		{"user with nothing", `{
			"subject": {"type": "user", "id": "bob@example.com"},
			"resource": {"type": "todo", "id": "1"},
			"action": {"name": "can_read"}}`, false, "permission_missing"},
	}
	for _, tt := range single {
		r := f.do(call{path: "/access/v1/evaluation", token: tok, body: tt.body})
		if r.status != http.StatusOK {
			t.Errorf("%s: status %d, want 200: %s", tt.name, r.status, r.body)
			continue
		}
		d := decodeInto[decision](t, r)
		if d.Decision != tt.want || d.Context.Reason != tt.reason || d.Context.Message == "" || d.Context.Version != 1 {
			t.Errorf("%s: got %+v, want decision %t reason %s", tt.name, d, tt.want, tt.reason)
		}
	}

	semantics := func(semantic string) string {
		return `{
			"subject": {"type": "user", "id": "alice@example.com"},
			"action": {"name": "read"},
			"options": {"evaluations_semantic": "` + semantic + `"},
			"evaluations": [
				{"resource": {"type": "document", "id": "1"}},
				{"resource": {"type": "document", "id": "2"}},
				{"resource": {"type": "document", "id": "3"}}]}`
	}
	batches := []struct {
		name string
		body string
		want []bool
	}{
		{"three requests without defaults", `{"evaluations": [
			{"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "can_read"},
			 "resource": {"type": "document", "id": "boxcarring.md"}, "context": {"time": "2024-05-31T15:22-07:00"}},
			{"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "can_read"},
			 "resource": {"type": "document", "id": "subject-search.md"}, "context": {"time": "2024-05-31T15:22-07:00"}},
			{"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "can_read"},
			 "resource": {"type": "document", "id": "resource-search.md"}, "context": {"time": "2024-05-31T15:22-07:00"}}]}`,
			[]bool{true, true, true}},
		{"default subject and context", `{
			"subject": {"type": "user", "id": "alice@example.com"},
			"context": {"time": "2024-05-31T15:22-07:00"},
			"evaluations": [
				{"action": {"name": "can_read"}, "resource": {"type": "document", "id": "boxcarring.md"}},
				{"action": {"name": "can_read"}, "resource": {"type": "document", "id": "subject-search.md"}},
				{"action": {"name": "can_read"}, "resource": {"type": "document", "id": "resource-search.md"}}]}`,
			[]bool{true, true, true}},
		{"default action overridden by the third", `{
			"subject": {"type": "user", "id": "alice@example.com"},
			"context": {"time": "2024-05-31T15:22-07:00"},
			"action": {"name": "can_read"},
			"evaluations": [
				{"resource": {"type": "document", "id": "boxcarring.md"}},
				{"resource": {"type": "document", "id": "subject-search.md"}},
				{"action": {"name": "can_edit"}, "resource": {"type": "document", "id": "resource-search.md"}}]}`,
			[]bool{true, true, false}},
		{"default subject overridden", `{
			"subject": {"type": "user", "id": "alice@example.com"},
			"action": {"name": "can_read"},
			"resource": {"type": "document", "id": "x"},
			"evaluations": [{}, {"subject": {"type": "user", "id": "bob@example.com"}}, {"context": {"k": 1}}]}`,
			[]bool{true, false, true}},
		{"execute_all", semantics("execute_all"), []bool{true, false, true}},
		{"deny_on_first_deny", semantics("deny_on_first_deny"), []bool{true, false}},
		{"permit_on_first_permit", semantics("permit_on_first_permit"), []bool{true}},
		{"execute_all is the default", strings.Replace(semantics("x"), `"options": {"evaluations_semantic": "x"},`, "", 1), []bool{true, false, true}},
		{"options example: unknown options are ignored", `{
			"evaluations": [{"resource": {"type": "doc", "id": "1"}, "subject": {"type": "doc", "id": "2"}, "action": {"name": "read"}}],
			"options": {"evaluations_semantic": "execute_all", "another_option": "value"}}`,
			[]bool{false}},
	}
	for _, tt := range batches {
		r := f.do(call{path: "/access/v1/evaluations", token: tok, body: tt.body})
		if r.status != http.StatusOK {
			t.Errorf("%s: status %d, want 200: %s", tt.name, r.status, r.body)
			continue
		}
		if got := decisions(decodeInto[batchResponse](t, r)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: decisions %v, want %v", tt.name, got, tt.want)
		}
	}

	// Without evaluations the batch endpoint answers like the single one.
	for _, body := range []string{
		`{"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "can_read"}, "resource": {"type": "todo", "id": "1"}}`,
		`{"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "can_read"}, "resource": {"type": "todo", "id": "1"}, "evaluations": []}`,
	} {
		r := f.do(call{path: "/access/v1/evaluations", token: tok, body: body})
		if d := decodeInto[decision](t, r); r.status != http.StatusOK || !d.Decision || d.Context.Reason != "granted" {
			t.Errorf("evaluations %s = %d %s, want a single granted decision", body, r.status, r.body)
		}
	}
}

// The Gatehouse mapping of docs/http.md, against the example policy.
func TestAuthZENMapping(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	tok := f.token("user:admin@example.com")
	eval := func(subject, action, resource, context string) string {
		body := `{"subject": ` + subject + `, "action": ` + action + `, "resource": ` + resource
		if context != "" {
			body += `, "context": ` + context
		}
		return body + "}"
	}
	sara := `{"type": "user", "id": "sara@acme.example"}`
	tests := []struct {
		name   string
		body   string
		want   bool
		reason string
		plan   string
		denied string
	}{
		{"tool as action, tenant as resource", eval(sara, `{"name": "analyze_loan"}`, `{"type": "tenant", "id": "acme"}`, ""), true, "granted", "", ""},
		{"tool as resource, tenant in its properties", eval(sara, `{"name": "call"}`, `{"type": "tool", "id": "analyze_loan", "properties": {"tenant": "acme"}}`, ""), true, "granted", "", ""},
		{"app resource, tenant in context", eval(sara, `{"name": "analyze_loan"}`, `{"type": "loan", "id": "42"}`, `{"tenant": "acme"}`), true, "granted", "", ""},
		{"resource tenant property wins over context", eval(sara, `{"name": "analyze_loan"}`, `{"type": "loan", "id": "42", "properties": {"tenant": "globex"}}`, `{"tenant": "acme"}`), false, "tenant_not_visible", "", ""},
		{"permission as action", eval(`{"type": "user", "id": "carl@acme.example"}`, `{"name": "chat.write"}`, `{"type": "chat", "id": "t1"}`, ""), true, "granted", "", ""},
		{"email is case-insensitive", eval(`{"type": "user", "id": "SARA@Acme.Example"}`, `{"name": "analyze_loan"}`, `{"type": "tenant", "id": "acme"}`, ""), true, "granted", "", ""},
		{"deny is a 200", eval(`{"type": "user", "id": "carl@acme.example"}`, `{"name": "analyze_loan"}`, `{"type": "tenant", "id": "acme-berlin"}`, ""), false, "permission_missing", "", ""},
		{"plan required names the plan", eval(`{"type": "user", "id": "gina@globex.example"}`, `{"name": "detect_fraud"}`, `{"type": "tenant", "id": "globex"}`, ""), false, "plan_required", "pro", ""},
		{"condition sees context", eval(`{"type": "user", "id": "carl@acme.example"}`, `{"name": "generate_report"}`, `{"type": "tenant", "id": "acme-berlin"}`, `{"report_kind": "weekly"}`), false, "condition_failed", "", ""},
		{"agent for a user who may", eval(`{"type": "agent", "id": "support-bot", "properties": {"on_behalf_of": "user:olga@acme.example"}}`, `{"name": "lookup_order"}`, `{"type": "tenant", "id": "acme-berlin"}`, ""), true, "granted", "", ""},
		{"agent for a bare email", eval(`{"type": "agent", "id": "support-bot", "properties": {"on_behalf_of": "Olga@acme.example"}}`, `{"name": "lookup_order"}`, `{"type": "tenant", "id": "acme-berlin"}`, ""), true, "granted", "", ""},
		{"agent denial names the user", eval(`{"type": "agent", "id": "support-bot", "properties": {"on_behalf_of": "user:carl@acme.example"}}`, `{"name": "process_refund"}`, `{"type": "tenant", "id": "acme-berlin"}`, ""), false, "permission_missing", "", "user:carl@acme.example"},
		{"unknown subject type", eval(`{"type": "group", "id": "admins"}`, `{"name": "chat.view"}`, `{"type": "chat", "id": "1"}`, ""), false, "unknown_subject_type", "", ""},
		{"on_behalf_of not a string", eval(`{"type": "agent", "id": "support-bot", "properties": {"on_behalf_of": 7}}`, `{"name": "lookup_order"}`, `{"type": "tenant", "id": "acme-berlin"}`, ""), false, "invalid_request", "", ""},
		{"on_behalf_of an agent", eval(`{"type": "agent", "id": "support-bot", "properties": {"on_behalf_of": "agent:x"}}`, `{"name": "lookup_order"}`, `{"type": "tenant", "id": "acme-berlin"}`, ""), false, "invalid_request", "", ""},
		{"tenant not a string", eval(sara, `{"name": "analyze_loan"}`, `{"type": "loan", "id": "42"}`, `{"tenant": ["acme"]}`), false, "invalid_request", "", ""},
		{"unknown tenant", eval(sara, `{"name": "analyze_loan"}`, `{"type": "tenant", "id": "atlantis"}`, ""), false, "unknown_tenant", "", ""},
		{"unknown action", eval(sara, `{"name": "teleport"}`, `{"type": "tenant", "id": "acme"}`, ""), false, "unknown_permission", "", ""},
		{"unknown tool resource", eval(sara, `{"name": "call"}`, `{"type": "tool", "id": "teleport"}`, ""), false, "unknown_permission", "", ""},
	}
	for _, tt := range tests {
		r := f.do(call{path: "/access/v1/evaluation", token: tok, body: tt.body})
		if r.status != http.StatusOK {
			t.Errorf("%s: status %d, want 200: %s", tt.name, r.status, r.body)
			continue
		}
		d := decodeInto[decision](t, r)
		if d.Decision != tt.want || d.Context.Reason != tt.reason || d.Context.Plan != tt.plan || d.Context.DeniedSubject != tt.denied {
			t.Errorf("%s: got %+v, want decision %t reason %s plan %q denied %q", tt.name, d, tt.want, tt.reason, tt.plan, tt.denied)
		}
		if d.Context.Message == "" {
			t.Errorf("%s: no message", tt.name)
		}
	}
}

func TestAuthZENBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, specPolicy, func(c *gatehttp.Config) { c.MaxEvaluations = 5 })
	tok := f.token("user:alice@example.com")
	const ok = `{"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "can_read"}, "resource": {"type": "todo", "id": "1"}}`
	without := func(key string) string {
		return strings.Replace(ok, map[string]string{
			"subject":  `"subject": {"type": "user", "id": "alice@example.com"}, `,
			"action":   `"action": {"name": "can_read"}, `,
			"resource": `, "resource": {"type": "todo", "id": "1"}`,
		}[key], "", 1)
	}
	replace := func(old, new string) string { return strings.Replace(ok, old, new, 1) }
	many := `{"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "can_read"}, "evaluations": [` +
		strings.Repeat(`{"resource": {"type": "todo", "id": "1"}},`, 5) + `{"resource": {"type": "todo", "id": "1"}}]}`
	tests := []struct {
		name, path, body string
		message          string
		field            string
	}{
		{"missing subject", "evaluation", without("subject"), "error.missing_field", "subject"},
		{"subject not an object", "evaluation", replace(`{"type": "user", "id": "alice@example.com"}`, `"alice"`), "error.field_not_object", "subject"},
		{"subject null", "evaluation", replace(`{"type": "user", "id": "alice@example.com"}`, `null`), "error.missing_field", "subject"},
		{"missing subject.type", "evaluation", replace(`"type": "user", `, ``), "error.missing_field", "subject.type"},
		{"empty subject.id", "evaluation", replace(`"id": "alice@example.com"`, `"id": ""`), "error.missing_field", "subject.id"},
		{"subject.id a number", "evaluation", replace(`"id": "alice@example.com"`, `"id": 42`), "error.field_not_string", "subject.id"},
		{"subject.properties an array", "evaluation", replace(`"id": "alice@example.com"`, `"id": "a@b.c", "properties": []`), "error.field_not_object", "subject.properties"},
		{"missing action", "evaluation", without("action"), "error.missing_field", "action"},
		{"missing action.name", "evaluation", replace(`{"name": "can_read"}`, `{}`), "error.missing_field", "action.name"},
		{"action.name a bool", "evaluation", replace(`"can_read"`, `true`), "error.field_not_string", "action.name"},
		{"action a string", "evaluation", replace(`{"name": "can_read"}`, `"can_read"`), "error.field_not_object", "action"},
		{"missing resource", "evaluation", without("resource"), "error.missing_field", "resource"},
		{"missing resource.id", "evaluation", replace(`"type": "todo", "id": "1"`, `"type": "todo"`), "error.missing_field", "resource.id"},
		{"resource an array", "evaluation", replace(`{"type": "todo", "id": "1"}`, `[]`), "error.field_not_object", "resource"},
		{"context a string", "evaluation", replace(`}}`, `}, "context": "now"}`), "error.field_not_object", "context"},
		{"empty body", "evaluation", ``, "error.bad_json", ""},
		{"malformed JSON", "evaluation", `{"subject": {`, "error.bad_json", ""},
		{"trailing data", "evaluation", ok + ` {}`, "error.bad_json", ""},
		{"array body", "evaluation", `[` + ok + `]`, "error.bad_json", ""},
		{"null body", "evaluation", `null`, "error.bad_json", ""},
		{"batch: evaluations an object", "evaluations", replace(`}}`, `}, "evaluations": {}}`), "error.field_not_array", "evaluations"},
		{"batch: too large", "evaluations", many, "error.too_many_evaluations", ""},
		{"batch: malformed defaults", "evaluations", `{"subject": "alice", "evaluations": [{}]}`, "error.field_not_object", "subject"},
		{"duplicate key", "evaluation", replace(`"id": "alice@example.com"`, `"id": "alice@example.com", "id": "bob@example.com"`), "error.duplicate_key", ""},
		{"duplicate key deep inside", "evaluation", replace(`}}`, `}, "context": {"a": [{"k": 1, "k": 2}]}}`), "error.duplicate_key", ""},
		{"not UTF-8", "evaluation", replace(`"alice@example.com"`, "\"al\xffice@example.com\""), "error.bad_json", ""},
		{"nested too deep", "evaluation", replace(`}}`, `}, "context": {"a": `+strings.Repeat(`[`, 70)+strings.Repeat(`]`, 70)+`}}`), "error.too_deep", ""},
		{"batch: unknown semantic", "evaluations", replace(`}}`, `}, "options": {"evaluations_semantic": "all"}, "evaluations": [{}]}`), "error.bad_semantic", ""},
		{"batch: semantic not a string", "evaluations", replace(`}}`, `}, "options": {"evaluations_semantic": 1}, "evaluations": [{}]}`), "error.bad_semantic", ""},
		{"batch: options not an object", "evaluations", replace(`}}`, `}, "options": 1}`), "error.field_not_object", "options"},
	}
	for _, tt := range tests {
		r := f.do(call{path: "/access/v1/" + tt.path, token: tok, body: tt.body})
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", tt.name, r.status, r.body)
			continue
		}
		e := decodeInto[errorBody](t, r)
		max := f.cfg.MaxEvaluations
		if tt.message == "error.too_deep" {
			max = 64
		}
		want := f.cat.Text("en", tt.message, map[string]any{"Field": tt.field, "Max": max, "Key": "id"})
		if tt.name == "duplicate key deep inside" {
			want = f.cat.Text("en", tt.message, map[string]any{"Key": "k"})
		}
		if e.Error.Code != "invalid" || e.Error.Message != want {
			t.Errorf("%s: error %+v, want code invalid and message %q", tt.name, e.Error, want)
		}
	}
}

// Fifty evaluations in parallel through the listener decide like one.
func TestAuthZENConcurrentEvaluations(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	tok := f.token("user:admin@example.com")
	var wg sync.WaitGroup
	errs := make(chan string, 50)
	for i := range 50 {
		wg.Go(func() {
			user, want := "sara@acme.example", true
			if i%2 == 1 {
				user, want = "carl@acme.example", false
			}
			body := fmt.Sprintf(`{"subject": {"type": "user", "id": %q}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme-berlin"}}`, user)
			req, err := http.NewRequest(http.MethodPost, f.url+"/access/v1/evaluation", strings.NewReader(body))
			if err != nil {
				errs <- err.Error()
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer res.Body.Close()
			var d decision
			if err := decodeJSON(res.Body, &d); err != nil || res.StatusCode != http.StatusOK || d.Decision != want {
				errs <- fmt.Sprintf("evaluation %d for %s: status %d decision %t err %v, want %t", i, user, res.StatusCode, d.Decision, err, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
