package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mailaddr"
)

// OIDCCookie holds the state of a sign-in waiting for the identity
// provider's answer; the nonce and PKCE verifier stay on the server.
const OIDCCookie = "gatehouse_oidc"

// oidcPendingTTL is how long a sign-in may wait for the provider's answer.
const oidcPendingTTL = 10 * time.Minute

// OIDCConfig configures sign-in with an OpenID Connect provider by the
// authorization-code flow with PKCE.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// at the first sign-in, not at start, so a provider that is down
	// delays only OIDC sign-ins.
	Issuer string
	// Name is what the sign-in page calls the provider ("Sign in with
	// Name"); the issuer's host when empty.
	Name         string
	ClientID     string
	ClientSecret string
	// RedirectURL is the callback registered with the provider, an
	// absolute URL whose path this UI serves, e.g.
	// https://gatehouse.example/signin/oidc/callback.
	RedirectURL string
	// Scopes are requested besides openid; email when empty.
	Scopes []string
	// HTTPClient talks to the provider; http.DefaultClient when nil.
	HTTPClient *http.Client
}

// Validate reports an OIDC configuration that cannot work.
func (c *OIDCConfig) Validate() error {
	if c.Issuer == "" || c.ClientID == "" || c.RedirectURL == "" {
		return gatehouse.Invalidf("web: OIDC needs an issuer, a client id and a redirect URL")
	}
	if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return gatehouse.Invalidf("web: OIDC issuer %q is not an http(s) URL", c.Issuer)
	}
	u, err := url.Parse(c.RedirectURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || !localPath(u.Path) {
		return gatehouse.Invalidf("web: OIDC redirect URL %q is not an absolute http(s) URL with a path", c.RedirectURL)
	}
	if reserved[u.Path] || slices.Contains(appPages, strings.TrimPrefix(u.Path, "/")) || strings.HasPrefix(u.Path, "/static/") {
		return gatehouse.Invalidf("web: OIDC redirect URL path %q is a page of the UI", u.Path)
	}
	return nil
}

// reserved are the paths the UI serves itself.
var reserved = map[string]bool{"/": true, "/signin": true, "/signout": true, "/lang": true, "/signin/oidc": true}

// DisplayName is the provider's name on the sign-in page.
func (c *OIDCConfig) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	if u, err := url.Parse(c.Issuer); err == nil && u.Host != "" {
		return u.Hostname()
	}
	return c.Issuer
}

// callbackPath is the path of the redirect URL.
func (c *OIDCConfig) callbackPath() string {
	u, _ := url.Parse(c.RedirectURL)
	return u.Path
}

// pendingSignIn is an OIDC sign-in waiting for the provider's answer,
// found by its state.
type pendingSignIn struct {
	state, nonce, verifier string
	tenant                 string
	expires                time.Time
}

// oidcClient holds the provider once discovered and the pending sign-ins.
type oidcClient struct {
	cfg *OIDCConfig

	mu       sync.Mutex
	provider *oidc.Provider
	pending  map[string]*pendingSignIn
}

// ctx returns ctx using the configured HTTP client towards the provider.
func (o *oidcClient) ctx(ctx context.Context) context.Context {
	if o.cfg.HTTPClient != nil {
		return oidc.ClientContext(ctx, o.cfg.HTTPClient)
	}
	return ctx
}

// discover returns the provider, reading its discovery document the first
// time it succeeds.
func (o *oidcClient) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	p := o.provider
	o.mu.Unlock()
	if p != nil {
		return p, nil
	}
	// The provider keeps the context for fetching its keys later: it must
	// outlive the request, but keep the client.
	p, err := oidc.NewProvider(o.ctx(context.WithoutCancel(ctx)), o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery of %s: %w", o.cfg.Issuer, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		o.provider = p
	}
	return o.provider, nil
}

func (o *oidcClient) oauth2(p *oidc.Provider) *oauth2.Config {
	scopes := []string{oidc.ScopeOpenID}
	extra := o.cfg.Scopes
	if len(extra) == 0 {
		extra = []string{"email"}
	}
	for _, s := range extra {
		if s != oidc.ScopeOpenID {
			scopes = append(scopes, s)
		}
	}
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: scopes}
}

// add keeps ps unless max sign-ins are pending, dropping expired ones first.
func (o *oidcClient) add(ps *pendingSignIn, now time.Time, max int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) >= max {
		for k, p := range o.pending {
			if !now.Before(p.expires) {
				delete(o.pending, k)
			}
		}
		if len(o.pending) >= max {
			return false
		}
	}
	o.pending[ps.state] = ps
	return true
}

// take removes and returns the live pending sign-in of state, or nil.
func (o *oidcClient) take(state string, now time.Time) *pendingSignIn {
	o.mu.Lock()
	defer o.mu.Unlock()
	ps := o.pending[state]
	delete(o.pending, state)
	if ps == nil || !now.Before(ps.expires) {
		return nil
	}
	return ps
}

// handleOIDCStart answers the sign-in page's "Sign in with …" form: it keeps
// a state, a nonce and a PKCE verifier on the server and sends the browser
// to the provider.
func (u *UI) handleOIDCStart(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !u.formCSRF(r) || !sameOrigin(r) {
		u.signInPage(w, r, http.StatusForbidden, "web.error.csrf")
		return
	}
	tenant := strings.TrimSpace(r.PostFormValue("tenant"))
	if tenant == "" {
		u.signInPage(w, r, http.StatusBadRequest, "web.oidc.missing_tenant")
		return
	}
	p, err := u.oidc.discover(r.Context())
	if err != nil {
		u.cfg.Logger.Warn("web: oidc sign-in", "err", err)
		u.signInPage(w, r, http.StatusBadGateway, "web.oidc.unavailable")
		return
	}
	now := u.cfg.Clock.Now()
	ps := &pendingSignIn{state: rand.Text(), nonce: rand.Text(), verifier: oauth2.GenerateVerifier(),
		tenant: tenant, expires: now.Add(oidcPendingTTL)}
	if !u.oidc.add(ps, now, u.cfg.MaxSessions) {
		u.signInPage(w, r, http.StatusServiceUnavailable, "web.signin.full")
		return
	}
	http.SetCookie(w, u.cookie(r, OIDCCookie, ps.state, int(oidcPendingTTL/time.Second)))
	target := u.oidc.oauth2(p).AuthCodeURL(ps.state, oidc.Nonce(ps.nonce), oauth2.S256ChallengeOption(ps.verifier))
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// oidcError is why a callback is refused: the message id the user sees and
// the cause for the log.
type oidcError struct {
	msg string
	err error
}

func (e *oidcError) Error() string { return e.msg + ": " + e.err.Error() }

func oidcFail(msg string, err error) *oidcError { return &oidcError{msg: msg, err: err} }

// handleOIDCCallback ends an OIDC sign-in like handleSignIn: the state must
// be the browser's, the code is exchanged with the PKCE verifier, the ID
// token must verify and carry the nonce and a verified email, and the API
// must accept the session's token in the tenant.
func (u *UI) handleOIDCCallback(w http.ResponseWriter, r *http.Request, api http.Handler) {
	http.SetCookie(w, u.cookie(r, OIDCCookie, "", -1))
	subject, tenant, err := u.oidcSubject(r)
	if err != nil {
		var oe *oidcError
		if !errors.As(err, &oe) {
			oe = oidcFail("web.oidc.failed", err)
		}
		u.cfg.Logger.Info("web: oidc sign-in refused", "reason", oe.msg, "err", oe.err)
		u.signInPage(w, r, http.StatusUnauthorized, oe.msg)
		return
	}
	token, err := u.cfg.IssueToken(subject, u.cfg.SessionTTL)
	if err != nil {
		u.cfg.Logger.Error("web: oidc sign-in: issue the session's token", "err", err)
		u.signInPage(w, r, http.StatusInternalServerError, "web.oidc.failed")
		return
	}
	u.startSession(w, r, api, token, tenant)
}

// oidcSubject checks the provider's answer in r and returns the Gatehouse
// subject its ID token names and the tenant the sign-in asked for.
func (u *UI) oidcSubject(r *http.Request) (string, string, error) {
	q := r.URL.Query()
	c, cerr := r.Cookie(OIDCCookie)
	state := q.Get("state")
	if cerr != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return "", "", oidcFail("web.oidc.bad_state", errors.New("the state is not this browser's"))
	}
	ps := u.oidc.take(state, u.cfg.Clock.Now())
	if ps == nil {
		return "", "", oidcFail("web.oidc.bad_state", errors.New("no pending sign-in for the state, or it expired"))
	}
	if e := q.Get("error"); e != "" {
		return "", "", oidcFail("web.oidc.denied", fmt.Errorf("provider error %q: %s", e, q.Get("error_description")))
	}
	p, err := u.oidc.discover(r.Context())
	if err != nil {
		return "", "", oidcFail("web.oidc.unavailable", err)
	}
	ctx := u.oidc.ctx(r.Context())
	tok, err := u.oidc.oauth2(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(ps.verifier))
	if err != nil {
		return "", "", oidcFail("web.oidc.bad_code", fmt.Errorf("exchange the code: %w", err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", "", oidcFail("web.oidc.bad_token", errors.New("the token response has no id_token"))
	}
	idt, err := p.VerifierContext(ctx, &oidc.Config{ClientID: u.oidc.cfg.ClientID, Now: u.cfg.Clock.Now}).Verify(ctx, raw)
	if err != nil {
		return "", "", oidcFail("web.oidc.bad_token", fmt.Errorf("verify the ID token: %w", err))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ps.nonce)) != 1 {
		return "", "", oidcFail("web.oidc.bad_nonce", errors.New("the ID token's nonce is not the sign-in's"))
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return "", "", oidcFail("web.oidc.bad_token", fmt.Errorf("ID token claims: %w", err))
	}
	if claims.Email == "" {
		return "", "", oidcFail("web.oidc.no_email", fmt.Errorf("the ID token of %q has no email", idt.Subject))
	}
	// The rule of the API's bearer tokens (http/auth.go): true or "true".
	if v := claims.EmailVerified; v != true && v != "true" {
		return "", "", oidcFail("web.oidc.unverified_email", fmt.Errorf("email %q is not verified (email_verified %v)", claims.Email, v))
	}
	email, err := mailaddr.Canonical(claims.Email)
	if err != nil {
		return "", "", oidcFail("web.oidc.no_email", err)
	}
	return gatehouse.User(email).String(), ps.tenant, nil
}
