package http_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/gatehouse/gatehouse"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

const saraLoan = `{"subject": {"type": "user", "id": "sara@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme"}}`

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	tok := f.token("user:sara@acme.example")
	oversize := `{"subject": {"type": "user", "id": "sara@acme.example"}, "pad": "` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name   string
		call   call
		status int
		code   string
	}{
		// AuthZEN certification (C.2.4.3) wants 400 where the native API says 415.
		{"AuthZEN text/plain", call{path: "/access/v1/evaluation", token: tok, body: saraLoan, header: map[string]string{"Content-Type": "text/plain"}}, 400, gatehouse.CodeInvalid},
		{"AuthZEN form", call{path: "/access/v1/evaluations", token: tok, body: saraLoan, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 400, gatehouse.CodeInvalid},
		{"AuthZEN search without content type", call{path: "/access/v1/search/action", token: tok, body: saraLoan, header: map[string]string{"Content-Type": ""}}, 400, gatehouse.CodeInvalid},
		{"no content type", call{path: "/api/v1/check", token: tok, body: `{}`, header: map[string]string{"Content-Type": ""}}, 415, gatehttp.CodeUnsupportedMediaType},
		{"text/plain", call{path: "/api/v1/check", token: tok, body: `{}`, header: map[string]string{"Content-Type": "text/plain"}}, 415, gatehttp.CodeUnsupportedMediaType},
		{"oversize body", call{path: "/access/v1/evaluation", token: tok, body: oversize}, 413, gatehttp.CodePayloadTooLarge},
		{"oversize batch", call{path: "/access/v1/evaluations", token: tok, body: oversize}, 413, gatehttp.CodePayloadTooLarge},
		{"GET on a POST endpoint", call{method: http.MethodGet, path: "/access/v1/evaluation", token: tok}, 405, gatehttp.CodeMethodNotAllowed},
		{"POST on a GET endpoint", call{path: "/healthz", body: `{}`}, 405, gatehttp.CodeMethodNotAllowed},
		{"unknown path", call{method: http.MethodGet, path: "/access/v2/evaluation"}, 404, gatehouse.CodeNotFound},
		{"unknown tenant scope", call{path: "/atlantis/access/v1/evaluation", token: tok, body: saraLoan}, 404, gatehouse.CodeNotFound},
		{"unknown tenant metadata", call{method: http.MethodGet, path: "/.well-known/authzen-configuration/atlantis"}, 404, gatehouse.CodeNotFound},
	}
	for _, tt := range tests {
		r := f.do(tt.call)
		if r.status != tt.status {
			t.Errorf("%s: status %d, want %d: %.200s", tt.name, r.status, tt.status, r.body)
			continue
		}
		e := decodeInto[errorBody](t, r)
		if e.Error.Code != tt.code || e.Error.Message == "" || strings.Contains(e.Error.Message, "error.") {
			t.Errorf("%s: error %+v, want code %s with a message", tt.name, e.Error, tt.code)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tt.name, ct)
		}
	}
	r := f.do(call{path: "/access/v1/evaluation", token: tok, body: saraLoan, header: map[string]string{"Content-Type": "application/json; charset=utf-8"}})
	if r.status != http.StatusOK {
		t.Errorf("JSON with a charset: status %d, want 200", r.status)
	}
	if r := f.do(call{method: http.MethodGet, path: "/access/v1/evaluation"}); r.header.Get("Allow") != http.MethodPost {
		t.Errorf("405 Allow = %q, want POST", r.header.Get("Allow"))
	}
}

// Every code of the error table has a status and a message in every language.
func TestErrorTable(t *testing.T) {
	t.Parallel()
	cat := testConfig(t).Catalog
	for _, code := range gatehttp.ErrorCodes() {
		if s := gatehttp.StatusCode(code); s < 400 || s > 599 {
			t.Errorf("StatusCode(%q) = %d", code, s)
		}
		for _, lang := range []string{"de", "en", "es", "fr", "it", "zh"} {
			if msg := cat.Text(lang, "error."+code, map[string]any{"Max": 1}); msg == "error."+code {
				t.Errorf("code %q has no %s message", code, lang)
			}
		}
	}
	want := map[string]int{"invalid": 400, "not_found": 404, "conflict": 409, "last_superuser": 409, "unavailable": 503,
		"corrupt": 500, "schema_too_new": 500, "internal": 500, "unauthorized": 401, "forbidden": 403,
		"payload_too_large": 413, "unsupported_media_type": 415, "method_not_allowed": 405}
	for code, status := range want {
		if got := gatehttp.StatusCode(code); got != status {
			t.Errorf("StatusCode(%q) = %d, want %d", code, got, status)
		}
	}
	if got := gatehttp.StatusCode("no_such_code"); got != 500 {
		t.Errorf("StatusCode(unknown) = %d, want 500", got)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	tok := f.token("user:sara@acme.example")
	const id = "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"
	for _, c := range []call{
		{path: "/access/v1/evaluation", token: tok, body: saraLoan},
		{path: "/access/v1/evaluation", body: saraLoan}, // 401
		{path: "/access/v1/evaluation", token: tok, body: "{"},
		{method: http.MethodGet, path: "/healthz"},
	} {
		c.header = map[string]string{"X-Request-ID": id}
		if got := f.do(c).header.Get("X-Request-ID"); got != id {
			t.Errorf("%s %s: X-Request-ID %q, want the caller's %q", c.method, c.path, got, id)
		}
		c.header = nil
		a, b := f.do(c).header.Get("X-Request-ID"), f.do(c).header.Get("X-Request-ID")
		if a == "" || a == b {
			t.Errorf("%s %s: generated X-Request-IDs %q and %q, want two distinct ids", c.method, c.path, a, b)
		}
	}
	long := strings.Repeat("r", 500)
	if got := f.do(call{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-ID": long}}).header.Get("X-Request-ID"); got == long || got == "" {
		t.Errorf("a 500-byte X-Request-ID came back as %.20q…, want a generated one", got)
	}
}

func TestLocalizedMessages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	tok := f.pep()
	for _, tt := range []struct{ accept, lang string }{{"", "en"}, {"de-CH, de;q=0.9, en;q=0.5", "de"}, {"ja", "en"}, {"zh-Hans", "zh"}} {
		r := f.do(call{path: "/access/v1/evaluation", token: tok, body: "{", header: map[string]string{"Accept-Language": tt.accept}})
		if got, want := decodeInto[errorBody](t, r).Error.Message, f.cat.Text(tt.lang, "error.bad_json", nil); got != want {
			t.Errorf("Accept-Language %q: message %q, want the %s one %q", tt.accept, got, tt.lang, want)
		}
		body := `{"subject": {"type": "user", "id": "carl@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme-berlin"}}`
		d := decodeInto[decision](t, f.do(call{path: "/access/v1/evaluation", token: tok, body: body, header: map[string]string{"Accept-Language": tt.accept}}))
		want := f.cat.Reason(tt.lang, gatehouse.Decision{Reason: gatehouse.ReasonPermissionMissing, Permission: "Use AI Loan Analysis"}, localeArgs("user:carl@acme.example", "analyze_loan", "acme-berlin"))
		if d.Context.Message != want {
			t.Errorf("Accept-Language %q: deny message %q, want %q", tt.accept, d.Context.Message, want)
		}
	}
	en := decodeInto[errorBody](t, f.do(call{path: "/access/v1/evaluation", token: tok, body: "{"})).Error.Message
	de := decodeInto[errorBody](t, f.do(call{path: "/access/v1/evaluation", token: tok, body: "{", header: map[string]string{"Accept-Language": "de"}})).Error.Message
	if en == de {
		t.Errorf("German and English messages are both %q", en)
	}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	type doc struct {
		PDP            string `json:"policy_decision_point"`
		Evaluation     string `json:"access_evaluation_endpoint"`
		Evaluations    string `json:"access_evaluations_endpoint"`
		SearchSubject  string `json:"search_subject_endpoint"`
		SearchResource string `json:"search_resource_endpoint"`
		SearchAction   string `json:"search_action_endpoint"`
	}
	endpoints := func(base string) doc {
		return doc{base, base + "/access/v1/evaluation", base + "/access/v1/evaluations",
			base + "/access/v1/search/subject", base + "/access/v1/search/resource", base + "/access/v1/search/action"}
	}
	f := newFixture(t, examplePolicy, nil)
	tests := []struct {
		name   string
		path   string
		header map[string]string
		want   string
	}{
		{"Host header", "", map[string]string{"Host": "pdp.example.com"}, "http://pdp.example.com"},
		{"Host with port", "", map[string]string{"Host": "pdp.example.com:8443"}, "http://pdp.example.com:8443"},
		{"tenant scope", "/acme", map[string]string{"Host": "pdp.example.com"}, "http://pdp.example.com/acme"},
		// Only a trusted proxy's forwarded headers count.
		{"untrusted proto", "", map[string]string{"Host": "pdp.example.com", "X-Forwarded-Proto": "https"}, "http://pdp.example.com"},
		{"untrusted host", "", map[string]string{"Host": "pdp.example.com", "X-Forwarded-Host": "evil.example"}, "http://pdp.example.com"},
		{"untrusted prefix", "", map[string]string{"Host": "pdp.example.com", "X-Forwarded-Prefix": "/authz"}, "http://pdp.example.com"},
		{"listener", "", nil, f.url},
	}
	for _, tt := range tests {
		r := f.do(call{method: http.MethodGet, path: "/.well-known/authzen-configuration" + tt.path, header: tt.header})
		d := decodeInto[doc](t, r)
		if want := endpoints(tt.want); r.status != http.StatusOK || d != want || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %+v, want %+v", tt.name, r.status, d, want)
		}
	}
	proxied := newFixture(t, examplePolicy, func(c *gatehttp.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	for _, tt := range []struct {
		name   string
		header map[string]string
		want   string
	}{
		{"proxy proto", map[string]string{"Host": "pdp.example.com:8443", "X-Forwarded-Proto": "https"}, "https://pdp.example.com:8443"},
		{"proxy list", map[string]string{"Host": "pdp.example.com", "X-Forwarded-Proto": "HTTPS, http"}, "https://pdp.example.com"},
		{"bogus proto", map[string]string{"Host": "pdp.example.com", "X-Forwarded-Proto": "gopher"}, "http://pdp.example.com"},
		{"proxy host", map[string]string{"Host": "internal:8080", "X-Forwarded-Host": "pdp.example.com"}, "http://pdp.example.com"},
		{"bogus host", map[string]string{"Host": "pdp.example.com", "X-Forwarded-Host": "evil.example/x?"}, "http://pdp.example.com"},
		{"host with user", map[string]string{"Host": "pdp.example.com", "X-Forwarded-Host": "u@evil.example"}, "http://pdp.example.com"},
		{"proxy prefix", map[string]string{"Host": "pdp.example.com", "X-Forwarded-Prefix": "/authz/"}, "http://pdp.example.com/authz"},
		{"bogus prefix", map[string]string{"Host": "pdp.example.com", "X-Forwarded-Prefix": "../x"}, "http://pdp.example.com"},
	} {
		r := proxied.do(call{method: http.MethodGet, path: "/.well-known/authzen-configuration", header: tt.header})
		if d, want := decodeInto[doc](t, r), endpoints(tt.want); d != want {
			t.Errorf("%s: %+v, want %+v", tt.name, d, want)
		}
	}
	fixed := newFixture(t, examplePolicy, func(c *gatehttp.Config) { c.BaseURL = "https://pdp.example.com/" })
	d := decodeInto[doc](t, fixed.do(call{method: http.MethodGet, path: "/.well-known/authzen-configuration", header: map[string]string{"Host": "other.example"}}))
	if d != endpoints("https://pdp.example.com") {
		t.Errorf("with BaseURL: %+v", d)
	}
	// The advertised endpoints answer, at the root and scoped to a tenant.
	tok := f.pep()
	for _, scope := range []string{"", "/acme"} {
		d := decodeInto[doc](t, f.do(call{method: http.MethodGet, path: "/.well-known/authzen-configuration" + scope}))
		for _, c := range []struct{ url, body string }{
			{d.Evaluation, saraLoan},
			{d.Evaluations, saraLoan},
			{d.SearchSubject, `{"subject": {"type": "user"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme"}}`},
			{d.SearchResource, `{"subject": {"type": "user", "id": "sara@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant"}}`},
			{d.SearchAction, `{"subject": {"type": "user", "id": "sara@acme.example"}, "resource": {"type": "tenant", "id": "acme"}}`},
		} {
			if r := f.do(call{path: strings.TrimPrefix(c.url, f.url), token: tok, body: c.body}); r.status != http.StatusOK {
				t.Errorf("advertised endpoint %s: %d %s", c.url, r.status, r.body)
			}
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	if r := f.do(call{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
		t.Errorf("healthz = %d", r.status)
	}
	if r := f.do(call{method: http.MethodGet, path: "/readyz"}); r.status != http.StatusOK || !strings.Contains(string(r.body), `"version":1`) {
		t.Errorf("readyz = %d %s, want 200 with version 1", r.status, r.body)
	}
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	r := f.do(call{method: http.MethodGet, path: "/readyz"})
	if e := decodeInto[errorBody](t, r); r.status != http.StatusServiceUnavailable || e.Error.Code != gatehouse.CodeUnavailable {
		t.Errorf("readyz with a closed store = %d %s, want 503 unavailable", r.status, r.body)
	}
	if strings.Contains(string(r.body), "sql") || strings.Contains(string(r.body), "closed") {
		t.Errorf("readyz leaks the internal error: %s", r.body)
	}
	if r := f.do(call{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
		t.Errorf("healthz with a closed store = %d, want 200", r.status)
	}
	// Decisions come from the snapshot and still answer.
	r = f.do(call{path: "/access/v1/evaluation", token: f.token("user:sara@acme.example"), body: saraLoan})
	if d := decodeInto[decision](t, r); r.status != http.StatusOK || !d.Decision {
		t.Errorf("evaluation with a closed store = %d %s", r.status, r.body)
	}
}

// A decision that fails internally is a deny with internal_error, not a 500.
func TestDecisionNeverFails(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AuthZENAuth = gatehttp.AuthNone
	h := gatehttp.NewServer(nil, cfg).Handler()
	f := &fixture{t: t, cfg: cfg, cat: cfg.Catalog}
	ts := newListener(t, h)
	f.url = ts
	for _, path := range []string{"/access/v1/evaluation", "/access/v1/evaluations"} {
		r := f.do(call{path: path, body: saraLoan})
		d := decodeInto[decision](t, r)
		if r.status != http.StatusOK || d.Decision || d.Context.Reason != string(gatehouse.ReasonInternalError) {
			t.Errorf("%s without a service = %d %s, want 200 and an internal_error deny", path, r.status, r.body)
		}
	}
	// Other handlers fail with the table's 500, without internals.
	r := f.do(call{method: http.MethodGet, path: "/readyz"})
	if e := decodeInto[errorBody](t, r); r.status != http.StatusInternalServerError || e.Error.Code != gatehouse.CodeInternal ||
		strings.Contains(e.Error.Message, "nil") {
		t.Errorf("readyz without a service = %d %s, want a 500 internal error", r.status, r.body)
	}
}

func TestOpenAndClose(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t, examplePolicy)
	cfg := testConfig(t)
	cfg.Addr = "127.0.0.1:0"
	s := gatehttp.NewServer(svc, cfg)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, url: s.URL(), cfg: cfg, cat: cfg.Catalog}
	if r := f.do(call{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
		t.Errorf("healthz = %d", r.status)
	}
	// A second server on the same address reports the address in use.
	busy := cfg
	busy.Addr = strings.TrimPrefix(s.URL(), "http://")
	err := gatehttp.NewServer(svc, busy).Open(context.Background())
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), busy.Addr) {
		t.Errorf("Open on a busy address = %v, want EADDRINUSE naming %s", err, busy.Addr)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", busy.Addr); err == nil {
		t.Error("the listener still accepts after Close")
	}
	invalid := cfg
	invalid.JWTSecret = nil
	if err := gatehttp.NewServer(svc, invalid).Open(context.Background()); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Open with an invalid config = %v, want ErrInvalid", err)
	}
}
