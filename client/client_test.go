package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
	gatehttp "github.com/gatehouse/gatehouse/http"
)

// Users of examples/ai-assistant/policy.yaml.
const (
	admin = "user:admin@example.com" // the only superuser
	sara  = "user:sara@acme.example" // Agent Supervisor in acme (pro)
	carl  = "user:carl@acme.example" // Customer Service Agent in acme-berlin
	gina  = "user:gina@globex.example"
	olga  = "user:olga@acme.example" // AI Administrator in acme: a tenant admin
)

// newClient returns a client of srv with as's token ("" for none) and
// fast retries.
func newClient(t *testing.T, srv *gatehouseServer, as string, opts ...client.Option) *client.Client {
	t.Helper()
	if as != "" {
		opts = append([]client.Option{client.WithToken(srv.Token(as))}, opts...)
	}
	c, err := client.New(srv.URL, append([]client.Option{client.WithRetries(2, time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkErr fails unless err is an *Error with status and code, and, for a
// code with a sentinel, errors.Is that sentinel.
func checkErr(t *testing.T, name string, err error, status int, code string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T), want *client.Error %d %s", name, err, err, status, code)
	}
	if e.StatusCode != status || e.Code != code {
		t.Errorf("%s: error %d %s, want %d %s (%v)", name, e.StatusCode, e.Code, status, code, err)
	}
	sentinel := map[string]error{
		gatehouse.CodeInvalid: gatehouse.ErrInvalid, gatehouse.CodeNotFound: gatehouse.ErrNotFound,
		gatehouse.CodeLastSuperuser: gatehouse.ErrLastSuperuser, gatehouse.CodeUnavailable: gatehouse.ErrUnavailable,
	}[code]
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("%s: errors.Is(%v, %v) = false", name, err, sentinel)
	}
	if e.Code != gatehouse.CodeNotFound && errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("%s: %s error is ErrNotFound", name, e.Code)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "localhost:8080", "ftp://host", "http://", "http://host/?q=1"} {
		if _, err := client.New(u); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("New(%q) = %v, want ErrInvalid", u, err)
		}
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	srv := newGatehouse(t, nil)
	ctx := context.Background()
	tests := []struct {
		name    string
		as      string
		req     client.AccessRequest
		allowed bool
		reason  gatehouse.Reason
		plan    string
		status  int
		code    string
	}{
		{name: "granted", as: sara, req: client.AccessRequest{Subject: client.User("sara@acme.example"),
			Action: client.Action{Name: "analyze_loan"}, Resource: client.Tenant("acme")},
			allowed: true, reason: gatehouse.ReasonGranted},
		{name: "plan required", as: gina, req: client.AccessRequest{Subject: client.User("gina@globex.example"),
			Action: client.Action{Name: "detect_fraud"}, Resource: client.Tenant("globex")},
			reason: gatehouse.ReasonPlanRequired, plan: "pro"},
		{name: "tenant not visible", as: carl, req: client.AccessRequest{Subject: client.User("carl@acme.example"),
			Action: client.Action{Name: "customer_insights"}, Resource: client.Tenant("globex")},
			reason: gatehouse.ReasonTenantNotVisible},
		{name: "agent for a user", as: admin, req: client.AccessRequest{Subject: client.Agent("support-bot", "carl@acme.example"),
			Action: client.Action{Name: "process_refund"}, Resource: client.Tenant("acme-berlin")},
			reason: gatehouse.ReasonPermissionMissing},
		// Carl's report grant holds for daily reports only; reports need premium.
		{name: "condition from context", as: carl, req: client.AccessRequest{Subject: client.User("carl@acme.example"),
			Action: client.Action{Name: "use_ai_report_generation"}, Resource: client.Tenant("acme-berlin"),
			Context: map[string]any{"report_kind": "daily"}},
			reason: gatehouse.ReasonPlanRequired, plan: "premium"},
		{name: "condition failed", as: carl, req: client.AccessRequest{Subject: client.User("carl@acme.example"),
			Action: client.Action{Name: "use_ai_report_generation"}, Resource: client.Tenant("acme-berlin"),
			Context: map[string]any{"report_kind": "weekly"}},
			reason: gatehouse.ReasonConditionFailed},
		{name: "no resource", as: sara, req: client.AccessRequest{Subject: client.User("sara@acme.example"),
			Action: client.Action{Name: "analyze_loan"}},
			status: http.StatusBadRequest, code: gatehouse.CodeInvalid},
		{name: "no token", req: client.AccessRequest{Subject: client.User("sara@acme.example"),
			Action: client.Action{Name: "analyze_loan"}, Resource: client.Tenant("acme")},
			status: http.StatusUnauthorized, code: client.CodeUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newClient(t, srv, tc.as).Evaluate(ctx, tc.req)
			if tc.code != "" {
				checkErr(t, "Evaluate", err, tc.status, tc.code)
				return
			}
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if d.Allowed != tc.allowed || d.Reason != tc.reason || d.Plan != tc.plan {
				t.Errorf("Evaluate = %v %s plan %q, want %v %s plan %q", d.Allowed, d.Reason, d.Plan, tc.allowed, tc.reason, tc.plan)
			}
			if d.Message == "" || d.Version == 0 {
				t.Errorf("Evaluate: message %q, version %d: want both", d.Message, d.Version)
			}
		})
	}
}

func TestEvaluations(t *testing.T) {
	t.Parallel()
	srv := newGatehouse(t, nil)
	c := newClient(t, srv, gina)
	ctx := context.Background()
	defaults := client.AccessRequest{Subject: client.User("gina@globex.example"), Resource: client.Tenant("globex")}
	items := []client.AccessRequest{
		{Action: client.Action{Name: "analyze_loan"}},
		{Action: client.Action{Name: "detect_fraud"}},
		{Action: client.Action{Name: "analyze_loan"}, Resource: client.Tenant("acme")},
	}
	tests := []struct {
		semantic string
		want     []gatehouse.Reason
	}{
		{"", []gatehouse.Reason{gatehouse.ReasonGranted, gatehouse.ReasonPlanRequired, gatehouse.ReasonTenantNotVisible}},
		{client.SemanticExecuteAll, []gatehouse.Reason{gatehouse.ReasonGranted, gatehouse.ReasonPlanRequired, gatehouse.ReasonTenantNotVisible}},
		{client.SemanticDenyOnFirstDeny, []gatehouse.Reason{gatehouse.ReasonGranted, gatehouse.ReasonPlanRequired}},
		{client.SemanticPermitOnFirstPermit, []gatehouse.Reason{gatehouse.ReasonGranted}},
	}
	for _, tc := range tests {
		ds, err := c.Evaluations(ctx, client.BatchRequest{Defaults: defaults, Evaluations: items, Semantic: tc.semantic})
		if err != nil {
			t.Fatalf("Evaluations(%q): %v", tc.semantic, err)
		}
		var got []gatehouse.Reason
		for _, d := range ds {
			got = append(got, d.Reason)
			if d.Allowed != (d.Reason == gatehouse.ReasonGranted) {
				t.Errorf("Evaluations(%q): %s with allowed %v", tc.semantic, d.Reason, d.Allowed)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Evaluations(%q) = %v, want %v", tc.semantic, got, tc.want)
		}
	}

	// A malformed item is a deny with its error; the others are decided.
	ds, err := c.Evaluations(ctx, client.BatchRequest{Evaluations: []client.AccessRequest{
		{Subject: client.User("gina@globex.example"), Action: client.Action{Name: "analyze_loan"}, Resource: client.Tenant("globex")},
		{Subject: client.User("gina@globex.example"), Action: client.Action{Name: "analyze_loan"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || !ds[0].Allowed || ds[1].Allowed || ds[1].Reason != gatehouse.ReasonInvalidRequest ||
		ds[1].Error == nil || ds[1].Error.Code != gatehouse.CodeInvalid {
		t.Errorf("Evaluations with a malformed item = %+v, want granted then invalid_request with an invalid error", ds)
	}

	_, err = c.Evaluations(ctx, client.BatchRequest{Defaults: defaults, Evaluations: items, Semantic: "first_come"})
	checkErr(t, "Evaluations with a bad semantic", err, http.StatusBadRequest, gatehouse.CodeInvalid)
	if _, err := c.Evaluations(ctx, client.BatchRequest{Defaults: defaults}); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Evaluations without items = %v, want ErrInvalid", err)
	}
	_, err = newClient(t, srv, "").Evaluations(ctx, client.BatchRequest{Defaults: defaults, Evaluations: items})
	checkErr(t, "Evaluations without a token", err, http.StatusUnauthorized, client.CodeUnauthorized)
}

// countRequests wraps a handler and counts the requests to each path.
type requestCounter struct {
	n map[string]*atomic.Int32
}

func newRequestCounter(paths ...string) *requestCounter {
	c := &requestCounter{n: map[string]*atomic.Int32{}}
	for _, p := range paths {
		c.n[p] = new(atomic.Int32)
	}
	return c
}

func (c *requestCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := c.n[r.URL.Path]; n != nil {
			n.Add(1)
		}
		next.ServeHTTP(w, r)
	})
}

func (c *requestCounter) get(path string) int { return int(c.n[path].Load()) }

func TestSearch(t *testing.T) {
	t.Parallel()
	counter := newRequestCounter("/access/v1/search/subject", "/access/v1/search/resource", "/access/v1/search/action")
	srv := newGatehouse(t, counter.wrap)
	c := newClient(t, srv, admin)
	ctx := context.Background()

	collect := func(name string, seq func(yield func(string, error) bool)) []string {
		t.Helper()
		var ids []string
		for id, err := range seq {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	subjects := func(req client.SearchRequest) func(func(string, error) bool) {
		return func(yield func(string, error) bool) {
			for s, err := range c.SearchSubjects(ctx, req) {
				if !yield(string(s.Type)+":"+s.ID, err) {
					return
				}
			}
		}
	}
	resources := func(req client.SearchRequest) func(func(string, error) bool) {
		return func(yield func(string, error) bool) {
			for r, err := range c.SearchResources(ctx, req) {
				if !yield(r.Type+":"+r.ID, err) {
					return
				}
			}
		}
	}

	// Paging through every page gives what one page gives.
	sub := client.SearchRequest{Subject: client.Subject{Type: gatehouse.SubjectUser},
		Action: client.Action{Name: "chat.view"}, Resource: client.Tenant("acme")}
	all := collect("SearchSubjects", subjects(sub))
	sub.PageSize = 1
	before := counter.get("/access/v1/search/subject")
	paged := collect("SearchSubjects by 1", subjects(sub))
	if !slices.Equal(all, paged) || len(all) < 3 {
		t.Errorf("SearchSubjects by 1 = %v, want %v (at least 3)", paged, all)
	}
	if got := counter.get("/access/v1/search/subject") - before; got != len(all) {
		t.Errorf("SearchSubjects by 1 made %d requests, want %d", got, len(all))
	}
	// Breaking out of the loop fetches no further page.
	before = counter.get("/access/v1/search/subject")
	for range c.SearchSubjects(ctx, sub) {
		break
	}
	if got := counter.get("/access/v1/search/subject") - before; got != 1 {
		t.Errorf("breaking after the first subject made %d requests, want 1", got)
	}

	res := client.SearchRequest{Subject: client.User("sara@acme.example"), Action: client.Action{Name: "analyze_loan"},
		Resource: gatehouse.Resource{Type: gatehouse.ResourceTypeTenant}, PageSize: 2}
	if got, want := collect("SearchResources", resources(res)), []string{"tenant:acme", "tenant:acme-berlin", "tenant:acme-milan"}; !slices.Equal(got, want) {
		t.Errorf("SearchResources = %v, want %v", got, want)
	}

	var actions []string
	for a, err := range c.SearchActions(ctx, client.SearchRequest{Subject: client.User("carl@acme.example"),
		Action: client.Action{Name: "ignored"}, Resource: client.Tenant("acme-berlin")}) {
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, a.Name)
	}
	if !slices.Contains(actions, "customer_insights") || slices.Contains(actions, "analyze_loan") {
		t.Errorf("SearchActions(carl) = %v, want customer_insights and not analyze_loan", actions)
	}

	// One page, then its token with another search.
	page, err := c.Search(ctx, client.SearchResources, res, "")
	if err != nil || len(page.Results) != 2 || page.NextToken == "" || page.Version == 0 {
		t.Fatalf("Search first page = %+v, %v: want 2 results, a token and a version", page, err)
	}
	other := res
	other.Subject = client.User("olga@acme.example")
	_, err = c.Search(ctx, client.SearchResources, other, page.NextToken)
	checkErr(t, "Search with another search's token", err, http.StatusBadRequest, gatehouse.CodeInvalid)

	// A search error ends the sequence after yielding it.
	var errs int
	for _, err := range newClient(t, srv, "").SearchResources(ctx, res) {
		checkErr(t, "SearchResources without a token", err, http.StatusUnauthorized, client.CodeUnauthorized)
		errs++
	}
	if errs != 1 {
		t.Errorf("SearchResources without a token yielded %d errors, want 1", errs)
	}
}

func TestCheckExplainEffective(t *testing.T) {
	t.Parallel()
	srv := newGatehouse(t, nil)
	ctx := context.Background()
	tests := []struct {
		name    string
		as      string
		req     client.CheckRequest
		allowed bool
		reason  gatehouse.Reason
		plan    string
		status  int
		code    string
		errWhy  gatehouse.Reason
	}{
		{name: "self, tool", as: sara, req: client.CheckRequest{Tool: "analyze_loan", Tenant: "acme"},
			allowed: true, reason: gatehouse.ReasonGranted},
		{name: "self, permission", as: carl, req: client.CheckRequest{Permission: "chat.write"},
			allowed: true, reason: gatehouse.ReasonGranted},
		{name: "plan", as: gina, req: client.CheckRequest{Tool: "detect_fraud", Tenant: "globex"},
			reason: gatehouse.ReasonPlanRequired, plan: "pro"},
		{name: "admin about another", as: admin, req: client.CheckRequest{Subject: gatehouse.User("carl@acme.example"),
			Tool: "analyze_loan", Tenant: "acme-berlin"}, reason: gatehouse.ReasonPermissionMissing},
		{name: "agent for a user", as: admin, req: client.CheckRequest{Subject: gatehouse.AgentRef("support-bot"),
			OnBehalfOf: gatehouse.User("olga@acme.example"), Tool: "lookup_order", Tenant: "acme-berlin"},
			allowed: true, reason: gatehouse.ReasonGranted},
		{name: "non-admin about another", as: carl, req: client.CheckRequest{Subject: gatehouse.User("sara@acme.example"),
			Tool: "analyze_loan", Tenant: "acme"}, status: http.StatusForbidden, code: gatehouse.CodeAskForbidden},
		{name: "permission and tool", as: sara, req: client.CheckRequest{Permission: "chat.view", Tool: "analyze_loan"},
			status: http.StatusBadRequest, code: gatehouse.CodeInvalid},
		{name: "no token", req: client.CheckRequest{Permission: "chat.view"},
			status: http.StatusUnauthorized, code: client.CodeUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, srv, tc.as)
			for _, explain := range []bool{false, true} {
				check := c.Check
				if explain {
					check = c.Explain
				}
				a, err := check(ctx, tc.req)
				if tc.code != "" {
					checkErr(t, "Check", err, tc.status, tc.code)
					var e *client.Error
					if errors.As(err, &e) && e.Reason != tc.errWhy {
						t.Errorf("Check error reason %q, want %q", e.Reason, tc.errWhy)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Check(explain %v): %v", explain, err)
				}
				if a.Allowed != tc.allowed || a.Reason != tc.reason || a.Plan != tc.plan {
					t.Errorf("Check(explain %v) = %v %s plan %q, want %v %s plan %q", explain, a.Allowed, a.Reason, a.Plan, tc.allowed, tc.reason, tc.plan)
				}
				if explain == (len(a.Steps) == 0) {
					t.Errorf("Check(explain %v) has %d steps", explain, len(a.Steps))
				}
			}
		})
	}

	eff, err := newClient(t, srv, sara).Effective(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if eff.Subject != gatehouse.User("sara@acme.example") || eff.Plan != "pro" || !eff.Flags["canUseLoanTool"] || eff.Flags["canUseReports"] {
		t.Errorf("Effective(sara, acme) = %+v, want plan pro, canUseLoanTool and not canUseReports", eff)
	}
	_, err = newClient(t, srv, sara).Effective(ctx, "no-such-tenant")
	checkErr(t, "Effective in an unknown tenant", err, http.StatusNotFound, gatehouse.CodeNotFound)
	_, err = newClient(t, srv, "").Effective(ctx, "acme")
	checkErr(t, "Effective without a token", err, http.StatusUnauthorized, client.CodeUnauthorized)
}

func TestAdministration(t *testing.T) {
	t.Parallel()
	srv := newGatehouse(t, nil)
	c := newClient(t, srv, admin)
	ctx := context.Background()

	doc, err := c.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "Agent Supervisor") {
		t.Errorf("Policy() has no Agent Supervisor:\n%s", doc)
	}
	res, err := c.ApplyPolicy(ctx, doc, true)
	if err != nil || !res.DryRun || len(res.Changes) != 0 {
		t.Errorf("ApplyPolicy(its own export, dry run) = %+v, %v: want a dry run without changes", res, err)
	}
	version := res.Version
	// A section the document has replaces the stored one.
	res, err = c.ApplyPolicy(ctx, []byte("categories:\n  - {name: Only, bundles: [Access AI Chat]}\n"), true)
	if err != nil || !res.DryRun || len(res.Changes) == 0 || res.Version != version || !strings.Contains(res.Diff, "Only") {
		t.Errorf("ApplyPolicy(categories, dry run) = %+v, %v: want changes and a diff at version %d", res, err, version)
	}
	_, err = c.ApplyPolicy(ctx, []byte("categories:\n  - {name: Bad, bundles: [No Such]}\n"), false)
	checkErr(t, "ApplyPolicy(unknown bundle)", err, http.StatusBadRequest, gatehouse.CodeInvalid)
	var e *client.Error
	if errors.As(err, &e) && len(e.Details) != 1 {
		t.Errorf("ApplyPolicy(unknown bundle): details %q, want one", e.Details)
	}

	// Many users in one change.
	batch := []client.UserRecord{{Email: "new1@x.io", Roles: []string{"Store Support"}, Tenants: []string{"acme"}}, {Email: "new2@x.io"}}
	if res, err := c.BatchUsers(ctx, batch, true); err != nil || !res.DryRun || len(res.Changes) != 2 {
		t.Errorf("BatchUsers(dry run) = %+v, %v: want two changes not applied", res, err)
	}
	_, err = c.BatchUsers(ctx, []client.UserRecord{{Email: "b@x.io", Roles: []string{"No Such"}}}, false)
	checkErr(t, "BatchUsers(unknown role)", err, http.StatusBadRequest, gatehouse.CodeInvalid)

	// Objects: create, read, list, replace, delete.
	role := gatehouse.Role{Name: "Auditor", Permissions: []string{"fetch_report"}}
	res, err = c.PutObject(ctx, gatehouse.KindRole, role.Name, role)
	if err != nil || !res.Created || res.Version <= version || len(res.Changes) != 1 {
		t.Fatalf("PutObject(new role) = %+v, %v: want created at a new version", res, err)
	}
	var got gatehouse.Role
	if err := c.Object(ctx, gatehouse.KindRole, "Auditor", &got); err != nil || !slices.Equal(got.Permissions, role.Permissions) {
		t.Errorf("Object(role Auditor) = %+v, %v", got, err)
	}
	var roles []gatehouse.Role
	if v, err := c.Objects(ctx, gatehouse.KindRole, &roles); err != nil || v != res.Version ||
		!slices.ContainsFunc(roles, func(r gatehouse.Role) bool { return r.Name == "Auditor" }) {
		t.Errorf("Objects(roles) = %d roles at version %d, %v: want Auditor at %d", len(roles), v, err, res.Version)
	}
	res, err = c.PutObject(ctx, gatehouse.KindRole, role.Name, role)
	if err != nil || res.Created || len(res.Changes) != 0 {
		t.Errorf("PutObject(same role) = %+v, %v: want no change", res, err)
	}
	// RBAC permissions are at /api/v1/rbac/permissions.
	perm := gatehouse.Permission{Name: "reports.export", Title: "Export reports"}
	if res, err := c.PutObject(ctx, gatehouse.KindPermission, perm.Name, perm); err != nil || !res.Created {
		t.Errorf("PutObject(permission) = %+v, %v: want created", res, err)
	}
	var gotPerm gatehouse.Permission
	if err := c.Object(ctx, gatehouse.KindPermission, perm.Name, &gotPerm); err != nil || gotPerm.Title != perm.Title {
		t.Errorf("Object(permission %s) = %+v, %v", perm.Name, gotPerm, err)
	}
	var perms []gatehouse.Permission
	if _, err := c.Objects(ctx, gatehouse.KindPermission, &perms); err != nil ||
		!slices.ContainsFunc(perms, func(p gatehouse.Permission) bool { return p.Name == perm.Name }) {
		t.Errorf("Objects(permissions) = %d permissions, %v: want %s among them", len(perms), err, perm.Name)
	}
	if res, err := c.DeleteObject(ctx, gatehouse.KindPermission, perm.Name); err != nil || len(res.Changes) != 1 {
		t.Errorf("DeleteObject(permission) = %+v, %v", res, err)
	}
	var settings gatehouse.Settings
	if err := c.Object(ctx, gatehouse.KindSettings, "", &settings); err != nil || settings.AdminPermission != "manage_ai_tools" {
		t.Errorf("Object(settings) = %+v, %v", settings, err)
	}
	_, err = c.PutObject(ctx, gatehouse.KindRole, "Broken", gatehouse.Role{Name: "Broken", Permissions: []string{"no.such"}})
	checkErr(t, "PutObject(role with an unknown permission)", err, http.StatusBadRequest, gatehouse.CodeInvalid)
	err = c.Object(ctx, gatehouse.KindRole, "No Such Role", &got)
	checkErr(t, "Object(missing role)", err, http.StatusNotFound, gatehouse.CodeNotFound)
	resource := gatehouse.ResourceEntry{Type: "record", ID: "r 1?x#y", Tenant: "acme"}
	if _, err := c.PutObject(ctx, gatehouse.KindResource, resource.Key(), resource); err != nil {
		t.Errorf("PutObject(resource %s): %v", resource.Key(), err)
	}
	var gotResource gatehouse.ResourceEntry
	if err := c.Object(ctx, gatehouse.KindResource, "record/r 1?x#y", &gotResource); err != nil || gotResource.ID != "r 1?x#y" {
		t.Errorf("Object(resource record/r 1?x#y) = %+v, %v", gotResource, err)
	}

	// Bindings and grants.
	carlRef := gatehouse.User("carl@acme.example")
	if res, err = c.Bind(ctx, carlRef, gatehouse.Assignment{Role: "Auditor", Tenant: "acme-berlin"}); err != nil || len(res.Changes) != 1 {
		t.Errorf("Bind = %+v, %v: want one change", res, err)
	}
	if res, err = c.Unbind(ctx, carlRef, "Auditor", "acme-berlin"); err != nil || len(res.Changes) != 1 {
		t.Errorf("Unbind = %+v, %v: want one change", res, err)
	}
	_, err = c.Unbind(ctx, carlRef, "Auditor", "acme-berlin")
	checkErr(t, "Unbind twice", err, http.StatusNotFound, gatehouse.CodeNotFound)
	bot := gatehouse.AgentRef("support-bot")
	if res, err = c.Grant(ctx, bot, gatehouse.Grant{Permission: "fetch_report", Tenant: "acme"}); err != nil || len(res.Changes) != 1 {
		t.Errorf("Grant = %+v, %v: want one change", res, err)
	}
	if res, err = c.Revoke(ctx, bot, "fetch_report", "acme"); err != nil || len(res.Changes) != 1 {
		t.Errorf("Revoke = %+v, %v: want one change", res, err)
	}
	_, err = c.Revoke(ctx, bot, "fetch_report", "")
	checkErr(t, "Revoke a grant that does not exist", err, http.StatusNotFound, gatehouse.CodeNotFound)
	if _, err := c.Bind(ctx, gatehouse.SubjectRef{}, gatehouse.Assignment{Role: "Auditor"}); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Bind(no subject) = %v, want ErrInvalid", err)
	}

	// Superusers: never the last one.
	_, err = c.Demote(ctx, "admin@example.com")
	checkErr(t, "Demote(the last superuser)", err, http.StatusConflict, gatehouse.CodeLastSuperuser)
	if res, err = c.Promote(ctx, "sara@acme.example"); err != nil || len(res.Changes) != 1 {
		t.Errorf("Promote(sara) = %+v, %v", res, err)
	}
	if res, err = c.Demote(ctx, "sara@acme.example"); err != nil || len(res.Changes) != 1 {
		t.Errorf("Demote(sara) = %+v, %v", res, err)
	}

	if res, err = c.DeleteObject(ctx, gatehouse.KindRole, "Auditor"); err != nil || len(res.Changes) != 1 {
		t.Errorf("DeleteObject(Auditor) = %+v, %v", res, err)
	}
	_, err = c.DeleteObject(ctx, gatehouse.KindRole, "Auditor")
	checkErr(t, "DeleteObject twice", err, http.StatusNotFound, gatehouse.CodeNotFound)

	// Others may not administer; a tenant admin gets the reason.
	for _, who := range []string{carl, olga} {
		_, err := newClient(t, srv, who).Policy(ctx)
		checkErr(t, "Policy as "+who, err, http.StatusForbidden, client.CodeForbidden)
		_, err = newClient(t, srv, who).PutObject(ctx, gatehouse.KindRole, "Auditor", role)
		checkErr(t, "PutObject as "+who, err, http.StatusForbidden, client.CodeForbidden)
	}
	_, err = newClient(t, srv, "").Promote(ctx, "carl@acme.example")
	checkErr(t, "Promote without a token", err, http.StatusUnauthorized, client.CodeUnauthorized)
}

func TestAudit(t *testing.T) {
	t.Parallel()
	srv := newGatehouse(t, nil)
	c := newClient(t, srv, admin)
	ctx := context.Background()
	for _, email := range []string{"sara@acme.example", "carl@acme.example"} {
		if _, err := c.Promote(ctx, email); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Demote(ctx, email); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.Audit(ctx, gatehouse.AuditFilter{Limit: 10000})
	if err != nil || len(first.Events) < 5 || first.Next != 0 {
		t.Fatalf("Audit(all) = %d events, next %d, %v: want at least 5 and the end", len(first.Events), first.Next, err)
	}
	var seqs []int64
	for e, err := range c.AuditEvents(ctx, gatehouse.AuditFilter{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
	}
	var want []int64
	for _, e := range first.Events {
		want = append(want, e.Seq)
	}
	if !slices.Equal(seqs, want) {
		t.Errorf("AuditEvents by 2 = %v, want %v", seqs, want)
	}
	var promotes int
	for e, err := range c.AuditEvents(ctx, gatehouse.AuditFilter{Action: "user.promote", Actor: admin}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Action != "user.promote" {
			t.Errorf("AuditEvents(action user.promote) yielded %s", e.Action)
		}
		promotes++
	}
	if promotes != 2 {
		t.Errorf("AuditEvents(action user.promote) = %d events, want 2", promotes)
	}
	if page, err := c.Audit(ctx, gatehouse.AuditFilter{Since: time.Now().Add(time.Hour)}); err != nil || len(page.Events) != 0 {
		t.Errorf("Audit(since an hour ahead) = %d events, %v: want none", len(page.Events), err)
	}
	changes, err := c.Audit(ctx, gatehouse.AuditFilter{Kind: gatehouse.AuditKindChange, Limit: 10000})
	if err != nil || len(changes.Events) < 5 {
		t.Errorf("Audit(kind change) = %d events, %v: want at least the 4 promotions and demotions and the policy", len(changes.Events), err)
	}
	for _, e := range changes.Events {
		if e.Action == gatehouse.ActionDecision {
			t.Errorf("Audit(kind change) lists a decision: %+v", e)
		}
	}
	granted, err := c.Audit(ctx, gatehouse.AuditFilter{Reason: "granted"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range granted.Events {
		if e.Action != gatehouse.ActionDecision || !strings.Contains(string(e.Detail), `"reason":"granted"`) {
			t.Errorf("Audit(reason granted) lists %+v", e)
		}
	}
	_, err = c.Audit(ctx, gatehouse.AuditFilter{Kind: "decisions"})
	checkErr(t, "Audit(kind decisions)", err, http.StatusBadRequest, gatehouse.CodeInvalid)
	if _, err := c.Audit(ctx, gatehouse.AuditFilter{Limit: -1}); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Audit(limit -1) = %v, want ErrInvalid", err)
	}
	_, err = newClient(t, srv, sara).Audit(ctx, gatehouse.AuditFilter{})
	checkErr(t, "Audit as sara", err, http.StatusForbidden, client.CodeForbidden)
}

// failing answers the first fail requests 503, as Gatehouse does while its
// store is down, then passes requests to next; it counts every request.
type failing struct {
	fail  atomic.Int32
	calls atomic.Int32
}

func newFailing(fail int32) *failing {
	f := &failing{}
	f.fail.Store(fail)
	return f
}

func (f *failing) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.calls.Add(1) <= f.fail.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":{"code":"unavailable","message":"down"}}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		fail    int32
		retries int
		call    func(*client.Client) error
		calls   int32
		ok      bool
	}{
		{name: "GET retried until it succeeds", fail: 2, retries: 2, calls: 3, ok: true,
			call: func(c *client.Client) error { _, err := c.Effective(ctx, "acme"); return err }},
		{name: "GET retried a bounded number of times", fail: 10, retries: 2, calls: 3,
			call: func(c *client.Client) error { _, err := c.Policy(ctx); return err }},
		{name: "GET not retried with retries off", fail: 1, retries: 0, calls: 1,
			call: func(c *client.Client) error { _, err := c.Effective(ctx, "acme"); return err }},
		{name: "POST never retried", fail: 1, retries: 2, calls: 1,
			call: func(c *client.Client) error {
				_, err := c.Check(ctx, client.CheckRequest{Permission: "chat.view"})
				return err
			}},
		{name: "PUT never retried", fail: 1, retries: 2, calls: 1,
			call: func(c *client.Client) error { _, err := c.Promote(ctx, "carl@acme.example"); return err }},
	}
	f := newFailing(0)
	srv := newGatehouse(t, f.wrap)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.fail.Store(tc.fail)
			f.calls.Store(0)
			c := newClient(t, srv, admin, client.WithRetries(tc.retries, time.Millisecond))
			err := tc.call(c)
			if tc.ok && err != nil {
				t.Errorf("call: %v", err)
			}
			if !tc.ok {
				checkErr(t, "call", err, http.StatusServiceUnavailable, gatehouse.CodeUnavailable)
			}
			if got := f.calls.Load(); got != tc.calls {
				t.Errorf("server saw %d requests, want %d", got, tc.calls)
			}
		})
	}
}

// TestRetryConnectionErrors: a server that accepts and drops connections
// is retried for a GET only, and reported as unavailable.
func TestRetryConnectionErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()
	c, err := client.New("http://"+ln.Addr().String(), client.WithRetries(3, time.Millisecond),
		client.WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		want int32
	}{
		{"GET", func() error { _, err := c.Effective(ctx, "acme"); return err }, 4},
		{"POST", func() error { _, err := c.Check(ctx, client.CheckRequest{Permission: "chat.view"}); return err }, 1},
	} {
		accepted.Store(0)
		err := tc.call()
		checkErr(t, tc.name, err, 0, gatehouse.CodeUnavailable)
		if got := accepted.Load(); got != tc.want {
			t.Errorf("%s: %d connections, want %d", tc.name, got, tc.want)
		}
	}
}

func TestContextCancellation(t *testing.T) {
	t.Parallel()
	// hang holds every request until its client gives up.
	release := make(chan struct{})
	defer close(release)
	hang := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
	}
	srv := newGatehouse(t, hang)
	c := newClient(t, srv, admin)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Evaluate(ctx, client.AccessRequest{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Evaluate past its deadline = %v, want DeadlineExceeded", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.Policy(ctx); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("Policy cancelled = %v, want Canceled and not unavailable", err)
	}

	// Cancelled while waiting to retry.
	f := newFailing(100)
	down := newGatehouse(t, f.wrap)
	slow := newClient(t, down, admin, client.WithRetries(5, time.Hour))
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := slow.Policy(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Policy cancelled during backoff = %v after %v, want DeadlineExceeded promptly", err, time.Since(start))
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("server saw %d requests, want 1", got)
	}
}

func TestTokenSourceAndHeaders(t *testing.T) {
	t.Parallel()
	var got struct {
		auth, lang, agent atomic.Value
	}
	record := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.auth.Store(r.Header.Get("Authorization"))
			got.lang.Store(r.Header.Get("Accept-Language"))
			got.agent.Store(r.Header.Get("User-Agent"))
			next.ServeHTTP(w, r)
		})
	}
	srv := newGatehouse(t, record)
	var calls atomic.Int32
	c, err := client.New(srv.URL,
		client.WithTokenSource(func(context.Context) (string, error) {
			calls.Add(1)
			return srv.Token(sara), nil
		}),
		client.WithLanguage("fr-CH, de;q=0.5"), client.WithUserAgent("billing/1.2"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Effective(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 || !strings.HasPrefix(got.auth.Load().(string), "Bearer ") ||
		got.lang.Load() != "fr-CH, de;q=0.5" || got.agent.Load() != "billing/1.2" {
		t.Errorf("headers: token source called %d times, Authorization %q, Accept-Language %q, User-Agent %q",
			calls.Load(), got.auth.Load(), got.lang.Load(), got.agent.Load())
	}
	// With derives a client with other credentials; c keeps its own.
	if _, err := c.With(client.WithToken("")).Effective(ctx, "acme"); !client.IsCode(err, client.CodeUnauthorized) {
		t.Errorf("Effective without a token = %v, want unauthorized", err)
	}
	if _, err := c.Effective(ctx, "acme"); err != nil {
		t.Errorf("Effective after With: %v", err)
	}
	failing := errors.New("no token today")
	bad := c.With(client.WithTokenSource(func(context.Context) (string, error) { return "", failing }))
	if _, err := bad.Effective(ctx, "acme"); !errors.Is(err, failing) {
		t.Errorf("Effective with a failing token source = %v, want its error", err)
	}
}

// TestErrorCodes: the client's code constants are the server's, every code
// the server's table maps to a status has a sentinel if the domain has one,
// and a body that is not Gatehouse's gets its status's code.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	pairs := [][2]string{
		{client.CodeUnauthorized, gatehttp.CodeUnauthorized},
		{client.CodeForbidden, gatehttp.CodeForbidden},
		{client.CodePayloadTooLarge, gatehttp.CodePayloadTooLarge},
		{client.CodeUnsupportedMediaType, gatehttp.CodeUnsupportedMediaType},
		{client.CodeMethodNotAllowed, gatehttp.CodeMethodNotAllowed},
		{client.CodeRateLimited, gatehttp.CodeRateLimited},
		{client.SemanticExecuteAll, gatehttp.SemanticExecuteAll},
		{client.SemanticDenyOnFirstDeny, gatehttp.SemanticDenyOnFirstDeny},
		{client.SemanticPermitOnFirstPermit, gatehttp.SemanticPermitOnFirstPermit},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("client constant %q, server %q", p[0], p[1])
		}
	}
	sentinels := []error{gatehouse.ErrInvalid, gatehouse.ErrNotFound, gatehouse.ErrConflict, gatehouse.ErrLastSuperuser,
		gatehouse.ErrUnavailable, gatehouse.ErrCorrupt, gatehouse.ErrSchemaTooNew, gatehouse.ErrNotEmpty,
		gatehouse.ErrIllegalTransition, gatehouse.ErrActionExpired, gatehouse.ErrNotApprover}
	for _, s := range sentinels {
		e := &client.Error{Code: gatehouse.ErrorCode(s)}
		for _, other := range sentinels {
			if got := errors.Is(e, other); got != (other == s) {
				t.Errorf("errors.Is(Error{%s}, %v) = %v", e.Code, other, got)
			}
		}
	}
	for _, code := range gatehttp.ErrorCodes() {
		e := &client.Error{Code: code}
		for _, s := range sentinels {
			if errors.Is(e, s) && gatehouse.ErrorCode(s) != code {
				t.Errorf("Error{%s} is %v", code, s)
			}
		}
	}

	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusBadGateway, gatehouse.CodeUnavailable},
		{http.StatusUnauthorized, client.CodeUnauthorized},
		{http.StatusTooManyRequests, client.CodeRateLimited},
		{http.StatusTeapot, gatehouse.CodeInternal},
	} {
		// A proxy in front of Gatehouse answers with a page of its own.
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "<html>proxy error</html>", tc.status)
		}))
		c, err := client.New(proxy.URL, client.WithRetries(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Evaluate(context.Background(), client.AccessRequest{})
		proxy.Close()
		checkErr(t, http.StatusText(tc.status), err, tc.status, tc.code)
	}
}
