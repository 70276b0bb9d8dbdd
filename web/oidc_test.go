package web_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/web"
)

// provider is an in-process OpenID Connect provider: discovery, JWKS, an
// authorization endpoint that signs in its user at once, and a token
// endpoint that checks the code, the client and the PKCE verifier. It
// signs ID tokens with a generated RSA key.
type provider struct {
	t     testing.TB
	srv   *httptest.Server
	key   *rsa.PrivateKey
	clock *testClock

	mu sync.Mutex
	// The user the next authorization signs in, and how its token says so.
	email    string
	verified any
	// nonce, when set, replaces the nonce of the authorization request.
	nonce string
	// codeTTL is how long a code may be exchanged.
	codeTTL time.Duration
	// back, when set, is the base URL the browser is sent back to instead
	// of the redirect URL's (the UI's address is known only once it runs).
	back  string
	codes map[string]grant
}

// grant is what an authorization code stands for.
type grant struct {
	nonce, challenge, redirect string
	email                      string
	verified                   any
	expires                    time.Time
}

const (
	oidcClientID     = "gatehouse-web"
	oidcClientSecret = "s3cret-of-the-client"
)

func newProvider(t testing.TB, clock *testClock) *provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{t: t, key: key, clock: clock, email: "Sara@ACME.example", verified: true,
		codeTTL: time.Minute, codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) set(fn func(p *provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

func (p *provider) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.srv.URL,
		"authorization_endpoint":                p.srv.URL + "/authorize",
		"token_endpoint":                        p.srv.URL + "/token",
		"jwks_uri":                              p.srv.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func (p *provider) jwks(w http.ResponseWriter, r *http.Request) {
	b64 := base64.RawURLEncoding.EncodeToString
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": b64(p.key.N.Bytes()), "e": b64(big.NewInt(int64(p.key.E)).Bytes()),
	}}})
}

// authorize signs the configured user in and sends the browser back.
func (p *provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != oidcClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || !strings.Contains(" "+q.Get("scope")+" ", " openid ") {
		http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	code := rand.Text()
	g := grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"),
		email: p.email, verified: p.verified, expires: p.clock.Now().Add(p.codeTTL)}
	if p.nonce != "" {
		g.nonce = p.nonce
	}
	p.codes[code] = g
	back, err := url.Parse(g.redirect)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if p.back != "" {
		if back, err = url.Parse(p.back + back.Path); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token exchanges a code once, for its client, redirect URL and verifier.
func (p *provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != oidcClientID || secret != oidcClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	g, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !found || !p.clock.Now().Before(g.expires) || r.PostForm.Get("grant_type") != "authorization_code" ||
		r.PostForm.Get("redirect_uri") != g.redirect || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	now := p.clock.Now()
	claims := jwt.MapClaims{"iss": p.srv.URL, "aud": oidcClientID, "sub": "idp-4711", "iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "nonce": g.nonce, "email": g.email}
	if g.verified != nil {
		claims["email_verified"] = g.verified
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(p.key)
	if err != nil {
		p.t.Error(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": rand.Text(), "token_type": "Bearer",
		"expires_in": 3600, "id_token": signed})
}

func newCatalog(t *testing.T) *locale.Catalog {
	t.Helper()
	cat, err := locale.New()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newOIDCFixture is the example policy behind a UI that signs in with p.
func newOIDCFixture(t *testing.T) (*fixture, *provider) {
	t.Helper()
	clock := &testClock{now: time.Now()}
	p := newProvider(t, clock)
	var f *fixture
	f = newFixture(t, func(c *web.Config) {
		c.Clock = clock
		c.OIDC = &web.OIDCConfig{Issuer: p.srv.URL, Name: "Acme ID", ClientID: oidcClientID, ClientSecret: oidcClientSecret,
			RedirectURL: "http://gatehouse.invalid/signin/oidc/callback", HTTPClient: p.srv.Client()}
		c.IssueToken = func(subject string, ttl time.Duration) (string, error) { return f.issue(subject, ttl) }
	})
	f.clock = clock
	return f, p
}

// oidcSignIn starts an OIDC sign-in in tenant and follows the provider
// back to the callback; it returns the callback's answer.
func (b *browser) oidcSignIn(tenant string) answer {
	b.f.t.Helper()
	start := b.post("/signin/oidc", url.Values{"csrf": {b.csrf("/signin")}, "tenant": {tenant}})
	if start.StatusCode != http.StatusSeeOther {
		b.f.t.Fatalf("POST /signin/oidc: %d %s", start.StatusCode, start.body)
	}
	at := b.providerRedirect(start.Header.Get("Location"))
	return b.do(http.MethodGet, at.Path+"?"+at.RawQuery, "")
}

// providerRedirect asks the provider to authorize and returns where it
// sends the browser back to.
func (b *browser) providerRedirect(authURL string) *url.URL {
	b.f.t.Helper()
	resp, err := b.client.Get(authURL)
	if err != nil {
		b.f.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		b.f.t.Fatalf("GET %s: %d", authURL, resp.StatusCode)
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		b.f.t.Fatal(err)
	}
	return back
}

func TestOIDCSignIn(t *testing.T) {
	if page := newFixture(t, nil).browser().do(http.MethodGet, "/signin", ""); strings.Contains(page.body, `action="/signin/oidc"`) {
		t.Error("the sign-in page offers OIDC without an OIDC configuration")
	}
	f, _ := newOIDCFixture(t)
	b := f.browser()
	page := b.do(http.MethodGet, "/signin", "")
	if !strings.Contains(page.body, "Sign in with Acme ID") {
		t.Fatalf("sign-in page offers no OIDC button:\n%s", page.body)
	}
	start := b.post("/signin/oidc", url.Values{"csrf": {b.csrf("/signin")}, "tenant": {"acme"}})
	auth, err := url.Parse(start.Header.Get("Location"))
	if err != nil || start.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /signin/oidc = %d %q", start.StatusCode, start.Header.Get("Location"))
	}
	q := auth.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if q.Get(k) == "" {
			t.Errorf("authorization request has no %s: %s", k, auth)
		}
	}
	if q.Get("code_challenge_method") != "S256" {
		t.Errorf("code_challenge_method = %q, want S256", q.Get("code_challenge_method"))
	}
	if c := setCookie(start, web.OIDCCookie); c == nil || !c.HttpOnly || c.Value != q.Get("state") {
		t.Errorf("state cookie = %+v, want HttpOnly with the state", c)
	}
	back := b.providerRedirect(auth.String())
	cb := b.do(http.MethodGet, back.Path+"?"+back.RawQuery, "")
	if cb.StatusCode != http.StatusSeeOther || cb.Header.Get("Location") != "/chat" {
		t.Fatalf("callback = %d %q %s", cb.StatusCode, cb.Header.Get("Location"), cb.body)
	}
	chat := b.do(http.MethodGet, "/chat", "")
	if chat.StatusCode != http.StatusOK || !strings.Contains(chat.body, "user:sara@acme.example · acme") {
		t.Fatalf("GET /chat after OIDC = %d, want Sara (canonical email) in acme:\n%s", chat.StatusCode, chat.body)
	}
	// The state is used once: the same answer again is refused.
	again := b.do(http.MethodGet, back.Path+"?"+back.RawQuery, "")
	if again.StatusCode != http.StatusUnauthorized || !strings.Contains(again.body, `id="signin-error"`) {
		t.Fatalf("replayed callback = %d, want 401 with an error", again.StatusCode)
	}
}

// TestOIDCRefusals: every way the provider's answer can be wrong ends on
// the sign-in page with its own localized message and no session.
func TestOIDCRefusals(t *testing.T) {
	cases := []struct {
		name  string
		setup func(p *provider)
		// callback rewrites the callback URL's query.
		callback func(q url.Values)
		// expire moves the clock between authorization and exchange.
		expire time.Duration
		want   string
	}{
		{name: "wrong state", callback: func(q url.Values) { q.Set("state", "not-the-state") }, want: "web.oidc.bad_state"},
		{name: "wrong nonce", setup: func(p *provider) { p.nonce = "another-nonce" }, want: "web.oidc.bad_nonce"},
		{name: "unverified email", setup: func(p *provider) { p.verified = false }, want: "web.oidc.unverified_email"},
		{name: "no email_verified", setup: func(p *provider) { p.verified = nil }, want: "web.oidc.unverified_email"},
		{name: "look-alike email", setup: func(p *provider) { p.email = "sara@acme.exampl\u212a" }, want: "web.oidc.no_email"},
		{name: "expired code", expire: 2 * time.Minute, want: "web.oidc.bad_code"},
		{name: "provider error", callback: func(q url.Values) { q.Del("code"); q.Set("error", "access_denied") }, want: "web.oidc.denied"},
		{name: "unknown code", callback: func(q url.Values) { q.Set("code", "forged") }, want: "web.oidc.bad_code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, p := newOIDCFixture(t)
			if c.setup != nil {
				p.set(c.setup)
			}
			b := f.browser()
			start := b.post("/signin/oidc", url.Values{"csrf": {b.csrf("/signin")}, "tenant": {"acme"}})
			back := b.providerRedirect(start.Header.Get("Location"))
			q := back.Query()
			if c.callback != nil {
				c.callback(q)
			}
			f.clock.advance(c.expire)
			cb := b.do(http.MethodGet, back.Path+"?"+q.Encode(), "", "Accept-Language", "de")
			want := f.text("de", c.want)
			if cb.StatusCode != http.StatusUnauthorized || !strings.Contains(cb.body, want) {
				t.Fatalf("callback = %d, want 401 with %q (%s):\n%s", cb.StatusCode, want, c.want, cb.body)
			}
			if chat := b.do(http.MethodGet, "/chat", ""); chat.StatusCode != http.StatusSeeOther {
				t.Fatalf("GET /chat after a refused sign-in = %d, want a redirect to sign-in", chat.StatusCode)
			}
		})
	}
}

func TestOIDCStartNeedsCSRFAndTenant(t *testing.T) {
	f, _ := newOIDCFixture(t)
	b := f.browser()
	if a := b.post("/signin/oidc", url.Values{"tenant": {"acme"}}); a.StatusCode != http.StatusForbidden {
		t.Errorf("POST /signin/oidc without csrf = %d, want 403", a.StatusCode)
	}
	if a := b.post("/signin/oidc", url.Values{"csrf": {b.csrf("/signin")}}); a.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /signin/oidc without tenant = %d, want 400", a.StatusCode)
	}
	// An unknown tenant: the API refuses the session's token there.
	if a := b.oidcSignIn("nowhere"); a.StatusCode != http.StatusUnauthorized {
		t.Errorf("OIDC sign-in in an unknown tenant = %d, want 401", a.StatusCode)
	}
}

func TestOIDCConfigValidate(t *testing.T) {
	good := web.OIDCConfig{Issuer: "https://id.example", ClientID: "c", RedirectURL: "https://gh.example/signin/oidc/callback"}
	for _, c := range []struct {
		name string
		edit func(c *web.OIDCConfig)
	}{
		{"no issuer", func(c *web.OIDCConfig) { c.Issuer = "" }},
		{"issuer not a URL", func(c *web.OIDCConfig) { c.Issuer = "id.example" }},
		{"no client id", func(c *web.OIDCConfig) { c.ClientID = "" }},
		{"relative redirect", func(c *web.OIDCConfig) { c.RedirectURL = "/cb" }},
		{"redirect onto a page", func(c *web.OIDCConfig) { c.RedirectURL = "https://gh.example/chat" }},
		{"redirect onto sign-in", func(c *web.OIDCConfig) { c.RedirectURL = "https://gh.example/signin" }},
	} {
		cfg := good
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate(%+v) = nil, want an error", c.name, cfg)
		}
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", good, err)
	}
	c := web.DefaultConfig()
	c.Catalog, c.OIDC = newCatalog(t), &good
	if _, err := web.New(c); err == nil {
		t.Error("web.New with OIDC and no token issuer = nil error")
	}
	if got := good.DisplayName(); got != "id.example" {
		t.Errorf("DisplayName() = %q, want the issuer's host", got)
	}
}
