// Package web serves Gatehouse's dashboard and chat UI: HTML pages, CSS and
// ES modules embedded with go:embed, and browser sessions. The pages are
// clients of the public /api/v1 and of the chat's /ws: the browser sends
// those requests with its session cookie, and Handler passes them on to the
// API with the session's bearer token, so everything the UI does a script
// can do with the same calls. No business rule lives here.
package web

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/locale"
)

//go:embed static templates
var files embed.FS

// Cookie names.
const (
	// SessionCookie holds the session id; HttpOnly, SameSite=Lax.
	SessionCookie = "gatehouse_session"
	// SignInCookie holds the sign-in form's CSRF token before a session exists.
	SignInCookie = "gatehouse_signin"
	// LangCookie remembers the language the user chose.
	LangCookie = "gatehouse_lang"
	// CSRFHeader carries the session's CSRF token on state-changing API calls.
	CSRFHeader = "X-CSRF-Token"
)

// ContentSecurityPolicy is sent with every page: scripts, styles and
// connections from this origin only, no inline script, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// DemoUser is a user the sign-in page offers with a ready-made token.
type DemoUser struct {
	// Label describes the user, e.g. "supervisor at ACME".
	Label string
	// Subject is the token's subject, e.g. user:sara@acme.example.
	Subject string
	// Tenant is the tenant the session starts in.
	Tenant string
	// Token is the bearer token the session sends; it never reaches the browser.
	Token string
}

// Config configures the UI.
type Config struct {
	Catalog *locale.Catalog
	Logger  *slog.Logger
	Clock   gatehouse.Clock
	// SessionTTL is how long a session lasts after sign-in.
	SessionTTL time.Duration
	// MaxSessions bounds the sessions held in memory; signing in beyond it
	// drops expired sessions first, then refuses.
	MaxSessions int
	// DemoUsers, when set, are offered on the sign-in page (gatehouse demo).
	DemoUsers []DemoUser
	// OIDC, when set, offers sign-in with an OpenID Connect provider.
	OIDC *OIDCConfig
	// IssueToken returns the bearer token a session signed in by OIDC
	// sends to the API for subject ("user:EMAIL"), valid for ttl; required
	// with OIDC (gatehouse serve signs it with its JWT secret).
	IssueToken func(subject string, ttl time.Duration) (string, error)
}

// DefaultConfig returns a configuration without a catalog.
func DefaultConfig() Config {
	return Config{
		Logger:      slog.New(slog.DiscardHandler),
		Clock:       gatehouse.SystemClock{},
		SessionTTL:  8 * time.Hour,
		MaxSessions: 10000,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Catalog == nil:
		return gatehouse.Invalidf("web: message catalog is nil")
	case c.Logger == nil:
		return gatehouse.Invalidf("web: logger is nil")
	case c.Clock == nil:
		return gatehouse.Invalidf("web: clock is nil")
	case c.SessionTTL <= 0:
		return gatehouse.Invalidf("web: session TTL %v is not positive", c.SessionTTL)
	case c.MaxSessions <= 0:
		return gatehouse.Invalidf("web: max sessions %d is not positive", c.MaxSessions)
	}
	if c.OIDC != nil {
		if err := c.OIDC.Validate(); err != nil {
			return err
		}
		if c.IssueToken == nil {
			return gatehouse.Invalidf("web: OIDC sign-in needs a token issuer")
		}
	}
	for i, u := range c.DemoUsers {
		if u.Subject == "" || u.Token == "" || u.Tenant == "" {
			return gatehouse.Invalidf("web: demo user %d needs a subject, a tenant and a token", i)
		}
	}
	return nil
}

// session is one signed-in browser. Its token stays on the server.
type session struct {
	id, csrf string
	token    string
	subject  string
	tenant   string
	expires  time.Time
}

// UI serves the pages and wraps the API; New builds it.
type UI struct {
	cfg   Config
	pages *template.Template
	// static serves the embedded assets.
	static http.Handler

	// oidc is nil without Config.OIDC.
	oidc *oidcClient

	mu       sync.Mutex
	sessions map[string]*session
}

// New returns the UI for cfg, or why cfg does not work.
func New(cfg Config) (*UI, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pages, err := template.New("").ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	sub, err := fs.Sub(files, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	u := &UI{cfg: cfg, pages: pages, static: http.FileServerFS(sub), sessions: map[string]*session{}}
	if cfg.OIDC != nil {
		u.oidc = &oidcClient{cfg: cfg.OIDC, pending: map[string]*pendingSignIn{}}
	}
	return u, nil
}

// Wrap returns a handler that serves the UI's pages and passes every other
// request to api: with the session's bearer token when it carries the
// session cookie and no Authorization header of its own, after checking the
// CSRF token of state-changing requests and the Origin of WebSockets.
func (u *UI) Wrap(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", u.handleRoot)
	mux.HandleFunc("GET /signin", u.handleSignInPage)
	mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) { u.handleSignIn(w, r, api) })
	if u.oidc != nil {
		mux.HandleFunc("POST /signin/oidc", u.handleOIDCStart)
		mux.HandleFunc("GET "+u.oidc.cfg.callbackPath(), func(w http.ResponseWriter, r *http.Request) { u.handleOIDCCallback(w, r, api) })
	}
	mux.HandleFunc("POST /signout", u.handleSignOut)
	mux.HandleFunc("POST /lang", u.handleLang)
	for _, p := range appPages {
		mux.HandleFunc("GET /"+p, u.handleApp(p))
	}
	mux.Handle("GET /static/", http.StripPrefix("/static/", u.staticHandler()))
	mux.Handle("/", u.proxy(api))
	return mux
}

// appPages are the pages of the signed-in app, each one ES module view.
var appPages = []string{"chat", "inbox", "settings", "admin", "audit"}

func (u *UI) staticHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		u.static.ServeHTTP(w, r)
	})
}

// proxy hands r to api, authenticated by its session when it has one.
func (u *UI) proxy(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			api.ServeHTTP(w, r)
			return
		}
		s := u.session(r)
		if s == nil {
			api.ServeHTTP(w, r)
			return
		}
		if !safeMethod(r.Method) {
			if got := r.Header.Get(CSRFHeader); subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				u.refuse(w, r, "csrf", "web.error.csrf")
				return
			}
		}
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && !sameOrigin(r) {
			u.refuse(w, r, "origin", "web.error.origin")
			return
		}
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+s.token)
		if c, err := r.Cookie(LangCookie); err == nil && r.URL.Query().Get("lang") == "" {
			r.Header.Set("Accept-Language", u.cfg.Catalog.Match(c.Value))
		}
		api.ServeHTTP(w, r)
	})
}

// refuse answers 403 in the API's error shape with reason and message msg.
func (u *UI) refuse(w http.ResponseWriter, r *http.Request, reason, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	body := map[string]any{"error": map[string]string{"code": "forbidden", "reason": reason,
		"message": u.cfg.Catalog.Text(u.lang(r), msg, nil)}}
	if err := json.NewEncoder(w).Encode(body); err != nil {
		u.cfg.Logger.Debug("web: write refusal", "err", err)
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether r's Origin, if any, is its Host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	parsed, err := url.Parse(o)
	return err == nil && strings.EqualFold(parsed.Host, r.Host)
}

// session returns r's live session, or nil.
func (u *UI) session(r *http.Request) *session {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.sessions[c.Value]
	if s == nil {
		return nil
	}
	if !u.cfg.Clock.Now().Before(s.expires) {
		delete(u.sessions, s.id)
		return nil
	}
	return s
}

// lang is the language of r: the remembered choice, else Accept-Language.
func (u *UI) lang(r *http.Request) string {
	if c, err := r.Cookie(LangCookie); err == nil {
		return u.cfg.Catalog.Match(c.Value)
	}
	return u.cfg.Catalog.Match(r.Header.Get("Accept-Language"))
}

// pageHeaders are the security headers of every HTML page.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
}

func (u *UI) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
}

func (u *UI) handleRoot(w http.ResponseWriter, r *http.Request) {
	if u.session(r) != nil {
		http.Redirect(w, r, "/chat", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// pageData is what the templates render.
type pageData struct {
	Lang      string
	Languages []languageChoice
	Page      string
	CSRF      string
	Subject   string
	Tenant    string
	Error     string
	Demo      []DemoUser
	// OIDC is the identity provider's name when OIDC sign-in is offered.
	OIDC string
	Boot *boot
	Next string

	catalog *locale.Catalog
}

// T is message id in the page's language.
func (d pageData) T(id string) string { return d.catalog.Text(d.Lang, id, nil) }

// SignInWith is the OIDC button's label, naming the provider.
func (d pageData) SignInWith() string {
	return d.catalog.Text(d.Lang, "web.oidc.submit", map[string]string{"Name": d.OIDC})
}

type languageChoice struct{ Code, Name string }

// languageNames are each language's name in itself.
var languageNames = map[string]string{"de": "Deutsch", "en": "English", "es": "Español",
	"fr": "Français", "it": "Italiano", "zh": "中文"}

func (u *UI) data(r *http.Request, page string) pageData {
	lang := u.lang(r)
	d := pageData{Lang: lang, Page: page, Next: r.URL.Path, catalog: u.cfg.Catalog}
	for _, l := range locale.Languages {
		d.Languages = append(d.Languages, languageChoice{l, languageNames[l]})
	}
	return d
}

func (u *UI) render(w http.ResponseWriter, status int, name string, d pageData) {
	pageHeaders(w)
	w.WriteHeader(status)
	if err := u.pages.ExecuteTemplate(w, name, d); err != nil {
		u.cfg.Logger.Warn("web: render page", "page", name, "err", err)
	}
}

func (u *UI) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	u.signInPage(w, r, http.StatusOK, "")
}

// signInPage renders the sign-in form with a fresh double-submit token.
func (u *UI) signInPage(w http.ResponseWriter, r *http.Request, status int, errID string) {
	d := u.data(r, "signin")
	d.Demo = u.cfg.DemoUsers
	if u.oidc != nil {
		d.OIDC = u.oidc.cfg.DisplayName()
	}
	d.CSRF = rand.Text()
	if errID == "" && r.URL.Query().Get("expired") != "" {
		errID = "web.signin.expired"
	}
	if errID != "" {
		d.Error = d.T(errID)
	}
	http.SetCookie(w, u.cookie(r, SignInCookie, d.CSRF, 3600))
	u.render(w, status, "signin.html", d)
}

// formCSRF checks a form's csrf field against the session's token or,
// before sign-in, the sign-in cookie.
func (u *UI) formCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	if got == "" {
		return false
	}
	if s := u.session(r); s != nil && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1 {
		return true
	}
	c, err := r.Cookie(SignInCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) == 1
}

// handleSignIn starts a session for a demo user or a pasted token, once the
// API has accepted the token: GET /api/v1/me/effective in the tenant.
func (u *UI) handleSignIn(w http.ResponseWriter, r *http.Request, api http.Handler) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !u.formCSRF(r) || !sameOrigin(r) {
		u.signInPage(w, r, http.StatusForbidden, "web.error.csrf")
		return
	}
	token, tenant := strings.TrimSpace(r.PostFormValue("token")), strings.TrimSpace(r.PostFormValue("tenant"))
	if demo := r.PostFormValue("demo"); demo != "" {
		token = ""
		for _, d := range u.cfg.DemoUsers {
			if d.Subject == demo {
				token, tenant = d.Token, d.Tenant
			}
		}
	}
	if token == "" || tenant == "" {
		u.signInPage(w, r, http.StatusBadRequest, "web.signin.missing")
		return
	}
	u.startSession(w, r, api, token, tenant)
}

// startSession starts a session sending token in tenant, once the API has
// accepted it there, and goes to the chat.
func (u *UI) startSession(w http.ResponseWriter, r *http.Request, api http.Handler, token, tenant string) {
	subject, errID := u.whoAmI(r, api, token, tenant)
	if errID != "" {
		u.signInPage(w, r, http.StatusUnauthorized, errID)
		return
	}
	s := &session{id: rand.Text(), csrf: rand.Text(), token: token, subject: subject, tenant: tenant,
		expires: u.cfg.Clock.Now().Add(u.cfg.SessionTTL)}
	if !u.add(s) {
		u.signInPage(w, r, http.StatusServiceUnavailable, "web.signin.full")
		return
	}
	http.SetCookie(w, u.cookie(r, SessionCookie, s.id, int(u.cfg.SessionTTL/time.Second)))
	http.SetCookie(w, u.cookie(r, SignInCookie, "", -1))
	http.Redirect(w, r, "/chat", http.StatusSeeOther)
}

// whoAmI asks the API who token is in tenant; it returns the subject or the
// message id of why the sign-in is refused.
func (u *UI) whoAmI(r *http.Request, api http.Handler, token, tenant string) (string, string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/api/v1/me/effective?tenant="+url.QueryEscape(tenant), nil)
	if err != nil {
		return "", "web.signin.bad_tenant"
	}
	req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
	req.Header.Set("Authorization", "Bearer "+token)
	rec := &recorder{header: http.Header{}}
	api.ServeHTTP(rec, req)
	switch {
	case rec.code == http.StatusUnauthorized:
		return "", "web.signin.bad_token"
	case rec.code != http.StatusOK:
		return "", "web.signin.bad_tenant"
	}
	var eff struct {
		Subject struct{ Type, ID string } `json:"subject"`
	}
	if err := json.NewDecoder(io.LimitReader(&rec.body, 1<<20)).Decode(&eff); err != nil || eff.Subject.ID == "" {
		u.cfg.Logger.Warn("web: sign-in: unreadable effective answer", "err", err)
		return "", "web.signin.bad_token"
	}
	return eff.Subject.Type + ":" + eff.Subject.ID, ""
}

// add stores s unless MaxSessions live sessions exist.
func (u *UI) add(s *session) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.sessions) >= u.cfg.MaxSessions {
		now := u.cfg.Clock.Now()
		for id, o := range u.sessions {
			if !now.Before(o.expires) {
				delete(u.sessions, id)
			}
		}
		if len(u.sessions) >= u.cfg.MaxSessions {
			return false
		}
	}
	u.sessions[s.id] = s
	return true
}

func (u *UI) handleSignOut(w http.ResponseWriter, r *http.Request) {
	s := u.session(r)
	if s == nil || !u.formCSRF(r) {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	u.mu.Lock()
	delete(u.sessions, s.id)
	u.mu.Unlock()
	http.SetCookie(w, u.cookie(r, SessionCookie, "", -1))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// handleLang remembers the chosen language for a year and goes back.
func (u *UI) handleLang(w http.ResponseWriter, r *http.Request) {
	if !u.formCSRF(r) {
		u.signInPage(w, r, http.StatusForbidden, "web.error.csrf")
		return
	}
	lang := u.cfg.Catalog.Match(r.PostFormValue("lang"))
	c := u.cookie(r, LangCookie, lang, 365*24*3600)
	http.SetCookie(w, c)
	next := r.PostFormValue("next")
	if !localPath(next) {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// localPath reports whether p is a path on this site, never another host.
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\\r\n")
}

// boot is the data the page's module starts from, in a JSON data block.
type boot struct {
	Page     string            `json:"page"`
	Lang     string            `json:"lang"`
	CSRF     string            `json:"csrf"`
	Subject  string            `json:"subject"`
	Tenant   string            `json:"tenant"`
	Messages map[string]string `json:"messages"`
}

// handleApp serves one page of the signed-in app.
func (u *UI) handleApp(page string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := u.session(r)
		if s == nil {
			target := "/signin"
			if _, err := r.Cookie(SessionCookie); err == nil {
				target += "?expired=1"
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		d := u.data(r, page)
		d.CSRF, d.Subject, d.Tenant = s.csrf, s.subject, s.tenant
		d.Boot = &boot{Page: page, Lang: d.Lang, CSRF: s.csrf, Subject: s.subject,
			Tenant: s.tenant, Messages: u.messages(d.Lang)}
		u.render(w, http.StatusOK, "app.html", d)
	}
}

// placeholders are the template fields web messages use; the page's module
// fills in "{plan}" and the like itself.
var placeholders = map[string]string{"Plan": "{plan}", "Count": "{count}", "Limit": "{limit}",
	"Tenant": "{tenant}", "Source": "{source}", "Time": "{time}", "Window": "{window}", "Part": "{part}",
	"Name": "{name}", "User": "{user}", "Reason": "{reason}", "From": "{from}", "To": "{to}"}

// messages are the catalog's web.* messages in lang, and the reason
// messages, for the page's module.
func (u *UI) messages(lang string) map[string]string {
	out := map[string]string{}
	for _, id := range u.cfg.Catalog.IDs() {
		if strings.HasPrefix(id, "web.") {
			out[id] = u.cfg.Catalog.Text(lang, id, placeholders)
		}
	}
	return out
}

// recorder is the in-process answer of the API to whoAmI.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
