// Package http serves Gatehouse over HTTP: the OpenID AuthZEN Authorization
// API 1.0 (access evaluation and evaluations, PDP metadata), a native REST
// subset under /api/v1, health and readiness probes, bearer JWT
// authentication, and one table from error codes to statuses. Every handler
// calls the service layer; messages are localized by Accept-Language.
package http

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/billing"
	"github.com/gatehouse/gatehouse/chat"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

// AuthZEN authentication modes (Config.AuthZENAuth).
const (
	AuthJWT   = "jwt"
	AuthToken = "token"
	AuthNone  = "none"
)

// MinJWTSecret is the shortest HS256 secret Validate accepts, in bytes.
const MinJWTSecret = 32

// MinAuthZENToken is the shortest shared AuthZEN token Validate accepts.
const MinAuthZENToken = 16

// Config configures a Server; flags and environment map onto it.
type Config struct {
	// Addr is the TCP address Open listens on, e.g. 127.0.0.1:8080.
	Addr              string
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds how long Close waits for requests in flight.
	ShutdownTimeout time.Duration
	// MaxBodyBytes bounds a request body; larger bodies are answered 413.
	MaxBodyBytes int64
	// MaxApplyBytes bounds the policy document of POST
	// /api/v1/policy:apply, which is larger than other bodies; a larger
	// one is answered 413 payload_too_large.
	MaxApplyBytes int64
	// MaxEvaluations bounds the evaluations of one AuthZEN batch.
	MaxEvaluations int

	// JWTSecret verifies HS256 bearer tokens; at least MinJWTSecret bytes.
	// At least one of JWTSecret and JWKSURL is required.
	JWTSecret []byte
	// JWKSURL is an identity provider's JSON Web Key Set: tokens signed
	// RS256, ES256 or EdDSA with a key of the set (by kid) are accepted. The
	// set is cached, refreshed every JWKSRefresh and, rate-limited, when a
	// token names an unknown kid, so key rotation needs no restart.
	JWKSURL     string
	JWKSRefresh time.Duration
	// JWKSMinRefresh spaces refetches for tokens naming an unknown kid.
	JWKSMinRefresh time.Duration
	// JWTIssuer and JWTAudience, when set, must match the token's iss and aud.
	JWTIssuer   string
	JWTAudience string
	// TrustUnverifiedEmail lets a token whose sub names no user or agent
	// fall back to its email claim even when email_verified is not true.
	// Off by default: an identity provider that lets users set an email
	// without verifying it would let them become that user.
	TrustUnverifiedEmail bool
	// AuthZENAuth is AuthJWT (the AuthZEN endpoints need a bearer JWT),
	// AuthToken (they need one of AuthZENTokens as a bearer token, as
	// interop harnesses send) or AuthNone (they are open; for a PDP
	// reachable only by trusted PEPs).
	AuthZENAuth string
	// AuthZENTokens are the shared bearer tokens AuthToken accepts; more
	// than one lets an operator rotate them.
	AuthZENTokens []string

	// TLSCertFile and TLSKeyFile, when set, make Open serve HTTPS with this
	// PEM certificate (chain) and key.
	TLSCertFile string
	TLSKeyFile  string

	// RateLimit, when positive, allows each verified caller (per subject,
	// however its credential is spelled) this many requests per second,
	// with bursts of RateBurst; requests without a credential and
	// credentials that fail verification are limited the same per client
	// address, before verification. More are answered 429 with Retry-After.
	// RateBuckets bounds how many callers and addresses are tracked
	// (DefaultRateBuckets when zero); the least recently seen go first.
	RateLimit   float64
	RateBurst   int
	RateBuckets int

	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For, -Proto, -Host and -Prefix headers are believed: the
	// client address (rate limits, the request log) and, without BaseURL,
	// the metadata's base URL come from them only when the connection's
	// peer is in one of these prefixes.
	TrustedProxies []netip.Prefix

	// Decisions, when set, records every decision in the audit trail
	// without blocking the decision path (see service.DecisionLog).
	Decisions *service.DecisionLog

	// Billing, when set, enables the billing webhook: its secrets, price
	// and customer mappings (see package billing).
	Billing *billing.Config

	// BaseURL, when set, is the PDP identifier the metadata document
	// publishes; otherwise it is derived from each request: its scheme and
	// Host (AuthZEN requires the identifier the client asked with) or, from
	// a trusted proxy, the X-Forwarded-* headers (see TrustedProxies).
	BaseURL string

	// AllowEmpty makes /readyz report ready while no policy has been
	// applied (version 0); without it an empty store is not ready, so that
	// a load balancer never sends traffic to an instance that denies
	// everything because it lost or never had its policy.
	AllowEmpty bool

	// MCP, when set, is the MCP gateway's Streamable HTTP handler, served at
	// /mcp to callers with a bearer JWT or an API key with the mcp scope,
	// with the OAuth protected resource metadata (RFC 9728) it announces.
	MCP http.Handler

	// Chat, when set, is the chat engine served at /ws and under
	// /api/v1/threads, with ChatLimits on its sockets.
	Chat       *chat.Engine
	ChatLimits ChatLimits

	// Web, when set, wraps the API's routes: it serves the browser UI
	// (package web) and passes every other request on, behind the request
	// id, log and panic recovery and before rate limiting, so a browser
	// session is limited per credential like any client.
	Web func(api http.Handler) http.Handler

	Logger  *slog.Logger
	Catalog *locale.Catalog
	Clock   gatehouse.Clock
}

// DefaultConfig returns a configuration without a JWT secret or catalog,
// which the caller must supply.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		JWKSRefresh:       time.Hour,
		JWKSMinRefresh:    10 * time.Second,
		ShutdownTimeout:   10 * time.Second,
		MaxBodyBytes:      1 << 20,
		MaxApplyBytes:     policy.DefaultMaxDocument,
		MaxEvaluations:    1000,
		AuthZENAuth:       AuthJWT,
		Logger:            slog.New(slog.DiscardHandler),
		Clock:             gatehouse.SystemClock{},
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Addr == "":
		return gatehouse.Invalidf("http: address is empty")
	case c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0 || c.ShutdownTimeout <= 0:
		return gatehouse.Invalidf("http: timeouts must be positive")
	case c.MaxBodyBytes <= 0:
		return gatehouse.Invalidf("http: max body bytes %d is not positive", c.MaxBodyBytes)
	case c.MaxApplyBytes <= 0:
		return gatehouse.Invalidf("http: max apply bytes %d is not positive", c.MaxApplyBytes)
	case c.RateLimit < 0 || c.RateBurst < 0 || c.RateBuckets < 0:
		return gatehouse.Invalidf("http: rate limit %g, burst %d and buckets %d must not be negative", c.RateLimit, c.RateBurst, c.RateBuckets)
	case c.MaxEvaluations <= 0:
		return gatehouse.Invalidf("http: max evaluations %d is not positive", c.MaxEvaluations)
	case len(c.JWTSecret) == 0 && c.JWKSURL == "":
		return gatehouse.Invalidf("http: bearer tokens need a JWT secret or a JWKS URL")
	case len(c.JWTSecret) > 0 && len(c.JWTSecret) < MinJWTSecret:
		return gatehouse.Invalidf("http: the JWT secret has %d bytes, want at least %d", len(c.JWTSecret), MinJWTSecret)
	case c.AuthZENAuth != AuthJWT && c.AuthZENAuth != AuthToken && c.AuthZENAuth != AuthNone:
		return gatehouse.Invalidf("http: AuthZEN authentication %q: want %s, %s or %s", c.AuthZENAuth, AuthJWT, AuthToken, AuthNone)
	case c.AuthZENAuth == AuthToken && len(c.AuthZENTokens) == 0:
		return gatehouse.Invalidf("http: AuthZEN authentication %s needs at least one token", AuthToken)
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return gatehouse.Invalidf("http: TLS needs both a certificate and a key file")
	case c.Logger == nil:
		return gatehouse.Invalidf("http: logger is nil")
	case c.Catalog == nil:
		return gatehouse.Invalidf("http: message catalog is nil")
	case c.Clock == nil:
		return gatehouse.Invalidf("http: clock is nil")
	}
	for _, t := range c.AuthZENTokens {
		if len(t) < MinAuthZENToken {
			return gatehouse.Invalidf("http: an AuthZEN token has %d bytes, want at least %d", len(t), MinAuthZENToken)
		}
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return gatehouse.Invalidf("http: JWKS URL %q: want an absolute https URL", c.JWKSURL)
		}
	}
	if c.Billing != nil {
		if err := c.Billing.Validate(); err != nil {
			return err
		}
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return gatehouse.Invalidf("http: base URL %q: want an absolute http(s) URL without query or fragment", c.BaseURL)
		}
	}
	return nil
}

// Server serves the HTTP API. NewServer builds it, Open listens and serves,
// Close shuts it down; Handler serves without a listener (httptest).
type Server struct {
	svc     *service.Service
	cfg     Config
	handler http.Handler
	// endpoints are the routes in registration order; openapi returns
	// the document built from them, built on first use: reflecting on
	// every route's shapes is most of what building a Server costs.
	endpoints []endpoint
	openapi   func() []byte
	// keys verifies tokens of the JWKS URL; nil without one. keysErr is
	// why it could not be set up. stop ends its refreshing.
	keys    keyfunc.Keyfunc
	keysErr error
	stop    context.CancelFunc
	metrics *metrics
	apiKeys keyCache
	chat    *chatState
	// limits counts requests against Config.RateLimit; nil when unlimited.
	limits *limiter

	ln     net.Listener
	server *http.Server
	done   chan struct{}
}

// NewServer returns a server for svc. cfg should pass Validate; Open
// reports it if it does not.
func NewServer(svc *service.Service, cfg Config) *Server {
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	s := &Server{svc: svc, cfg: cfg}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if cfg.JWKSURL != "" {
		s.keys, s.keysErr = newKeySet(ctx, cfg)
	}
	if cfg.RateLimit > 0 {
		s.limits = newLimiter(cfg)
	}
	s.metrics = newMetrics(s)
	s.handler = s.routes()
	s.openapi = sync.OnceValue(s.openAPI)
	return s
}

// Handler returns the server's handler with all middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// Open validates the configuration, listens on Config.Addr and serves in
// the background until Close.
func (s *Server) Open(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	if s.keysErr != nil {
		return gatehouse.Invalidf("http: JWKS %s: %v", s.cfg.JWKSURL, s.keysErr)
	}
	if s.cfg.AuthZENAuth == AuthNone {
		s.cfg.Logger.Warn("the AuthZEN endpoints accept requests without authentication (--authzen-auth=none)")
	}
	var tlsConfig *tls.Config
	if s.cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			return gatehouse.Invalidf("http: TLS certificate %s and key %s: %v", s.cfg.TLSCertFile, s.cfg.TLSKeyFile, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.server = &http.Server{
		TLSConfig:         tlsConfig,
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		serve := s.server.Serve
		if tlsConfig != nil {
			serve = func(ln net.Listener) error { return s.server.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("http server stopped", "err", err)
		}
	}()
	s.cfg.Logger.Info("http server listening", "addr", ln.Addr().String())
	return nil
}

// URL returns the base URL of the open listener, e.g. http://127.0.0.1:8080,
// or https://… when serving TLS.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	if s.cfg.TLSCertFile != "" {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops accepting connections and waits up to ShutdownTimeout for
// requests in flight, then closes what remains.
func (s *Server) Close() error {
	s.stop()
	if s.server == nil {
		return nil
	}
	s.closeChat()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.server.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("shut down http server: %w", err), s.server.Close())
	}
	<-s.done
	s.server = nil
	return err
}

// routes builds the mux and wraps it in the middleware every request passes:
// request id, request log, panic recovery. Every route is also recorded in
// s.endpoints, from which the OpenAPI document is built.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// AuthZEN at the root and, scoped to a tenant's subtree, under /{tenant}.
	for _, prefix := range []string{"", "/{tenant}"} {
		scoped := prefix != ""
		s.route(mux, http.MethodPost, prefix+"/access/v1/evaluation", s.authzen(s.handleEvaluation),
			authzenDoc("evaluation", "Decide one access request", scoped, new(authzenRequest), new(decisionJSON)))
		s.route(mux, http.MethodPost, prefix+"/access/v1/evaluations", s.authzen(s.handleEvaluations),
			authzenDoc("evaluations", "Decide a batch of access requests", scoped, new(authzenBatchRequest), new(batchResponse)))
		s.route(mux, http.MethodPost, prefix+"/access/v1/search/subject", s.authzen(s.handleSearch(searchSubject)),
			authzenDoc("searchSubject", "The subjects allowed an action on a resource", scoped, new(authzenSearchRequest), new(searchResponse)))
		s.route(mux, http.MethodPost, prefix+"/access/v1/search/resource", s.authzen(s.handleSearch(searchResource)),
			authzenDoc("searchResource", "The resources a subject may act on", scoped, new(authzenSearchRequest), new(searchResponse)))
		s.route(mux, http.MethodPost, prefix+"/access/v1/search/action", s.authzen(s.handleSearch(searchAction)),
			authzenDoc("searchAction", "The actions a subject may perform on a resource", scoped, new(authzenSearchRequest), new(searchResponse)))
		s.route(mux, http.MethodGet, "/.well-known/authzen-configuration"+prefix, http.HandlerFunc(s.handleMetadata),
			authzenDoc("metadata", "AuthZEN PDP metadata", scoped, nil, new(metadata)).public())
	}
	s.route(mux, http.MethodPost, "/api/v1/check", s.authenticated(s.handleCheck),
		apiDoc("check", "Decide a request (about the caller; about anyone for admins)", new(checkRequest), new(gatehouse.Answer)).withScope(gatehouse.ScopeCheck))
	s.route(mux, http.MethodPost, "/api/v1/explain", s.authenticated(s.handleExplain),
		apiDoc("explain", "Decide a request and explain the decision path", new(checkRequest), new(gatehouse.Answer)).withScope(gatehouse.ScopeCheck))
	s.route(mux, http.MethodGet, "/api/v1/me/effective", s.authenticated(s.handleEffective),
		apiDoc("effective", "Everything the caller may do in a tenant", new(tenantQuery), new(gatehouse.Effective)).withScope(gatehouse.ScopeCheck))
	s.route(mux, http.MethodGet, "/api/v1/me/tenants", s.authenticated(s.handleMyTenants),
		apiDoc("my_tenants", "The tenants the caller may see, for a tenant switcher", nil, new(tenantList)).withScope(gatehouse.ScopeCheck))
	s.restRoutes(mux)
	s.apiKeyRoutes(mux)
	s.actionRoutes(mux)
	s.permissionRoutes(mux)
	s.billingRoutes(mux)
	s.mcpRoutes(mux)
	s.chatRoutes(mux)
	s.route(mux, http.MethodGet, "/api/v1/openapi.json", http.HandlerFunc(s.handleOpenAPI),
		apiDoc("openapi", "This OpenAPI document", nil, nil).public())
	s.route(mux, http.MethodGet, "/healthz", http.HandlerFunc(s.handleHealth),
		apiDoc("health", "200 while the process runs", nil, new(statusBody)).public().tagged("operations"))
	s.route(mux, http.MethodGet, "/readyz", http.HandlerFunc(s.handleReady),
		apiDoc("ready", "200 when the store answers and a snapshot is loaded", nil, new(statusBody)).public().tagged("operations"))
	s.route(mux, http.MethodGet, "/metrics", s.metricsHandler(),
		operation{id: "metrics", summary: "Prometheus metrics", tag: "operations", contentType: "text/plain"})
	// Other methods on a known path are a 405 with Allow.
	allowed := map[string][]string{}
	var paths []string
	for _, e := range s.endpoints {
		if allowed[e.path] == nil {
			paths = append(paths, e.path)
		}
		allowed[e.path] = append(allowed[e.path], e.method)
		if e.method == http.MethodGet {
			allowed[e.path] = append(allowed[e.path], http.MethodHead)
		}
	}
	// The fallbacks name their methods: a method-less pattern such as
	// "/api/v1/actions/{id}" would conflict with "POST /api/v1/actions/authorize".
	// A GET pattern also serves HEAD, so none names HEAD: "HEAD
	// /api/v1/permissions/{action_type}" would conflict with "GET
	// /api/v1/permissions/limits".
	for _, path := range paths {
		allow := strings.Join(allowed[path], ", ")
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut,
			http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			if slices.Contains(allowed[path], m) {
				continue
			}
			mux.HandleFunc(m+" "+path, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Allow", allow)
				s.writeError(w, r, &Error{Code: CodeMethodNotAllowed, Err: fmt.Errorf("%s %s", r.Method, path)})
			})
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &Error{Code: gatehouse.CodeNotFound, Err: fmt.Errorf("no route for %s", r.URL.Path)})
	})
	api := s.withRateLimit(s.withMetrics(mux))
	if s.cfg.Web != nil {
		api = s.cfg.Web(api)
	}
	return s.withRequestID(s.withLog(s.withRecover(api)))
}

// route registers h for method on path and records the endpoint with its
// documentation, if given, for the OpenAPI document. The request info of
// every request h serves carries the route's declared API key scope, which
// authenticateAny checks: the matched route decides, never the path text.
func (s *Server) route(mux *http.ServeMux, method, path string, h http.Handler, doc ...operation) {
	e := endpoint{method: method, path: path}
	if len(doc) > 0 {
		e.op = doc[0]
	}
	scope := e.op.scope
	mux.Handle(method+" "+path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info(r.Context()).scope = scope
		h.ServeHTTP(w, r)
	}))
	s.endpoints = append(s.endpoints, e)
}

// text localizes a catalog message.
func (s *Server) text(lang, id string, data any) string {
	return s.cfg.Catalog.Text(lang, id, data)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady answers 200 when the store answers, could take a write, and a
// policy is loaded (or Config.AllowEmpty says an empty one will do). A store
// that accepts no writes is 503 error.not_writable, its cause logged.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if _, err := s.svc.Reload(r.Context()); err != nil {
		s.writeError(w, r, &Error{Code: gatehouse.CodeUnavailable, Err: fmt.Errorf("readiness: %w", err)})
		return
	}
	if err := s.svc.CheckWritable(r.Context()); err != nil {
		s.writeError(w, r, &Error{Code: gatehouse.CodeUnavailable, Message: "error.not_writable",
			Err: fmt.Errorf("readiness: %w", err)})
		return
	}
	v := s.svc.Version()
	if v == 0 && !s.cfg.AllowEmpty {
		s.writeError(w, r, &Error{Code: gatehouse.CodeUnavailable, Message: "error.no_policy",
			Err: errors.New("readiness: no policy has been applied (version 0)")})
		return
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"status": "ready", "version": v})
}
