package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/locale"
)

// The browser tests drive Debian's chromium through the pages against the
// example policy. scripts/test installs chromium; GATEHOUSE_SKIP_BROWSER=1
// skips them. Screenshots go to web/test-artifacts (ignored by git).

// browserSession is one browser context (its own cookies) in the shared browser.
type browserSession struct {
	t   *testing.T
	ctx context.Context
	f   *fixture
}

func TestBrowser(t *testing.T) {
	if os.Getenv("GATEHOUSE_SKIP_BROWSER") == "1" {
		t.Skip("GATEHOUSE_SKIP_BROWSER=1: the browser tests are skipped")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run scripts/test (it installs it with apt-get install chromium), or set GATEHOUSE_SKIP_BROWSER=1 to skip the browser tests")
	}
	axe, err := os.ReadFile(filepath.Join("testdata", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	artifacts := filepath.Join("test-artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	session := func(t *testing.T) *browserSession {
		tab, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		if err := chromedp.Do(tab); err != nil {
			t.Fatal(err)
		}
		ctx, cancelTimeout := context.WithTimeout(tab, 45*time.Second)
		t.Cleanup(cancelTimeout)
		return &browserSession{t: t, ctx: ctx, f: f}
	}
	// check runs axe-core on the page and saves a full-page PNG screenshot as name.png.
	check := func(s *browserSession, name string) {
		s.t.Helper()
		if _, err := chromedp.Run(s.ctx, chromedp.Evaluate[chromedp.Void](string(axe))); err != nil {
			s.t.Fatalf("%s: inject axe: %v", name, err)
		}
		violations, err := chromedp.Run(s.ctx, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ['violations']}).then(r =>
			r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
			 .map(v => v.impact + ' ' + v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))`, chromedp.EvalAwaitPromise))
		if err != nil {
			s.t.Fatalf("%s: axe: %v", name, err)
		}
		for _, v := range violations {
			s.t.Errorf("%s: axe: %s", name, v)
		}
		png, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			s.t.Fatalf("%s: screenshot: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(artifacts, name+".png"), png, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}

	t.Run("sign in and settings", func(t *testing.T) {
		s := session(t)
		s.do(chromedp.Navigate(f.url+"/"), chromedp.WaitVisible(chromedp.CSS(`button[data-subject="user:olga@acme.example"]`)))
		check(s, "signin")
		s.do(chromedp.Click(chromedp.CSS(`button[data-subject="user:olga@acme.example"]`)), chromedp.WaitVisible(chromedp.ID("signout")))
		s.do(chromedp.Navigate(f.url+"/settings"), chromedp.WaitVisible(chromedp.ID("action-process_refund")),
			chromedp.WaitVisible(chromedp.CSS("#action-process_refund progress")))
		check(s, "settings")
		if got := s.text("#action-process_refund .usage-list"); !strings.Contains(got, "0 of 50 in the last 24h") {
			t.Errorf("refund usage = %q, want 0 of 50 in the last 24h", got)
		}

		// Toggle: lookup_order needs a confirmation from now on, in the API too.
		s.do(chromedp.Click(chromedp.ID("confirm-lookup_order")))
		s.waitText("#action-lookup_order", "set in this tenant")
		if !f.permission(t, "acme", "lookup_order").RequiresConfirmation {
			t.Error("after the toggle, lookup_order does not require confirmation in acme")
		}
		// Inherit again restores the default.
		s.do(chromedp.Click(chromedp.ID("inherit-lookup_order")))
		s.waitText("#action-lookup_order", "Override here")
		if f.permission(t, "acme", "lookup_order").RequiresConfirmation {
			t.Error("after inherit again, lookup_order still requires confirmation in acme")
		}

		// Inline validation refuses a percentage over 100 without a request.
		s.do(chromedp.SetValue(chromedp.ID("limit-type-apply_discount"), "max_percentage"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('limit-type-apply_discount').dispatchEvent(new Event('change', {bubbles: true}))`),
			chromedp.SendKeys(chromedp.ID("limit-value-apply_discount"), "150"),
			chromedp.Click(chromedp.ID("limit-save-apply_discount")))
		s.waitText("#limit-error-apply_discount", "at most 100")
		s.do(chromedp.Evaluate[chromedp.Void](`(() => { const i = document.getElementById('limit-value-apply_discount');
			i.value = ''; i.dispatchEvent(new Event('input', {bubbles: true})); })()`),
			chromedp.SendKeys(chromedp.ID("limit-value-apply_discount"), "10"),
			chromedp.Click(chromedp.ID("limit-save-apply_discount")))
		s.waitText("#action-apply_discount table", "10")
		// The API decides with the new limit: 12 % is now too much.
		a := f.explain(t, `{"subject":"user:olga@acme.example","tool":"apply_discount","tenant":"acme","args":{"percentage":"12"}}`)
		if a.Reason != "limit_exceeded" {
			t.Errorf("a 12%% discount after setting the limit to 10: %s, want limit_exceeded", a.Reason)
		}

		// The "test a decision" panel asks the server.
		s.do(chromedp.Evaluate[chromedp.Void](`(() => { const i = document.getElementById('sim-subject');
			i.value = ''; i.dispatchEvent(new Event('input', {bubbles: true})); })()`),
			chromedp.SendKeys(chromedp.ID("sim-subject"), "user:olga@acme.example"),
			chromedp.SetValue(chromedp.ID("sim-tool"), "process_refund"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('sim-tool').dispatchEvent(new Event('change', {bubbles: true}))`),
			chromedp.Click(chromedp.ID("sim-run")))
		s.waitText("#sim-result", "confirmation_required")
		if got := s.text("#sim-result"); !strings.Contains(got, "Payments") || !strings.Contains(got, "Store Support") {
			t.Errorf("the explanation does not show role → bundle → permission: %q", got)
		}
		check(s, "settings-simulated")

		// A state-changing call without the CSRF header is refused.
		status, err := chromedp.Run(s.ctx, chromedp.Evaluate[int](`fetch('/api/v1/permissions/lookup_order', {method: 'PUT',
			headers: {'Content-Type': 'application/json', 'X-Tenant-ID': 'acme'}, body: '{"enabled": false}'}).then(r => r.status)`,
			chromedp.EvalAwaitPromise))
		if err != nil || status != http.StatusForbidden {
			t.Errorf("PUT without CSRF header from the page = %d (%v), want 403", status, err)
		}
	})

	t.Run("admin", func(t *testing.T) {
		s := session(t)
		s.signIn("user:admin@example.com")
		s.do(chromedp.Navigate(f.url+"/admin"), chromedp.WaitVisible(chromedp.CSS(".role")))
		check(s, "admin-roles")
		for _, tab := range []string{"users", "agents", "tenants", "plans", "keys"} {
			s.do(chromedp.Click(chromedp.ID("tab-"+tab)), chromedp.WaitVisible(chromedp.CSS(`#tab-`+tab+`[aria-selected="true"]`)))
			check(s, "admin-"+tab)
		}
		// The last superuser cannot be demoted: the server's message shows.
		s.do(chromedp.Click(chromedp.ID("tab-users")), chromedp.Click(chromedp.CSS(`tr[id="user-admin@example.com"] .demote`)))
		s.waitText(".alert", f.http.Catalog.Text("en", "error.last_superuser", nil))
		// An API key is shown once.
		s.do(chromedp.Click(chromedp.ID("tab-keys")), chromedp.SendKeys(chromedp.ID("key-name"), "pep"),
			chromedp.SendKeys(chromedp.ID("key-subject"), "agent:support-bot"), chromedp.Click(chromedp.CSS(`form.limit-form button[type="submit"]`)))
		s.waitText("#new-key", "ghk_")

		// The audit view: the chain verifies, the key's issue is listed
		// with its before/after diff.
		s.do(chromedp.Navigate(f.url+"/audit"), chromedp.WaitVisible(chromedp.ID("audit-events")))
		s.waitText("#chain-status", "Verified: ")
		s.do(chromedp.SendKeys(chromedp.ID("audit-actor"), "test"), chromedp.Click(chromedp.CSS(`#audit-filter button`)))
		s.waitText("#audit-events tbody", "test")
		if got := s.text("#audit-events tbody"); strings.Contains(got, "user:admin@example.com") {
			t.Errorf("the actor filter lets other actors through: %q", got)
		}
		s.do(chromedp.Click(chromedp.CSS("#audit-events details summary")))
		s.waitText("#audit-events details", "After")
		check(s, "audit")
	})

	t.Run("audit chart", func(t *testing.T) {
		s := session(t)
		s.signIn("user:admin@example.com")
		// The chart of decisions by reason: a denial made now is in it, in
		// the SVG's description and in the table fallback.
		if a := f.explain(t, `{"subject":"user:carl@acme.example","tool":"analyze_loan","tenant":"acme-berlin"}`); a.Reason != "permission_missing" {
			t.Fatalf("explain analyze_loan for Carl = %q", a.Reason)
		}
		f.waitDecision(t, "user:carl@acme.example")
		s.do(chromedp.Navigate(f.url+"/audit"), chromedp.WaitVisible(chromedp.CSS(`#decision-chart svg[role="img"]`)))
		// An SVG description is not rendered, so it has no innerText.
		if got, err := chromedp.Run(s.ctx, chromedp.Evaluate[string](`document.getElementById('chart-desc').textContent`)); err != nil ||
			!strings.Contains(got, "permission_missing") {
			t.Errorf("chart description = %q, %v; want the permission_missing count", got, err)
		}
		s.do(chromedp.Click(chromedp.CSS("#decision-chart details summary")))
		s.waitText("#chart-table thead", "permission_missing")
		if n, err := chromedp.Run(s.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#decision-chart rect[data-reason="permission_missing"]').length`)); err != nil || n == 0 {
			t.Errorf("permission_missing bars = %d, %v; want some", n, err)
		}
		check(s, "audit-chart")

		// The kind and reason filters select the list and the chart alike.
		set := func(id, value, event string) {
			t.Helper()
			if _, err := chromedp.Run(s.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.getElementById(%q);
				e.value = %q; e.dispatchEvent(new Event(%q, {bubbles: true})); return true; })()`, id, value, event))); err != nil {
				t.Fatal(err)
			}
		}
		actions := `[...document.querySelectorAll('#audit-events > tbody > tr')].map(tr => tr.cells[3].innerText)`
		set("audit-reason", "permission_missing", "input")
		s.do(chromedp.Click(chromedp.CSS(`#audit-filter button`)))
		s.waitFor(`(() => { const a = ` + actions + `; return a.length > 0 && a.every(x => x === 'decision'); })() &&
			[...document.querySelectorAll('#chart-table thead th')].every(th => !th.innerText.includes('granted'))`)
		set("audit-reason", "", "input")
		set("audit-kind", "change", "change")
		s.do(chromedp.Click(chromedp.CSS(`#audit-filter button`)))
		s.waitFor(`!!document.getElementById('chart-none') && (() => { const a = ` + actions + `; return a.length > 0 && !a.includes('decision'); })()`)
		check(s, "audit-filtered")
	})

	t.Run("chat tools", func(t *testing.T) {
		// Carl may use customer insights but not the loan tool; fraud
		// detection needs the pro plan, which acme-berlin has through acme.
		s := session(t)
		s.signIn("user:carl@acme.example")
		s.do(chromedp.Navigate(f.url+"/chat"), chromedp.WaitVisible(chromedp.ID("tools")))
		s.waitText("#tools", "customer_insights")
		check(s, "chat")
		tools, err := chromedp.Run(s.ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll('#tools li')]
			.map(li => [li.dataset.tool, li.getAttribute('aria-disabled') === 'true' ? 'denied: ' + li.innerText : 'allowed']))`))
		if err != nil {
			t.Fatal(err)
		}
		if tools["customer_insights"] != "allowed" || !strings.HasPrefix(tools["analyze_loan"], "denied") {
			t.Errorf("Carl's tools = %v, want customer_insights allowed and analyze_loan denied", tools)
		}
		// The denied tool says why in a sentence, the server's message for its reason.
		why, err := chromedp.Run(s.ctx, chromedp.Evaluate[map[string]string](`(() => { const w = document.querySelector('#tools li[data-tool="analyze_loan"] .why');
			return { reason: w.dataset.reason, text: w.innerText }; })()`))
		if err != nil {
			t.Fatal(err)
		}
		want := f.cat.Reason("en", gatehouse.Decision{Reason: gatehouse.Reason(why["reason"])},
			locale.Args{Subject: "user:carl@acme.example", Permission: "analyze_loan", Tenant: "acme-berlin"})
		if why["reason"] != string(gatehouse.ReasonPermissionMissing) || why["text"] != want {
			t.Errorf("analyze_loan's reason = %v, want permission_missing saying %q", why, want)
		}
		s.do(chromedp.SendKeys(chromedp.ID("draft"), "what can you do"), chromedp.Click(chromedp.ID("send")))
		s.waitText("#messages", "customer_insights")
	})

	t.Run("chat plan upgrade", func(t *testing.T) {
		s := session(t)
		s.signIn("user:gina@globex.example")
		s.do(chromedp.Navigate(f.url+"/chat"), chromedp.WaitVisible(chromedp.ID("tools")))
		s.waitText(`#tools li[data-tool="detect_fraud"]`, "Upgrade to pro")
	})

	t.Run("chat denied", func(t *testing.T) {
		s := session(t)
		s.signIn("user:gus@example.org")
		s.do(chromedp.Navigate(f.url + "/chat"))
		s.waitText("#chat-denied", "You don't have permission to access the AI assistant")
		check(s, "chat-denied")
	})

	t.Run("view only", func(t *testing.T) {
		// A user who may read the chat but not write sees no composer; she
		// signs in by pasting her token.
		f.apiPut(t, "/api/v1/roles/Chat%20Reader", `{"name":"Chat Reader","permissions":["access_ai_chat","chat.view"]}`)
		f.apiPut(t, "/api/v1/users/vera@acme.example", `{"email":"vera@acme.example","name":"Vera Viewer","tenants":["acme"],"roles":[{"role":"Chat Reader","tenant":"acme"}]}`)
		tok, err := gatehttp.IssueToken(f.http, "user:vera@acme.example", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		s := session(t)
		s.do(chromedp.Navigate(f.url+"/signin"), chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), tok), chromedp.SendKeys(chromedp.ID("tenant"), "acme"),
			chromedp.Click(chromedp.CSS(".token-form button")), chromedp.WaitVisible(chromedp.ID("signout")))
		s.do(chromedp.Navigate(f.url+"/chat"), chromedp.WaitVisible(chromedp.ID("tools")))
		s.waitText("#view-only", "read these conversations")
		if n, err := chromedp.Run(s.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#composer').length`)); err != nil || n != 0 {
			t.Errorf("a view-only user has %d composers (%v), want none", n, err)
		}
	})

	t.Run("confirm from the inbox", func(t *testing.T) {
		// Olga asks for a refund in the chat; it waits for a confirmation,
		// which she gives from the inbox, and the chat goes on.
		s := session(t)
		s.signIn("user:olga@acme.example")
		s.do(chromedp.Navigate(f.url+"/chat"), chromedp.WaitVisible(chromedp.ID("draft")),
			chromedp.SendKeys(chromedp.ID("draft"), "refund 20.00 EUR on order 1042"), chromedp.Click(chromedp.ID("send")))
		s.waitText("main", "Confirm: ")
		s.do(chromedp.WaitVisible(chromedp.CSS(".card .actions button")))
		check(s, "chat-confirmation")
		thread, err := chromedp.Run(s.ctx, chromedp.Evaluate[string](`location.hash.slice(1)`))
		if err != nil || thread == "" {
			t.Fatalf("no thread in the URL: %q %v", thread, err)
		}
		s.do(chromedp.Navigate(f.url+"/inbox"), chromedp.WaitVisible(chromedp.CSS("#inbox-list .card")))
		s.waitText("#inbox-list", "€20.00")
		check(s, "inbox")
		s.do(chromedp.Click(chromedp.CSS("#inbox-list .card .approve")))
		s.waitText(".inbox", f.http.Catalog.Text("en", "web.inbox.empty", nil))
		s.do(chromedp.Navigate(f.url + "/chat#" + thread))
		s.waitText("#messages", "Refund: ")
	})

	t.Run("oidc sign-in", func(t *testing.T) {
		// Sign in with the in-process provider: the button names it, the
		// browser goes there and back, and the session is Sara's.
		of, p := newOIDCFixture(t)
		p.set(func(p *provider) { p.back = of.url })
		s := session(t)
		s.f = of
		s.do(chromedp.Navigate(of.url+"/signin"), chromedp.WaitVisible(chromedp.ID("oidc-submit")))
		if got := s.text("#oidc-submit"); got != "Sign in with Acme ID" {
			t.Errorf("OIDC button = %q", got)
		}
		check(s, "signin-oidc")
		s.do(chromedp.SendKeys(chromedp.ID("oidc-tenant"), "acme"), chromedp.Click(chromedp.ID("oidc-submit")),
			chromedp.WaitVisible(chromedp.ID("signout")))
		s.waitText("#who", "user:sara@acme.example")
	})

	t.Run("inbox updates live", func(t *testing.T) {
		// Olga's inbox is open when the assistant asks to refund her: the
		// card appears without a reload, and leaves when she cancels it
		// elsewhere. Carl, who may not confirm it, never sees it.
		olga, carl := session(t), session(t)
		olga.signIn("user:olga@acme.example")
		carl.signIn("user:carl@acme.example")
		for _, s := range []*browserSession{olga, carl} {
			s.do(chromedp.Navigate(f.url+"/inbox"), chromedp.WaitVisible(chromedp.CSS(`.inbox[data-live="true"]`)))
		}
		var a struct {
			ActionID string `json:"action_id"`
		}
		f.apiCallAs(t, "agent:support-bot", http.MethodPost, "/api/v1/actions/authorize", "acme-berlin",
			`{"on_behalf_of":"user:olga@acme.example","tool":"process_refund","args":{"amount":"30.00","currency":"EUR"}}`, &a)
		olga.waitText("#inbox-list", "€30.00")
		var rec map[string]any
		f.apiCallAs(t, "user:olga@acme.example", http.MethodPost, "/api/v1/actions/"+a.ActionID+"/cancel", "", "", &rec)
		olga.waitText(".inbox", f.http.Catalog.Text("en", "web.inbox.empty", nil))
		if got := carl.text(".inbox"); strings.Contains(got, "€30.00") {
			t.Errorf("Carl's inbox shows Olga's refund: %q", got)
		}
	})

	t.Run("language", func(t *testing.T) {
		s := session(t)
		s.signIn("user:olga@acme.example")
		s.do(chromedp.Navigate(f.url+"/settings"), chromedp.WaitVisible(chromedp.ID("action-process_refund")),
			chromedp.SetValue(chromedp.ID("lang-select"), "de"), chromedp.Click(chromedp.CSS(`form.lang button`)))
		s.waitFor(`document.documentElement.lang === 'de' && !!document.getElementById('action-process_refund')`)
		if got := s.text("nav"); !strings.Contains(got, "Aktionseinstellungen") {
			t.Errorf("nav after choosing German = %q", got)
		}
		s.waitText("#action-process_refund", "Erfordert Bestätigung")
		check(s, "settings-de")
	})
}

func (s *browserSession) do(steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(s.ctx, steps...); err != nil {
		s.t.Fatal(err)
	}
}

func (s *browserSession) text(sel string) string {
	s.t.Helper()
	got, err := chromedp.Run(s.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		s.t.Fatalf("text of %s: %v", sel, err)
	}
	return got
}

// waitText waits until the element sel's text contains want.
func (s *browserSession) waitText(sel, want string) {
	s.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.innerText.includes(%q); })()`, sel, want)
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js)); err != nil {
		got, _ := chromedp.Run(s.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: '(none)'}).innerText`, sel)))
		s.t.Fatalf("waiting for %q in %s: %v; it says %q", want, sel, err, got)
	}
}

// waitFor polls the page until js is true, across navigations.
func (s *browserSession) waitFor(js string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(s.ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s: %v", js, err)
		}
		if _, err := chromedp.Run(s.ctx, chromedp.Poll[bool]("true", chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			s.t.Logf("waiting for %s: %v", js, err)
		}
	}
}

// signIn signs in as a demo user from the sign-in page.
func (s *browserSession) signIn(subject string) {
	s.t.Helper()
	button := chromedp.CSS(`button[data-subject="` + subject + `"]`)
	s.do(chromedp.Navigate(s.f.url+"/signin"), chromedp.WaitVisible(button), chromedp.Click(button), chromedp.WaitVisible(chromedp.ID("signout")))
}

// permissionRow is the part of a /api/v1/permissions row the tests read.
type permissionRow struct {
	ActionType           string `json:"action_type"`
	Enabled              bool   `json:"enabled"`
	RequiresConfirmation bool   `json:"requires_confirmation"`
}

// permission asks the API, as the superuser, for action's policy in tenant.
func (f *fixture) permission(t *testing.T, tenant, action string) permissionRow {
	t.Helper()
	var rows []permissionRow
	f.apiCall(t, http.MethodGet, "/api/v1/permissions", tenant, "", &rows)
	for _, r := range rows {
		if r.ActionType == action {
			return r
		}
	}
	t.Fatalf("no action %s in %s", action, tenant)
	return permissionRow{}
}

// explain asks the API, as the superuser, to decide body.
func (f *fixture) explain(t *testing.T, body string) (a struct{ Reason string }) {
	t.Helper()
	f.apiCall(t, http.MethodPost, "/api/v1/explain", "", body, &a)
	return a
}

// apiPut PUTs body to path as the superuser.
func (f *fixture) apiPut(t *testing.T, path, body string) {
	t.Helper()
	var out map[string]any
	f.apiCall(t, http.MethodPut, path, "", body, &out)
}

func (f *fixture) apiCall(t *testing.T, method, path, tenant, body string, out any) {
	t.Helper()
	f.apiCallAs(t, "user:admin@example.com", method, path, tenant, body, out)
}

// apiCallAs calls the API as subject, whose token the fixture issues.
func (f *fixture) apiCallAs(t *testing.T, subject, method, path, tenant, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	token, ok := f.tokens[subject]
	if !ok {
		var err error
		if token, err = f.issue(subject, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if tenant != "" {
		req.Header.Set("X-Tenant-ID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("%s %s = %d", method, path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
