package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/web"
)

var (
	scriptTag    = regexp.MustCompile(`<script[^>]*>`)
	eventHandler = regexp.MustCompile(`\son[a-z]+=`)
)

// reasonOf is the reason of an API error body.
func reasonOf(t *testing.T, a answer) string {
	t.Helper()
	var body struct {
		Error struct{ Code, Reason, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil {
		t.Fatalf("%d %q: %v", a.StatusCode, a.body, err)
	}
	return body.Error.Reason
}

func TestPagesSendSecurityHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	b := f.browser()
	b.signIn("user:sara@acme.example")
	for _, path := range []string{"/signin", "/chat", "/inbox", "/settings", "/admin", "/audit"} {
		a := b.do(http.MethodGet, path, "")
		if a.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", path, a.StatusCode)
			continue
		}
		for name, want := range map[string]string{
			"Content-Security-Policy": web.ContentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Cache-Control":           "no-store",
		} {
			if got := a.Header.Get(name); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, name, got, want)
			}
		}
		for _, tag := range scriptTag.FindAllString(a.body, -1) {
			if !strings.Contains(tag, " src=") && !strings.Contains(tag, `type="application/json"`) {
				t.Errorf("GET %s has an inline script: %s", path, tag)
			}
		}
		if handler := eventHandler.FindString(a.body); handler != "" {
			t.Errorf("GET %s has an inline event handler: %s", path, handler)
		}
	}
	if !strings.Contains(web.ContentSecurityPolicy, "script-src 'self';") || strings.Contains(web.ContentSecurityPolicy, "unsafe") {
		t.Errorf("CSP %q allows more than same-origin scripts", web.ContentSecurityPolicy)
	}
}

func TestSignInDemoUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	b := f.browser()
	page := b.do(http.MethodGet, "/signin", "")
	if !strings.Contains(page.body, "user:sara@acme.example") {
		t.Errorf("sign-in page does not offer the demo user")
	}
	for s, tok := range f.tokens {
		if strings.Contains(page.body, tok) {
			t.Errorf("sign-in page shows the token of %s", s)
		}
	}
	a := b.post("/signin", url.Values{"csrf": {b.csrf("/signin")}, "demo": {"user:sara@acme.example"}})
	if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != "/chat" {
		t.Fatalf("sign in = %d to %q, want 303 to /chat", a.StatusCode, a.Header.Get("Location"))
	}
	c := setCookie(a, web.SessionCookie)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.MaxAge != int((8*time.Hour).Seconds()) {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, not Secure without TLS, 8h", c)
	}
	chat := b.do(http.MethodGet, "/chat", "")
	if chat.StatusCode != http.StatusOK || !strings.Contains(chat.body, "user:sara@acme.example") {
		t.Fatalf("GET /chat = %d %s", chat.StatusCode, chat.body)
	}
	if strings.Contains(chat.body, f.tokens["user:sara@acme.example"]) {
		t.Error("the app page shows the session's bearer token")
	}
	// The API answers the session's requests as Sara.
	me := b.do(http.MethodGet, "/api/v1/me/effective?tenant=acme", "")
	if me.StatusCode != http.StatusOK || !strings.Contains(me.body, "sara@acme.example") {
		t.Fatalf("GET /api/v1/me/effective with the session = %d %s", me.StatusCode, me.body)
	}
}

func TestSignInToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *web.Config) { c.DemoUsers = nil })
	tests := []struct {
		name          string
		token, tenant string
		status        int
		want          string // the message id's English text
	}{
		{"valid", f.tokens["user:carl@acme.example"], "acme-berlin", http.StatusSeeOther, ""},
		{"garbage token", "not-a-token", "acme", http.StatusUnauthorized, "not accepted"},
		{"forged token", f.tokens["user:carl@acme.example"] + "x", "acme", http.StatusUnauthorized, "not accepted"},
		{"unknown tenant", f.tokens["user:carl@acme.example"], "nowhere", http.StatusUnauthorized, "tenant"},
		{"hostile tenant", f.tokens["user:carl@acme.example"], "acme&tenant=x\r\n", http.StatusUnauthorized, "tenant"},
		{"no token", "", "acme", http.StatusBadRequest, "Enter a token"},
		{"no tenant", f.tokens["user:carl@acme.example"], "", http.StatusBadRequest, "Enter a token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := f.browser()
			a := b.post("/signin", url.Values{"csrf": {b.csrf("/signin")}, "token": {tt.token}, "tenant": {tt.tenant}})
			if a.StatusCode != tt.status {
				t.Fatalf("sign in = %d, want %d: %s", a.StatusCode, tt.status, a.body)
			}
			if tt.want != "" && !strings.Contains(a.body, tt.want) {
				t.Errorf("sign-in page does not say %q: %s", tt.want, a.body)
			}
			if (setCookie(a, web.SessionCookie) != nil) != (tt.status == http.StatusSeeOther) {
				t.Errorf("session cookie set = %v, want %v", setCookie(a, web.SessionCookie) != nil, tt.status == http.StatusSeeOther)
			}
		})
	}
}

func TestSignInNeedsCSRF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		csrf   func(*browser) string
		header []string
	}{
		{"none", func(*browser) string { return "" }, nil},
		{"wrong", func(b *browser) string { b.csrf("/signin"); return "AAAAAAAAAAAAAAAAAAAAAAAAAA" }, nil},
		{"no cookie", func(b *browser) string { return b.f.browser().csrf("/signin") }, nil},
		{"other origin", func(b *browser) string { return b.csrf("/signin") }, []string{"Origin", "https://evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := f.browser()
			a := b.post("/signin", url.Values{"csrf": {tt.csrf(b)}, "demo": {"user:sara@acme.example"}}, tt.header...)
			if a.StatusCode != http.StatusForbidden || setCookie(a, web.SessionCookie) != nil {
				t.Errorf("sign in = %d (session %v), want 403 and no session", a.StatusCode, setCookie(a, web.SessionCookie))
			}
		})
	}
}

func TestSecureCookiesUnderTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ui, err := web.New(func() web.Config {
		c := web.DefaultConfig()
		c.Catalog = f.http.Catalog
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(ui.Wrap(http.NotFoundHandler()))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if !c.Secure || !c.HttpOnly {
			t.Errorf("cookie %s under TLS: Secure %v HttpOnly %v, want both", c.Name, c.Secure, c.HttpOnly)
		}
	}
	if len(resp.Cookies()) == 0 {
		t.Error("no cookie set")
	}
}

func TestProxyNeedsCSRFHeader(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	b := f.browser()
	csrf := b.signIn("user:sara@acme.example")
	body := `{"tool":"analyze_loan","tenant":"acme"}`
	tests := []struct {
		name   string
		header []string
		status int
		reason string
	}{
		{"no token", nil, http.StatusForbidden, "csrf"},
		{"wrong token", []string{web.CSRFHeader, csrf + "x"}, http.StatusForbidden, "csrf"},
		{"token", []string{web.CSRFHeader, csrf}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := b.do(http.MethodPost, "/api/v1/check", body, append([]string{"Content-Type", "application/json"}, tt.header...)...)
			if a.StatusCode != tt.status {
				t.Fatalf("POST /api/v1/check = %d, want %d: %s", a.StatusCode, tt.status, a.body)
			}
			if tt.reason != "" {
				if got := reasonOf(t, a); got != tt.reason {
					t.Errorf("reason = %q, want %q", got, tt.reason)
				}
			}
		})
	}
	// A request with its own credential is the API's business: no CSRF check.
	a := b.do(http.MethodPost, "/api/v1/check", body, "Content-Type", "application/json",
		"Authorization", "Bearer "+f.tokens["user:carl@acme.example"])
	if a.StatusCode != http.StatusOK || !strings.Contains(a.body, "carl") && !strings.Contains(a.body, `"decision"`) {
		t.Errorf("POST with a bearer token = %d %s", a.StatusCode, a.body)
	}
}

func TestWebSocketFromOtherOriginRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	b := f.browser()
	b.signIn("user:sara@acme.example")
	a := b.do(http.MethodGet, "/ws", "", "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Origin", "https://evil.example")
	if a.StatusCode != http.StatusForbidden || reasonOf(t, a) != "origin" {
		t.Errorf("GET /ws from another origin = %d %s, want 403 origin", a.StatusCode, a.body)
	}
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *web.Config) { c.SessionTTL = time.Hour })
	b := f.browser()
	b.signIn("user:sara@acme.example")
	f.clock.advance(time.Hour - time.Second)
	if a := b.do(http.MethodGet, "/api/v1/me/effective?tenant=acme", ""); a.StatusCode != http.StatusOK {
		t.Fatalf("before expiry: %d", a.StatusCode)
	}
	f.clock.advance(time.Second)
	if a := b.do(http.MethodGet, "/api/v1/me/effective?tenant=acme", ""); a.StatusCode != http.StatusUnauthorized {
		t.Errorf("API after expiry = %d, want 401", a.StatusCode)
	}
	a := b.do(http.MethodGet, "/settings", "")
	if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != "/signin?expired=1" {
		t.Errorf("page after expiry = %d to %q, want 303 to /signin?expired=1", a.StatusCode, a.Header.Get("Location"))
	}
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	b := f.browser()
	csrf := b.signIn("user:sara@acme.example")
	old := b.cookie(web.SessionCookie)
	// Without the CSRF token, sign-out does nothing.
	b.post("/signout", url.Values{})
	if a := b.do(http.MethodGet, "/chat", ""); a.StatusCode != http.StatusOK {
		t.Fatalf("after a sign-out without CSRF: GET /chat = %d", a.StatusCode)
	}
	a := b.post("/signout", url.Values{"csrf": {csrf}})
	if a.StatusCode != http.StatusSeeOther || setCookie(a, web.SessionCookie) == nil || setCookie(a, web.SessionCookie).MaxAge >= 0 {
		t.Fatalf("sign out = %d, want 303 clearing the cookie", a.StatusCode)
	}
	// The old cookie no longer works, even if a browser kept it.
	replay := f.browser()
	u, _ := url.Parse(f.url)
	replay.client.Jar.SetCookies(u, []*http.Cookie{old})
	if a := replay.do(http.MethodGet, "/api/v1/me/effective?tenant=acme", ""); a.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with a signed-out cookie = %d, want 401", a.StatusCode)
	}
}

func TestMaxSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *web.Config) { c.MaxSessions = 1; c.SessionTTL = time.Minute })
	f.browser().signIn("user:sara@acme.example")
	b := f.browser()
	a := b.post("/signin", url.Values{"csrf": {b.csrf("/signin")}, "demo": {"user:sara@acme.example"}})
	if a.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second session = %d, want 503", a.StatusCode)
	}
	// Expired sessions make room.
	f.clock.advance(time.Minute)
	b.signIn("user:sara@acme.example")
}

func TestLanguageChoice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct{ next, want string }{
		{"/settings", "/settings"},
		{"//evil.example/x", "/"},
		{"https://evil.example", "/"},
		{"/\\evil.example", "/"},
	}
	for _, tt := range tests {
		b := f.browser()
		a := b.post("/lang", url.Values{"csrf": {b.csrf("/signin")}, "lang": {"de"}, "next": {tt.next}})
		if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != tt.want {
			t.Errorf("POST /lang next=%q = %d to %q, want 303 to %q", tt.next, a.StatusCode, a.Header.Get("Location"), tt.want)
		}
		if !strings.Contains(b.do(http.MethodGet, "/signin", "").body, "Bei Gatehouse anmelden") {
			t.Errorf("sign-in page after choosing de is not in German")
		}
	}
	b := f.browser()
	if a := b.post("/lang", url.Values{"lang": {"de"}}); a.StatusCode != http.StatusForbidden || b.cookie(web.LangCookie) != nil {
		t.Errorf("POST /lang without CSRF = %d, want 403 and no cookie", a.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := web.DefaultConfig()
	good.Catalog = newFixture(t, nil).http.Catalog
	tests := []struct {
		name   string
		change func(*web.Config)
	}{
		{"no catalog", func(c *web.Config) { c.Catalog = nil }},
		{"no logger", func(c *web.Config) { c.Logger = nil }},
		{"no clock", func(c *web.Config) { c.Clock = nil }},
		{"zero TTL", func(c *web.Config) { c.SessionTTL = 0 }},
		{"no sessions", func(c *web.Config) { c.MaxSessions = 0 }},
		{"demo user without token", func(c *web.Config) { c.DemoUsers = []web.DemoUser{{Subject: "user:a", Tenant: "t"}} }},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("DefaultConfig with a catalog: %v", err)
	}
	for _, tt := range tests {
		c := good
		tt.change(&c)
		if _, err := web.New(c); err == nil {
			t.Errorf("New(%s) = nil error", tt.name)
		}
	}
}

// The audit page offers the kind and reason filters, and the API the
// session calls answers them.
func TestAuditKindAndReasonFilters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	now := time.Now()
	if err := f.store.AppendAudit(t.Context(), []gatehouse.AuditEvent{
		{Time: now, Actor: "user:carl@acme.example", Action: gatehouse.ActionDecision, Target: "user:carl@acme.example",
			Detail: json.RawMessage(`{"allowed":false,"reason":"permission_missing"}`)},
		{Time: now, Actor: "user:sara@acme.example", Action: gatehouse.ActionDecision, Target: "user:sara@acme.example",
			Detail: json.RawMessage(`{"allowed":true,"reason":"granted"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	b.signIn("user:admin@example.com")
	page := b.do(http.MethodGet, "/audit", "")
	for _, id := range []string{"web.audit.kind", "web.audit.kind_all", "web.audit.kind_decision", "web.audit.kind_change", "web.audit.reason"} {
		if !strings.Contains(page.body, `"`+id+`"`) {
			t.Errorf("GET /audit does not carry the message %s", id)
		}
	}
	if js := b.do(http.MethodGet, "/static/audit.js", ""); js.StatusCode != http.StatusOK || !strings.Contains(js.body, "audit-kind") {
		t.Errorf("GET /static/audit.js = %d without the kind filter", js.StatusCode)
	}
	list := func(query string) []gatehouse.AuditEvent {
		t.Helper()
		a := b.do(http.MethodGet, "/api/v1/audit?"+query, "")
		if a.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/audit?%s = %d %s", query, a.StatusCode, a.body)
		}
		var p struct{ Events []gatehouse.AuditEvent }
		if err := json.Unmarshal([]byte(a.body), &p); err != nil {
			t.Fatal(err)
		}
		return p.Events
	}
	if got := list("reason=permission_missing"); len(got) != 1 || got[0].Actor != "user:carl@acme.example" {
		t.Errorf("reason=permission_missing = %+v, want Carl's denial", got)
	}
	for _, e := range list("kind=change&limit=1000") {
		if e.Action == gatehouse.ActionDecision {
			t.Errorf("kind=change lists a decision: %+v", e)
		}
	}
	if got := list("kind=decision&actor=user:sara@acme.example"); len(got) != 1 || !strings.Contains(string(got[0].Detail), `"granted"`) {
		t.Errorf("Sara's decisions = %+v, want her grant", got)
	}
	if a := b.do(http.MethodGet, "/api/v1/audit?kind=denials", ""); a.StatusCode != http.StatusBadRequest {
		t.Errorf("kind=denials = %d %s, want 400", a.StatusCode, a.body)
	}
}
