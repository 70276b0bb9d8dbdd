package http

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mailaddr"
	"github.com/gatehouse/gatehouse/service"
)

// jwtLeeway is the clock skew tolerated on exp, nbf and iat.
const jwtLeeway = 30 * time.Second

// IssueToken returns an HS256 token for subject ("user:EMAIL", "agent:ID"
// or an email) that expires after ttl, with cfg's issuer and audience. The
// demo uses it; production tokens come from an identity provider.
func IssueToken(cfg Config, subject string, ttl time.Duration) (string, error) {
	if len(cfg.JWTSecret) < MinJWTSecret {
		return "", gatehouse.Invalidf("issue token: the JWT secret has %d bytes, want at least %d", len(cfg.JWTSecret), MinJWTSecret)
	}
	if _, err := gatehouse.ParseSubject(subject); err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = gatehouse.SystemClock{}
	}
	now := clock.Now()
	c := jwt.RegisteredClaims{
		Subject:   subject,
		Issuer:    cfg.JWTIssuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	if cfg.JWTAudience != "" {
		c.Audience = jwt.ClaimStrings{cfg.JWTAudience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(cfg.JWTSecret)
}

// Signing algorithms: HS256 with the configured secret, the asymmetric
// ones with a key of the JWKS.
var jwksMethods = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg(), jwt.SigningMethodEdDSA.Alg()}

// newKeySet starts fetching and refreshing cfg's JWKS until ctx ends. A
// JWKS that cannot be fetched yet is not an error: tokens fail until it can.
func newKeySet(ctx context.Context, cfg Config) (keyfunc.Keyfunc, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		HTTPTimeout:     10 * time.Second,
		RefreshInterval: cfg.JWKSRefresh,
		// A token with a kid the set lacks refetches it at most every
		// JWKSMinRefresh, without waiting: rotation is picked up at once
		// without letting tokens hammer the identity provider or queue.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(max(cfg.JWKSMinRefresh, time.Millisecond)), 1),
		RateLimitWaitMax:  time.Millisecond,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				logger.WarnContext(ctx, "JWKS refresh failed; keeping the keys fetched before", "url", u, "err", err)
			}
		},
	})
}

// authenticate verifies r's bearer token and returns the subject it names
// and its tenant claim. HS256 tokens are checked with the secret,
// RS256/ES256/EdDSA tokens with the JWKS key their kid names; nothing else
// is accepted, which rules out alg "none" and RS/HS key confusion. Expiry
// is required; an iat in the future (beyond jwtLeeway) is refused; issuer
// and audience are checked when set. The claims are decoded as map claims
// with JSON numbers, so golang-jwt refuses an exp, nbf or iat that is not a
// JSON number (a registered-claims struct would accept "exp": "1e10").
//
// The subject is sub ("user:EMAIL", "agent:ID" or a bare email); for a sub
// that names neither (an opaque id of an identity provider) it is the email
// claim, if email_verified is true or Config.TrustUnverifiedEmail says so.
// Every email must be canonical (package mailaddr), so a look-alike address is
// refused instead of folded into another user.
func (s *Server) authenticate(r *http.Request) (gatehouse.SubjectRef, string, error) {
	token, ok := bearerToken(r)
	if !ok {
		return gatehouse.SubjectRef{}, "", errors.New("no bearer token")
	}
	var methods []string
	if len(s.cfg.JWTSecret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if s.keys != nil {
		methods = append(methods, jwksMethods...)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithJSONNumber(),
		jwt.WithLeeway(jwtLeeway),
		jwt.WithTimeFunc(s.cfg.Clock.Now),
	}
	if s.cfg.JWTIssuer != "" {
		opts = append(opts, jwt.WithIssuer(s.cfg.JWTIssuer))
	}
	if s.cfg.JWTAudience != "" {
		opts = append(opts, jwt.WithAudience(s.cfg.JWTAudience))
	}
	c := jwt.MapClaims{}
	if _, err := jwt.NewParser(opts...).ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		if t.Method.Alg() == jwt.SigningMethodHS256.Alg() {
			return s.cfg.JWTSecret, nil
		}
		if _, hasKID := t.Header["kid"].(string); !hasKID {
			return nil, errors.New("a JWKS-signed token must name its key (kid)")
		}
		return s.keys.KeyfuncCtx(r.Context())(t)
	}); err != nil {
		return gatehouse.SubjectRef{}, "", fmt.Errorf("bearer token: %w", err)
	}
	sub, err := c.GetSubject()
	if err != nil {
		return gatehouse.SubjectRef{}, "", fmt.Errorf("bearer token: %w", err)
	}
	email, okEmail := optionalString(c, "email")
	tenant, okTenant := optionalString(c, "tenant")
	if !okEmail || !okTenant {
		return gatehouse.SubjectRef{}, "", errors.New("bearer token: email and tenant must be strings")
	}
	if ref, err := gatehouse.ParseSubject(sub); err == nil {
		ref, err = canonicalSubject(ref)
		return ref, tenant, err
	}
	if email == "" {
		return gatehouse.SubjectRef{}, "", fmt.Errorf("bearer token: sub %q names no user or agent and there is no email", sub)
	}
	if verified := c["email_verified"]; verified != true && verified != "true" && !s.cfg.TrustUnverifiedEmail {
		return gatehouse.SubjectRef{}, "", fmt.Errorf("bearer token: sub %q names no user or agent and email %q is not verified (email_verified %v)", sub, email, verified)
	}
	if ref, err := gatehouse.ParseSubject(email); err == nil && ref.Type == gatehouse.SubjectUser {
		ref, err = canonicalSubject(ref)
		return ref, tenant, err
	}
	return gatehouse.SubjectRef{}, "", fmt.Errorf("bearer token: neither sub %q nor email %q names a user or agent", sub, email)
}

// optionalString returns claim key of c, "" if absent; ok is false for a
// value that is not a string.
func optionalString(c jwt.MapClaims, key string) (string, bool) {
	v, present := c[key]
	if !present {
		return "", true
	}
	str, ok := v.(string)
	return str, ok
}

// canonicalSubject returns ref with its email in canonical form (package
// mailaddr), or refuses it: a token may not name a look-alike address.
func canonicalSubject(ref gatehouse.SubjectRef) (gatehouse.SubjectRef, error) {
	if ref.Type != gatehouse.SubjectUser {
		return ref, nil
	}
	email, err := mailaddr.Canonical(ref.ID)
	if err != nil {
		return gatehouse.SubjectRef{}, fmt.Errorf("bearer token: %w", err)
	}
	return gatehouse.User(email), nil
}

// bearerToken returns the token of r's "Authorization: Bearer TOKEN"
// header: the scheme in any case, the token without surrounding spaces.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// authenticated lets only requests with a valid bearer token through and
// records the caller in the request's context (gatehouse.NewContext).
func (s *Server) authenticated(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := s.authenticateAny(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next(w, s.withCaller(r, caller))
	})
}

// withCaller returns r carrying caller in its request info and, for the
// service's authorization of changes, in its context.
func (s *Server) withCaller(r *http.Request, caller gatehouse.Caller) *http.Request {
	info(r.Context()).caller = caller
	return r.WithContext(gatehouse.NewContext(r.Context(), caller))
}

// callerOf is the authenticated caller of r.
func callerOf(r *http.Request) gatehouse.Caller { return info(r.Context()).caller }

// authenticateAny accepts a bearer API key with the scope the route needs,
// or a bearer JWT, and returns the caller it names. An API key carries no
// tenant.
func (s *Server) authenticateAny(r *http.Request) (gatehouse.Caller, error) {
	token, _ := bearerToken(r)
	if !strings.HasPrefix(token, service.APIKeyPrefix) {
		subject, tenant, err := s.authenticate(r)
		if err != nil {
			return gatehouse.Caller{}, &Error{Code: CodeUnauthorized, Err: err}
		}
		return gatehouse.Caller{Subject: subject, Credential: gatehouse.CredentialToken, Tenant: tenant}, nil
	}
	k, err := s.apiKeys.verify(r.Context(), s.svc, token, s.cfg.Clock.Now())
	if err != nil {
		if errors.Is(err, service.ErrBadAPIKey) {
			return gatehouse.Caller{}, &Error{Code: CodeUnauthorized, Err: err}
		}
		// The store could not say: the caller is not let in, and may retry.
		return gatehouse.Caller{}, err
	}
	if scope := info(r.Context()).scope; scope == "" || !k.Allows(scope) {
		return gatehouse.Caller{}, &Error{Code: CodeForbidden, Message: "error.api_key_scope", Data: map[string]any{"Scope": scope},
			Err: fmt.Errorf("api key %s lacks scope %s", k.ID, scope)}
	}
	return gatehouse.Caller{Subject: k.Subject, Credential: gatehouse.CredentialAPIKey, Scopes: k.Scopes}, nil
}

// apiKeyCacheTTL is how long a verified key is trusted without asking the
// store again: a key revoked on another instance stops working within it.
const apiKeyCacheTTL = 10 * time.Second

// keyCache remembers verified API keys by the SHA-256 of their token.
type keyCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cachedKey
}

type cachedKey struct {
	key     gatehouse.APIKey
	checked time.Time
}

func (c *keyCache) verify(ctx context.Context, svc *service.Service, token string, now time.Time) (gatehouse.APIKey, error) {
	sum := sha256.Sum256([]byte(token))
	c.mu.Lock()
	e, ok := c.entries[sum]
	c.mu.Unlock()
	if ok && now.Sub(e.checked) < apiKeyCacheTTL && e.key.ActiveAt(now) {
		return e.key, nil
	}
	k, err := svc.VerifyAPIKey(ctx, token)
	if err != nil {
		return gatehouse.APIKey{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) > 10000 {
		c.entries = map[[32]byte]cachedKey{}
	}
	c.entries[sum] = cachedKey{key: k, checked: now}
	return k, nil
}

// forget drops the cached entries of key id, after it is revoked here.
func (c *keyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sum, e := range c.entries {
		if e.key.ID == id {
			delete(c.entries, sum)
		}
	}
}

// authzen guards the AuthZEN endpoints as Config.AuthZENAuth says: a bearer
// JWT, one of the shared tokens, or nothing.
func (s *Server) authzen(next http.HandlerFunc) http.Handler {
	switch s.cfg.AuthZENAuth {
	// The AuthZEN endpoints change nothing, so their caller needs no
	// context of its own: the request info carries it.
	case AuthNone:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info(r.Context()).caller = gatehouse.Caller{Credential: gatehouse.CredentialOpen}
			next(w, r)
		})
	case AuthToken:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.sharedToken(r) {
				s.writeError(w, r, &Error{Code: CodeUnauthorized, Err: errors.New("no valid AuthZEN bearer token")})
				return
			}
			info(r.Context()).caller = gatehouse.Caller{Credential: gatehouse.CredentialSharedToken}
			next(w, r)
		})
	}
	return s.authenticated(next)
}

// sharedToken reports whether r carries one of Config.AuthZENTokens as its
// bearer token, comparing in constant time.
func (s *Server) sharedToken(r *http.Request) bool {
	token, ok := bearerToken(r)
	if !ok {
		return false
	}
	match := 0
	for _, t := range s.cfg.AuthZENTokens {
		match |= subtle.ConstantTimeCompare([]byte(token), []byte(t))
	}
	return match == 1
}

// requireAdmin returns nil if r's caller administers Gatehouse as a whole
// (the service decides, see service.RequireAdmin).
func (s *Server) requireAdmin(r *http.Request) error { return s.svc.RequireAdmin(callerOf(r)) }
