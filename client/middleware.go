package client

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// DefaultGuardTimeout bounds how long a guarded request waits for Gatehouse.
const DefaultGuardTimeout = 2 * time.Second

// guard is the configuration of RequirePermission and RequireTool.
type guard struct {
	c          *Client
	permission string
	tool       string
	subject    func(*http.Request) (gatehouse.SubjectRef, error)
	tenant     func(*http.Request) string
	args       func(*http.Request) (map[string]any, error)
	onError    func(http.ResponseWriter, *http.Request, error)
	timeout    time.Duration
	cache      *decisionCache
	logger     *slog.Logger
}

// GuardOption configures RequirePermission and RequireTool.
type GuardOption func(*guard)

// WithSubject names the subject of a request for services that
// authenticate callers themselves (sessions, their own tokens): the guard
// then asks about that subject with the client's own token, which must be
// an administrator's, as Gatehouse lets only administrators ask about
// others. An error from f is answered 401. Without WithSubject the guard
// forwards the caller's bearer token and Gatehouse authenticates it.
func WithSubject(f func(*http.Request) (gatehouse.SubjectRef, error)) GuardOption {
	return func(g *guard) { g.subject = f }
}

// WithTenant names the tenant a request is about (from its path, a header,
// the host…); without it, or when f returns "", the check is tenant-less,
// and a permission the caller holds only in tenants is denied with
// tenant_required (see WithTenantHeader, WithTenantPathValue).
func WithTenant(f func(*http.Request) string) GuardOption {
	return func(g *guard) { g.tenant = f }
}

// WithTenantHeader takes the tenant from the request header name, such as
// "X-Tenant-ID" (WithTenant with a function that reads it).
func WithTenantHeader(name string) GuardOption {
	return WithTenant(func(r *http.Request) string { return strings.TrimSpace(r.Header.Get(name)) })
}

// WithTenantPathValue takes the tenant from the wildcard name of the
// route's pattern, such as "tenant" in "GET /stores/{tenant}/fraud"
// (http.Request.PathValue).
func WithTenantPathValue(name string) GuardOption {
	return WithTenant(func(r *http.Request) string { return r.PathValue(name) })
}

// WithTenantFunc is WithTenant: f returns the request's tenant, "" for none.
func WithTenantFunc(f func(*http.Request) string) GuardOption { return WithTenant(f) }

// WithArgs supplies the tool's arguments of a request (its amount,
// percentage, currency…), for a tool that performs an agent action with
// limits: Gatehouse then denies a call over the limit (limit_exceeded), a
// disabled action (action_disabled) and one that needs a human's
// confirmation (confirmation_required). Answers with arguments are never
// cached. An error from f is a failed check (see WithErrorHandler).
func WithArgs(f func(*http.Request) (map[string]any, error)) GuardOption {
	return func(g *guard) { g.args = f }
}

// WithErrorHandler answers requests whose check failed: Gatehouse did not
// answer or answered an error, or WithSubject's function failed (a denial,
// unknown subjects included, is a 403, not a failure). err is an *Error
// (code unauthorized for a caller Gatehouse refused, unavailable when it
// could not be reached) or the context's error. The guard never lets such
// a request through: it fails closed. The default answers 401 for
// unauthorized and 503 otherwise, in the JSON of Gatehouse's errors.
func WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) GuardOption {
	return func(g *guard) { g.onError = h }
}

// WithGuardLogger logs why checks failed (default: nowhere). The default
// error handler logs at warning level; a 503 alone does not say that the
// client's token lacks rights or Gatehouse is down.
func WithGuardLogger(l *slog.Logger) GuardOption {
	return func(g *guard) { g.logger = l }
}

// WithGuardTimeout bounds each check (default DefaultGuardTimeout).
func WithGuardTimeout(d time.Duration) GuardOption {
	return func(g *guard) { g.timeout = d }
}

// WithDecisionCache caches answers for ttl, at most size of them, keyed by
// the caller's token or subject, the tenant and the language: a repeated
// request within ttl skips the round trip. Errors are never cached. A
// policy change, a revoked grant or an expired token takes up to ttl to
// show, so keep ttl to seconds. now is the clock (nil: time.Now).
func WithDecisionCache(ttl time.Duration, size int, now func() time.Time) GuardOption {
	return func(g *guard) {
		if ttl <= 0 || size <= 0 {
			return
		}
		if now == nil {
			now = time.Now
		}
		g.cache = &decisionCache{ttl: ttl, size: size, now: now, items: map[cacheKey]*list.Element{}, lru: list.New()}
	}
}

// RequirePermission returns middleware that lets a request through only if
// Gatehouse allows its caller permission (POST /api/v1/check). A deny is
// answered 403 with the reason code and Gatehouse's message in the caller's
// language (Accept-Language is forwarded), in the JSON of Gatehouse's
// errors plus what an upgrade prompt needs:
//
//	{"error": {"code": "forbidden", "reason": "plan_required",
//	  "message": "…", "plan": "pro", "feature": "advanced_analytics"}}
//
// When Gatehouse cannot be asked, the request fails closed (see
// WithErrorHandler). An allowed request reaches next with the answer in its
// context (AnswerFrom).
func RequirePermission(c *Client, permission string, opts ...GuardOption) func(http.Handler) http.Handler {
	return newGuard(c, &guard{permission: permission}, opts)
}

// RequireTool is RequirePermission for calling an AI tool: the tool's
// permission and the policy's access permission (and for an agent acting
// for a user, both subjects).
func RequireTool(c *Client, tool string, opts ...GuardOption) func(http.Handler) http.Handler {
	return newGuard(c, &guard{tool: tool}, opts)
}

func newGuard(c *Client, g *guard, opts []GuardOption) func(http.Handler) http.Handler {
	g.c, g.timeout, g.logger = c, DefaultGuardTimeout, slog.New(slog.DiscardHandler)
	g.onError = g.writeError
	for _, opt := range opts {
		opt(g)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a, err := g.decide(r)
			if err != nil {
				g.onError(w, r, err)
				return
			}
			if !a.Allowed {
				writeDeny(w, &a)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), answerKey{}, &a)))
		})
	}
}

type answerKey struct{}

// AnswerFrom returns the answer that let the request through
// RequirePermission or RequireTool, if any.
func AnswerFrom(ctx context.Context) (gatehouse.Answer, bool) {
	a, ok := ctx.Value(answerKey{}).(*gatehouse.Answer)
	if !ok {
		return gatehouse.Answer{}, false
	}
	return *a, true
}

// decide asks Gatehouse, or the cache, about r.
func (g *guard) decide(r *http.Request) (gatehouse.Answer, error) {
	req := CheckRequest{Permission: g.permission, Tool: g.tool}
	if g.tenant != nil {
		req.Tenant = g.tenant(r)
	}
	if g.args != nil {
		args, err := g.args(r)
		if err != nil {
			return gatehouse.Answer{}, fmt.Errorf("tool arguments: %w", err)
		}
		req.Args = args
	}
	lang := r.Header.Get("Accept-Language")
	var opts []Option
	if lang != "" {
		opts = append(opts, WithLanguage(lang))
	}
	var who string
	if g.subject != nil {
		s, err := g.subject(r)
		if err != nil {
			return gatehouse.Answer{}, &Error{StatusCode: http.StatusUnauthorized, Code: CodeUnauthorized,
				Message: "Authentication required.", Err: err}
		}
		req.Subject, who = s, "s:"+s.String()
	} else {
		// Without a token Gatehouse answers 401, in the caller's language.
		token := bearerToken(r)
		if token != "" {
			who = "t:" + token
		}
		opts = append(opts, WithToken(token))
	}
	c := g.c.With(opts...)
	key := cacheKey{who: who, tenant: req.Tenant, lang: lang}
	cacheable := who != "" && req.Args == nil
	if cacheable {
		if a, ok := g.cache.get(key); ok {
			return a, nil
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.timeout)
	defer cancel()
	a, err := c.Check(ctx, req)
	if err != nil {
		return gatehouse.Answer{}, err
	}
	if cacheable {
		g.cache.put(key, a)
	}
	return a, nil
}

// bearerToken is r's bearer token, "" without one.
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// guardBody is the JSON of the guard's answers, Gatehouse's error shape.
type guardBody struct {
	Error guardDetail `json:"error"`
}

type guardDetail struct {
	Code    string           `json:"code"`
	Reason  gatehouse.Reason `json:"reason,omitempty"`
	Message string           `json:"message"`
	Plan    string           `json:"plan,omitempty"`
	Feature string           `json:"feature,omitempty"`
	// Limit names the limit an agent action exceeded, with its figures.
	Limit *gatehouse.LimitExceeded `json:"limit,omitempty"`
}

// writeDeny answers a denied request 403 (seed 001's guard).
func writeDeny(w http.ResponseWriter, a *gatehouse.Answer) {
	writeJSON(w, http.StatusForbidden, guardBody{Error: guardDetail{
		Code: CodeForbidden, Reason: a.Reason, Message: a.Message, Plan: a.Plan, Feature: a.Feature, Limit: a.Limit}})
}

// writeError is the default error handler: 401 for a caller Gatehouse
// refused, with its message; 503 for everything else.
func (g *guard) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeUnauthorized {
		g.logger.DebugContext(r.Context(), "gatehouse refused the caller", "path", r.URL.Path, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		writeJSON(w, http.StatusUnauthorized, guardBody{Error: guardDetail{Code: CodeUnauthorized, Message: e.Message}})
		return
	}
	g.logger.WarnContext(r.Context(), "gatehouse check failed; request refused",
		"method", r.Method, "path", r.URL.Path, "permission", g.permission, "tool", g.tool, "err", err)
	writeJSON(w, http.StatusServiceUnavailable, guardBody{Error: guardDetail{
		Code: gatehouse.CodeUnavailable, Message: "The permission service is unavailable; please try again."}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// The status is sent; a failed write leaves nothing to report to.
	_ = enc.Encode(v)
}

// cacheKey identifies a cached answer: who asked ("t:" and the token, or
// "s:" and the subject), where and in which language.
type cacheKey struct {
	who, tenant, lang string
}

// decisionCache is a bounded LRU of answers that expire after ttl. A nil
// cache caches nothing.
type decisionCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time

	mu    sync.Mutex
	items map[cacheKey]*list.Element
	lru   *list.List // front: most recently used
}

type cacheEntry struct {
	key     cacheKey
	answer  gatehouse.Answer
	expires time.Time
}

func (c *decisionCache) get(k cacheKey) (gatehouse.Answer, bool) {
	if c == nil {
		return gatehouse.Answer{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return gatehouse.Answer{}, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.items, k)
		return gatehouse.Answer{}, false
	}
	c.lru.MoveToFront(el)
	return e.answer, true
}

func (c *decisionCache) put(k cacheKey, a gatehouse.Answer) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	expires := c.now().Add(c.ttl)
	if el, ok := c.items[k]; ok {
		e := el.Value.(*cacheEntry)
		e.answer, e.expires = a, expires
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.items, oldest.Value.(*cacheEntry).key)
	}
	c.items[k] = c.lru.PushFront(&cacheEntry{key: k, answer: a, expires: expires})
}
