package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
	"github.com/gatehouse/gatehouse/chat/tools"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/web"
)

const (
	examplePolicy = "../examples/ai-assistant/policy.yaml"
	testSecret    = "0123456789abcdef0123456789abcdef-web-test"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is the API of the example policy behind the UI, on a real
// listener. Demo users are Sara and Olga (acme), Gus (general) and the
// superuser admin@example.com (acme).
type fixture struct {
	t      testing.TB
	url    string
	svc    *service.Service
	store  *memstore.Store
	http   gatehttp.Config
	clock  *testClock
	tokens map[string]string
	cat    *locale.Catalog
	// decisions records the API's decisions in the audit trail.
	decisions *service.DecisionLog
}

// waitDecision polls the audit trail, for at most 10 s, until the
// decision log has written a decision about target.
func (f *fixture) waitDecision(t testing.TB, target string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		events, err := f.svc.ListAudit(context.Background(), gatehouse.AuditFilter{Action: "decision", TargetPrefix: target, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decision about %s in the audit trail within 10 s", target)
		}
	}
}

// issue is a token of the API for subject, as gatehouse serve issues one
// for an OIDC session.
func (f *fixture) issue(subject string, ttl time.Duration) (string, error) {
	return gatehttp.IssueToken(f.http, subject, ttl)
}

// text is message id in lang.
func (f *fixture) text(lang, id string) string { return f.cat.Text(lang, id, nil) }

// newFixture serves the example policy; configure, if set, adjusts the UI.
func newFixture(t testing.TB, configure func(*web.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	svc, err := service.Open(ctx, store, service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.ParseFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(ctx, "test", doc, false); err != nil {
		t.Fatal(err)
	}
	cat, err := locale.New()
	if err != nil {
		t.Fatal(err)
	}
	decisions := svc.DecisionLog(service.DecisionLogConfig{Flush: 20 * time.Millisecond})
	t.Cleanup(func() { _ = decisions.Close(context.Background()) })
	f := &fixture{t: t, svc: svc, store: store, decisions: decisions, clock: &testClock{now: time.Now()}, tokens: map[string]string{}, cat: cat}
	f.http = gatehttp.DefaultConfig()
	f.http.JWTSecret, f.http.Catalog = []byte(testSecret), cat
	for _, s := range []string{"user:sara@acme.example", "user:gus@example.org", "user:admin@example.com",
		"user:carl@acme.example", "user:olga@acme.example", "user:gina@globex.example"} {
		tok, err := gatehttp.IssueToken(f.http, s, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[s] = tok
	}
	wc := web.DefaultConfig()
	wc.Catalog, wc.Clock = cat, f.clock
	wc.DemoUsers = []web.DemoUser{
		{Label: "supervisor", Subject: "user:sara@acme.example", Tenant: "acme", Token: f.tokens["user:sara@acme.example"]},
		{Label: "guest", Subject: "user:gus@example.org", Tenant: "general", Token: f.tokens["user:gus@example.org"]},
		{Label: "operations", Subject: "user:olga@acme.example", Tenant: "acme", Token: f.tokens["user:olga@acme.example"]},
		{Label: "supervisor on the free plan", Subject: "user:gina@globex.example", Tenant: "globex", Token: f.tokens["user:gina@globex.example"]},
		{Label: "customer service", Subject: "user:carl@acme.example", Tenant: "acme-berlin", Token: f.tokens["user:carl@acme.example"]},
		{Label: "superuser", Subject: "user:admin@example.com", Tenant: "acme", Token: f.tokens["user:admin@example.com"]},
	}
	if configure != nil {
		configure(&wc)
	}
	ui, err := web.New(wc)
	if err != nil {
		t.Fatal(err)
	}
	f.http.Web = ui.Wrap
	engine, err := chat.New(chat.Config{Decider: svc, Threads: store, Model: chat.DefaultScripted(), Executor: tools.Demo{},
		Catalog: cat, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(engine.Close)
	f.http.Chat = engine
	srv := httptest.NewServer(gatehttp.NewServer(svc, f.http).Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// browser is a client with a cookie jar that does not follow redirects.
type browser struct {
	f      *fixture
	client *http.Client
}

func (f *fixture) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &browser{f: f, client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// answer is a response with its body read.
type answer struct {
	*http.Response
	body string
}

// do sends one request; header holds extra headers as name, value pairs.
func (b *browser) do(method, path, body string, header ...string) answer {
	b.f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.f.url+path, rd)
	if err != nil {
		b.f.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.f.t.Fatal(err)
	}
	return answer{resp, string(data)}
}

// post sends a form.
func (b *browser) post(path string, form url.Values, header ...string) answer {
	b.f.t.Helper()
	return b.do(http.MethodPost, path, form.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, header...)...)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the page at path.
func (b *browser) csrf(path string) string {
	b.f.t.Helper()
	a := b.do(http.MethodGet, path, "")
	m := csrfField.FindStringSubmatch(a.body)
	if m == nil {
		b.f.t.Fatalf("GET %s: no csrf field in %d %s", path, a.StatusCode, a.body)
	}
	return m[1]
}

// signIn signs in as the demo user subject and returns the session's CSRF token.
func (b *browser) signIn(subject string) string {
	b.f.t.Helper()
	a := b.post("/signin", url.Values{"csrf": {b.csrf("/signin")}, "demo": {subject}})
	if a.StatusCode != http.StatusSeeOther {
		b.f.t.Fatalf("sign in as %s: %d %s", subject, a.StatusCode, a.body)
	}
	return b.csrf("/chat")
}

// cookie is the jar's cookie name, or nil.
func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.f.url)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// setCookie finds the Set-Cookie of name in a.
func setCookie(a answer, name string) *http.Cookie {
	for _, c := range a.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var _ gatehouse.Clock = (*testClock)(nil)
