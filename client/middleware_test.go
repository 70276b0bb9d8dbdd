package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
)

// guardBody is the JSON the guard answers a refused request with.
type guardBody struct {
	Error struct {
		Code    string           `json:"code"`
		Reason  gatehouse.Reason `json:"reason"`
		Message string           `json:"message"`
		Plan    string           `json:"plan"`
		Feature string           `json:"feature"`
	} `json:"error"`
}

// guarded serves a handler behind mw on a loopback listener. The handler
// answers 200 with the reason of the answer that let the request through.
type guarded struct {
	url    string
	passed atomic.Int32
}

func newGuarded(t *testing.T, mw func(http.Handler) http.Handler) *guarded {
	t.Helper()
	g := &guarded{}
	mux := http.NewServeMux()
	mux.Handle("/tenants/{tenant}/", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.passed.Add(1)
		a, ok := client.AnswerFrom(r.Context())
		if !ok || !a.Allowed {
			t.Errorf("the handler ran without an allowing answer: %+v, %v", a, ok)
		}
		w.Write([]byte(a.Reason))
	})))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	g.url = ts.URL
	return g
}

// get requests tenant's page with header values (Authorization, …) and
// returns the status and, for a refusal, its body.
func (g *guarded) get(t *testing.T, tenant string, header map[string]string) (int, guardBody, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+"/tenants/"+tenant+"/report", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body guardBody
	if res.StatusCode != http.StatusOK {
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("refusal with Content-Type %q", ct)
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("refusal body: %v", err)
		}
	}
	return res.StatusCode, body, res.Header
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func pathTenant(r *http.Request) string { return r.PathValue("tenant") }

func TestRequirePermission(t *testing.T) {
	t.Parallel()
	var lang atomic.Value
	lang.Store("")
	record := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/v1/check" {
				lang.Store(r.Header.Get("Accept-Language"))
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := newGatehouse(t, record)
	c := newClient(t, srv, "")
	perm := newGuarded(t, client.RequirePermission(c, "use_ai_fraud_detection", client.WithTenant(pathTenant)))
	tool := newGuarded(t, client.RequireTool(c, "detect_fraud", client.WithTenant(pathTenant)))
	tests := []struct {
		name    string
		g       *guarded
		tenant  string
		header  map[string]string
		status  int
		code    string
		reason  gatehouse.Reason
		plan    string
		feature string
	}{
		{name: "allowed", g: perm, tenant: "acme", header: bearer(srv.Token(sara)), status: http.StatusOK},
		{name: "plan required", g: perm, tenant: "globex", header: bearer(srv.Token(gina)), status: http.StatusForbidden,
			code: client.CodeForbidden, reason: gatehouse.ReasonPlanRequired, plan: "pro", feature: "advanced_analytics"},
		{name: "permission missing", g: perm, tenant: "acme-berlin", header: bearer(srv.Token(carl)), status: http.StatusForbidden,
			code: client.CodeForbidden, reason: gatehouse.ReasonPermissionMissing},
		{name: "tenant not visible", g: perm, tenant: "globex", header: bearer(srv.Token(sara)), status: http.StatusForbidden,
			code: client.CodeForbidden, reason: gatehouse.ReasonTenantNotVisible},
		{name: "unknown tenant", g: perm, tenant: "nowhere", header: bearer(srv.Token(sara)), status: http.StatusForbidden,
			code: client.CodeForbidden, reason: gatehouse.ReasonUnknownTenant},
		{name: "no token", g: perm, tenant: "acme", status: http.StatusUnauthorized, code: client.CodeUnauthorized},
		{name: "bad token", g: perm, tenant: "acme", header: bearer("not-a-jwt"), status: http.StatusUnauthorized, code: client.CodeUnauthorized},
		{name: "tool allowed", g: tool, tenant: "acme-milan", header: bearer(srv.Token(sara)), status: http.StatusOK},
		{name: "tool plan required", g: tool, tenant: "globex", header: bearer(srv.Token(gina)), status: http.StatusForbidden,
			code: client.CodeForbidden, reason: gatehouse.ReasonPlanRequired, plan: "pro", feature: "advanced_analytics"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			passed := tc.g.passed.Load()
			status, body, header := tc.g.get(t, tc.tenant, tc.header)
			if status != tc.status || body.Error.Code != tc.code || body.Error.Reason != tc.reason ||
				body.Error.Plan != tc.plan || body.Error.Feature != tc.feature {
				t.Errorf("GET = %d %+v, want %d %s %s plan %q feature %q", status, body.Error, tc.status, tc.code, tc.reason, tc.plan, tc.feature)
			}
			if status != http.StatusOK && body.Error.Message == "" {
				t.Errorf("refusal without a message")
			}
			if status == http.StatusUnauthorized && header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if ran := tc.g.passed.Load() - passed; ran != map[bool]int32{true: 1, false: 0}[tc.status == http.StatusOK] {
				t.Errorf("handler ran %d times", ran)
			}
		})
	}

	// The caller's language reaches Gatehouse, and its message the caller.
	h := bearer(srv.Token(gina))
	h["Accept-Language"] = "de-DE, en;q=0.5"
	_, de, _ := perm.get(t, "globex", h)
	_, en, _ := perm.get(t, "globex", bearer(srv.Token(gina)))
	if got := lang.Load(); got != "" {
		t.Errorf("Accept-Language of a request without one = %q", got)
	}
	perm.get(t, "globex", h)
	if got := lang.Load(); got != "de-DE, en;q=0.5" {
		t.Errorf("Accept-Language forwarded as %q", got)
	}
	if de.Error.Reason != gatehouse.ReasonPlanRequired || de.Error.Message == en.Error.Message {
		t.Errorf("German and English refusals have the same message %q", de.Error.Message)
	}
}

func TestRequirePermissionWithSubject(t *testing.T) {
	t.Parallel()
	srv := newGatehouse(t, nil)
	fromHeader := client.WithSubject(func(r *http.Request) (gatehouse.SubjectRef, error) {
		return gatehouse.ParseSubject(r.Header.Get("X-User"))
	})
	// The service asks about its own users with an administrator's token.
	g := newGuarded(t, client.RequirePermission(newClient(t, srv, admin), "use_ai_loan_tool", fromHeader, client.WithTenant(pathTenant)))
	for _, tc := range []struct {
		user   string
		status int
		code   string
		reason gatehouse.Reason
	}{
		{"sara@acme.example", http.StatusOK, "", ""},
		{"user:carl@acme.example", http.StatusForbidden, client.CodeForbidden, gatehouse.ReasonPermissionMissing},
		{"nobody@example.com", http.StatusForbidden, client.CodeForbidden, gatehouse.ReasonUnknownSubject},
		{"", http.StatusUnauthorized, client.CodeUnauthorized, ""},
	} {
		status, body, _ := g.get(t, "acme-berlin", map[string]string{"X-User": tc.user})
		if status != tc.status || body.Error.Code != tc.code || body.Error.Reason != tc.reason {
			t.Errorf("GET as %q = %d %+v, want %d %s %s", tc.user, status, body.Error, tc.status, tc.code, tc.reason)
		}
	}

	// A client token that may not ask about others fails closed.
	notAdmin := newGuarded(t, client.RequirePermission(newClient(t, srv, carl), "use_ai_loan_tool", fromHeader))
	status, body, _ := notAdmin.get(t, "acme", map[string]string{"X-User": "sara@acme.example"})
	if status != http.StatusServiceUnavailable || body.Error.Code != gatehouse.CodeUnavailable || notAdmin.passed.Load() != 0 {
		t.Errorf("GET with a non-admin client = %d %+v, want 503 unavailable", status, body.Error)
	}
}

// TestRequirePermissionFailsClosed: whatever keeps Gatehouse from
// answering, the request is refused and the handler never runs.
func TestRequirePermissionFailsClosed(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()
	down, err := client.New(closedURL, client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	failingSrv := newGatehouse(t, newFailing(1<<30).wrap)
	release := make(chan struct{})
	defer close(release)
	hanging := newGatehouse(t, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
	})
	token := bearer(failingSrv.Token(sara))
	for _, tc := range []struct {
		name string
		c    *client.Client
		opts []client.GuardOption
	}{
		{"unreachable", down, nil},
		{"answering 503", newClient(t, failingSrv, ""), nil},
		{"too slow", newClient(t, hanging, ""), []client.GuardOption{client.WithGuardTimeout(20 * time.Millisecond)}},
	} {
		g := newGuarded(t, client.RequirePermission(tc.c, "chat.view", tc.opts...))
		status, body, _ := g.get(t, "acme", token)
		if status != http.StatusServiceUnavailable || body.Error.Code != gatehouse.CodeUnavailable || g.passed.Load() != 0 {
			t.Errorf("%s: GET = %d %+v, handler ran %d times; want 503 unavailable", tc.name, status, body.Error, g.passed.Load())
		}
	}

	// A custom error handler sees why and answers; the request still stops.
	var seen error
	g := newGuarded(t, client.RequirePermission(down, "chat.view", client.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		seen = err
		http.Error(w, "try later", http.StatusBadGateway)
	})))
	res, err := http.Get(g.url + "/tenants/acme/report")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway || !errors.Is(seen, gatehouse.ErrUnavailable) || g.passed.Load() != 0 {
		t.Errorf("custom handler: %d, saw %v, handler ran %d times", res.StatusCode, seen, g.passed.Load())
	}
}

// fakeClock is a settable clock for the decision cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestDecisionCache(t *testing.T) {
	t.Parallel()
	counter := newRequestCounter("/api/v1/check")
	srv := newGatehouse(t, counter.wrap)
	c := newClient(t, srv, "")
	clock := &fakeClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	saraH, ginaH := bearer(srv.Token(sara)), bearer(srv.Token(gina))
	checks := func() int { return counter.get("/api/v1/check") }

	g := newGuarded(t, client.RequirePermission(c, "use_ai_fraud_detection", client.WithTenant(pathTenant),
		client.WithDecisionCache(10*time.Second, 2, clock.Now)))
	steps := []struct {
		name    string
		tenant  string
		header  map[string]string
		advance time.Duration
		status  int
		checks  int // Gatehouse checks so far
	}{
		{"first request asks", "acme", saraH, 0, http.StatusOK, 1},
		{"repeat within the TTL is cached", "acme", saraH, 5 * time.Second, http.StatusOK, 1},
		{"another tenant asks", "globex", saraH, 0, http.StatusForbidden, 2},
		{"a denial is cached too", "globex", saraH, 0, http.StatusForbidden, 2},
		{"after the TTL it asks again", "acme", saraH, 6 * time.Second, http.StatusOK, 3},
		{"another caller asks", "globex", ginaH, 0, http.StatusForbidden, 4},
		{"the oldest entry was evicted (size 2)", "globex", saraH, 0, http.StatusForbidden, 5},
		{"the newest entries stay", "globex", ginaH, 0, http.StatusForbidden, 5},
		{"no token is never cached", "acme", nil, 0, http.StatusUnauthorized, 6},
		{"nor asked from the cache", "acme", nil, 0, http.StatusUnauthorized, 7},
	}
	for _, s := range steps {
		clock.advance(s.advance)
		if status, _, _ := g.get(t, s.tenant, s.header); status != s.status || checks() != s.checks {
			t.Errorf("%s: %d after %d checks, want %d after %d", s.name, status, checks(), s.status, s.checks)
		}
	}

	// Errors are not cached: after a failure the next request asks again.
	f := newFailing(1)
	flaky := newGatehouse(t, f.wrap)
	fg := newGuarded(t, client.RequirePermission(newClient(t, flaky, ""), "chat.view",
		client.WithDecisionCache(time.Minute, 10, clock.Now)))
	token := bearer(flaky.Token("user:carl@acme.example"))
	for i, want := range []int{http.StatusServiceUnavailable, http.StatusOK, http.StatusOK} {
		if status, _, _ := fg.get(t, "acme", token); status != want {
			t.Errorf("flaky request %d: %d, want %d", i, status, want)
		}
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("flaky Gatehouse saw %d checks, want 2", got)
	}
}

// TestDecisionCacheConcurrent runs the cached guard from many goroutines
// (for -race) and checks every answer.
func TestDecisionCacheConcurrent(t *testing.T) {
	t.Parallel()
	srv := newGatehouse(t, nil)
	mw := client.RequirePermission(newClient(t, srv, ""), "use_ai_fraud_detection", client.WithTenant(pathTenant),
		client.WithDecisionCache(time.Minute, 3, nil))
	g := newGuarded(t, mw)
	tokens := map[string]string{"acme": srv.Token(sara), "globex": srv.Token(gina)}
	want := map[string]int{"acme": http.StatusOK, "globex": http.StatusForbidden}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				if ctx.Err() != nil {
					return
				}
				tenant := []string{"acme", "globex"}[(i+j)%2]
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/tenants/"+tenant+"/report", nil)
				req.Header.Set("Authorization", "Bearer "+tokens[tenant])
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("%s: %v", tenant, err)
					cancel()
					return
				}
				res.Body.Close()
				if res.StatusCode != want[tenant] {
					t.Errorf("%s: %d, want %d", tenant, res.StatusCode, want[tenant])
					cancel()
				}
			}
		})
	}
	wg.Wait()
}

// RequireTool on a tool that performs an agent action gives the guard's
// answer: the request's arguments are checked against the tenant's
// limits, a disabled action and one that needs a confirmation are refused.
func TestRequireToolAgentAction(t *testing.T) {
	t.Parallel()
	srv := newGatehouse(t, nil)
	c := newClient(t, srv, "")
	args := func(r *http.Request) (map[string]any, error) {
		q := r.URL.Query()
		if q.Get("amount") == "" {
			return nil, nil
		}
		return map[string]any{"amount": q.Get("amount"), "currency": q.Get("currency")}, nil
	}
	refund := newGuarded(t, client.RequireTool(c, "process_refund", client.WithTenant(pathTenant), client.WithArgs(args)))
	cancel := newGuarded(t, client.RequireTool(c, "cancel_order", client.WithTenant(pathTenant)))
	bot := bearer(srv.Token("agent:support-bot"))
	get := func(g *guarded, tenant, query string) (int, guardBody) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, g.url+"/tenants/"+tenant+"/report?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", bot["Authorization"])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body guardBody
		if res.StatusCode != http.StatusOK {
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
		}
		return res.StatusCode, body
	}
	tests := []struct {
		name          string
		g             *guarded
		tenant, query string
		status        int
		reason        gatehouse.Reason
	}{
		{"5,000 EUR refund", refund, "acme-berlin", "amount=5000.00&currency=EUR", http.StatusForbidden, gatehouse.ReasonLimitExceeded},
		{"20 EUR refund needs a confirmation", refund, "acme-berlin", "amount=20.00&currency=EUR", http.StatusForbidden, gatehouse.ReasonConfirmationRequired},
		{"refund without its amount", refund, "acme-berlin", "", http.StatusForbidden, gatehouse.ReasonInvalidRequest},
		{"cancel without confirmation", cancel, "acme-milan", "", http.StatusOK, ""},
		{"cancel that needs a confirmation", cancel, "acme-berlin", "", http.StatusForbidden, gatehouse.ReasonConfirmationRequired},
	}
	for _, tc := range tests {
		if status, body := get(tc.g, tc.tenant, tc.query); status != tc.status || body.Error.Reason != tc.reason {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, status, body.Error, tc.status, tc.reason)
		}
	}
}

// The guard takes the tenant from a header, a path value or a function;
// without one, a permission held only in tenants is denied tenant_required.
func TestRequireToolTenantFrom(t *testing.T) {
	srv := newGatehouse(t, nil)
	c := newClient(t, srv, "")
	header := map[string]string{"Authorization": "Bearer " + srv.Token(sara), "X-Tenant-ID": "acme"}
	for _, tc := range []struct {
		name   string
		opts   []client.GuardOption
		header map[string]string
		status int
		reason gatehouse.Reason
	}{
		{"header", []client.GuardOption{client.WithTenantHeader("X-Tenant-ID")}, header, http.StatusOK, ""},
		{"header missing", []client.GuardOption{client.WithTenantHeader("X-Tenant-ID")}, bearer(srv.Token(sara)),
			http.StatusForbidden, gatehouse.ReasonTenantRequired},
		{"path value", []client.GuardOption{client.WithTenantPathValue("tenant")}, bearer(srv.Token(sara)), http.StatusOK, ""},
		{"function", []client.GuardOption{client.WithTenantFunc(func(*http.Request) string { return "acme-milan" })},
			bearer(srv.Token(sara)), http.StatusOK, ""},
		{"none", nil, bearer(srv.Token(sara)), http.StatusForbidden, gatehouse.ReasonTenantRequired},
	} {
		g := newGuarded(t, client.RequireTool(c, "detect_fraud", tc.opts...))
		status, body, _ := g.get(t, "acme-berlin", tc.header)
		if status != tc.status || body.Error.Reason != tc.reason {
			t.Errorf("%s: GET = %d %+v, want %d %s", tc.name, status, body.Error, tc.status, tc.reason)
		}
	}
}

// Tenants lists the caller's tenants for a tenant switcher.
func TestTenants(t *testing.T) {
	srv := newGatehouse(t, nil)
	got, err := newClient(t, srv, carl).Tenants(context.Background())
	want := []gatehouse.TenantSummary{{ID: "acme-berlin", Title: "ACME Berlin store", Parent: "acme", Plan: "pro", PlanFrom: "acme"}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Tenants() = %+v, %v, want %+v", got, err, want)
	}
}
