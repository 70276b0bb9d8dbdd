package http_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestApprovableActions: ?approvable=true lists the pending actions the
// caller may confirm, as the service decides: the customer and holders of
// the approver permission (a superuser), not the agent that asked nor
// colleagues without the approver permission.
func TestApprovableActions(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	bot := f.token("agent:support-bot")
	r := f.do(call{path: "/api/v1/actions/authorize", token: bot,
		body:   `{"on_behalf_of":"user:olga@acme.example","tool":"process_refund","args":{"amount":"20.00","currency":"EUR"}}`,
		header: map[string]string{"X-Tenant-ID": "acme-berlin"}})
	pending := lenient[actionAnswer](t, r)
	if pending.Status != "pending" {
		t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	type page struct {
		Actions []struct{ ID, Status string } `json:"actions"`
	}
	for _, tc := range []struct {
		subject string
		want    int
	}{
		{"user:olga@acme.example", 1}, // the customer
		{"user:admin@example.com", 1}, // a superuser
		{"user:sara@acme.example", 0}, // a supervisor without manage_ai_tools, the approver permission
		{"user:carl@acme.example", 0},
		{"agent:support-bot", 0}, // asked for it, may not confirm it
	} {
		r := f.do(call{method: http.MethodGet, path: "/api/v1/actions?approvable=true", token: f.token(tc.subject)})
		p := lenient[page](t, r)
		if r.status != http.StatusOK || len(p.Actions) != tc.want || (tc.want == 1 && p.Actions[0].ID != pending.ActionID) {
			t.Errorf("approvable actions of %s: %d %s, want %d", tc.subject, r.status, r.body, tc.want)
		}
	}
	olga := f.token("user:olga@acme.example")
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/actions?approvable=true&status=executed", token: olga}); r.status != http.StatusBadRequest {
		t.Errorf("approvable with status executed: %d %s, want 400", r.status, r.body)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/actions?approvable=maybe", token: olga}); r.status != http.StatusBadRequest {
		t.Errorf("approvable=maybe: %d %s, want 400", r.status, r.body)
	}
	if r := f.do(call{path: "/api/v1/actions/" + pending.ActionID + "/confirm", token: olga}); r.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	r = f.do(call{method: http.MethodGet, path: "/api/v1/actions?approvable=true", token: f.token("user:admin@example.com")})
	if p := lenient[page](t, r); len(p.Actions) != 0 {
		t.Errorf("approvable actions after the confirmation: %s, want none", r.body)
	}
}

// TestActionEvents: the event stream says "ready", then "action" for a
// record its caller may confirm, and nothing for one it may not.
func TestActionEvents(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	events := func(subject string) <-chan string {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/api/v1/actions/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.token(subject))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("GET /api/v1/actions/events as %s: %d %q", subject, res.StatusCode, res.Header.Get("Content-Type"))
		}
		out := make(chan string, 16)
		go func() {
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
					out <- name
				}
			}
			close(out)
		}()
		return out
	}
	next := func(ch <-chan string) string {
		select {
		case e := <-ch:
			return e
		case <-time.After(5 * time.Second):
			return "(none)"
		}
	}
	olga, carl := events("user:olga@acme.example"), events("user:carl@acme.example")
	if e, e2 := next(olga), next(carl); e != "ready" || e2 != "ready" {
		t.Fatalf("first events = %q, %q, want ready", e, e2)
	}
	r := f.do(call{path: "/api/v1/actions/authorize", token: f.token("agent:support-bot"),
		body:   `{"on_behalf_of":"user:olga@acme.example","tool":"process_refund","args":{"amount":"20.00","currency":"EUR"}}`,
		header: map[string]string{"X-Tenant-ID": "acme-berlin"}})
	if r.status != http.StatusOK {
		t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	if e := next(olga); e != "action" {
		t.Errorf("Olga's event after a refund she may confirm = %q, want action", e)
	}
	select {
	case e := <-carl:
		t.Errorf("Carl, who may not confirm it, got event %q", e)
	case <-time.After(200 * time.Millisecond):
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/actions/events"}); r.status != http.StatusUnauthorized {
		t.Errorf("events without a token: %d, want 401", r.status)
	}
}
