// Package client is a Go client for the Gatehouse HTTP API: AuthZEN 1.0
// evaluations and searches, the native /api/v1 check, explain and
// effective permissions, and the administration endpoints. RequirePermission
// and RequireTool wrap other services' HTTP handlers in a Gatehouse check.
//
// The client reuses the domain types of package gatehouse (reason codes,
// Answer, Effective, Role, AuditEvent, …), holds no global state, passes a
// context to every call, and retries only idempotent GET requests, on 503
// and connection errors, with a bounded backoff. Errors the server reports
// are *Error values that errors.Is matches against the gatehouse sentinel
// errors (ErrNotFound, ErrInvalid, …).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Default retry policy of idempotent requests (see WithRetries).
const (
	DefaultRetries = 2
	DefaultBackoff = 50 * time.Millisecond
	// MaxBackoff bounds a single wait between attempts, Retry-After included.
	MaxBackoff = 2 * time.Second
)

// DefaultTimeout bounds one request of the default HTTP client.
const DefaultTimeout = 10 * time.Second

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// TokenSource returns the bearer token of the next request; "" sends none.
// It is called once per attempt, so it may refresh an expiring token.
type TokenSource func(ctx context.Context) (string, error)

// Client calls one Gatehouse server. It is safe for concurrent use; With
// derives a client with other credentials or language that shares the
// connection pool.
type Client struct {
	base      string
	hc        *http.Client
	token     TokenSource
	lang      string
	userAgent string
	retries   int
	backoff   time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithToken authenticates every request with a static bearer token: a JWT
// for /api/v1 and, depending on the server's --authzen-auth, a JWT or a
// shared token for AuthZEN. "" sends no Authorization header.
func WithToken(token string) Option {
	return func(c *Client) {
		c.token = func(context.Context) (string, error) { return token, nil }
	}
}

// WithTokenSource authenticates every request with the token src returns.
func WithTokenSource(src TokenSource) Option {
	return func(c *Client) { c.token = src }
}

// WithHTTPClient sends requests through hc instead of the default client
// (a pooled transport and a DefaultTimeout per request).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithLanguage sends Accept-Language: messages and reasons come back in the
// language it picks among de, en, es, fr, it and zh.
func WithLanguage(acceptLanguage string) Option {
	return func(c *Client) { c.lang = acceptLanguage }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithRetries sets how often a GET request is retried after a 503 or a
// connection error (0: never) and the first wait between attempts, which
// doubles each time with jitter, up to MaxBackoff. POST, PUT and DELETE
// requests are never retried.
func WithRetries(retries int, backoff time.Duration) Option {
	return func(c *Client) { c.retries, c.backoff = max(retries, 0), max(backoff, 0) }
}

// New returns a client of the Gatehouse server at baseURL, the server's
// root such as http://127.0.0.1:8080. A malformed URL is gatehouse.ErrInvalid.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, gatehouse.Invalidf("client: base URL %q: want an absolute http(s) URL without query", baseURL)
	}
	c := &Client{
		base:      strings.TrimSuffix(u.String(), "/"),
		hc:        &http.Client{Transport: newTransport(), Timeout: DefaultTimeout},
		token:     func(context.Context) (string, error) { return "", nil },
		userAgent: "gatehouse-go-client",
		retries:   DefaultRetries,
		backoff:   DefaultBackoff,
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.hc == nil || c.token == nil {
		return nil, gatehouse.Invalidf("client: nil HTTP client or token source")
	}
	return c, nil
}

// newTransport is the default transport with more idle connections: a
// middleware asks concurrently for many requests, and the default of 2 idle
// connections per host would close and reopen connections under load.
func newTransport() http.RoundTripper {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	tr = tr.Clone()
	tr.MaxIdleConnsPerHost = 100
	return tr
}

// With returns a copy of c with opts applied, sharing c's HTTP client: for
// example c.With(WithToken(callerToken), WithLanguage(r.Header.Get("Accept-Language"))).
func (c *Client) With(opts ...Option) *Client {
	d := *c
	for _, opt := range opts {
		opt(&d)
	}
	return &d
}

// request is one API call: the method, the path below the base URL (its
// segments already escaped), the query, and a JSON or raw body.
type request struct {
	method      string
	path        string
	query       url.Values
	body        any
	rawBody     []byte
	contentType string
}

// call sends req and decodes a 2xx JSON answer into out (nil discards it;
// a *[]byte receives the raw body). A GET is retried on 503 and connection
// errors; any other failure is returned at once.
func (c *Client) call(ctx context.Context, req request, out any) error {
	body := req.rawBody
	if req.body != nil {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return fmt.Errorf("gatehouse: encode %s %s: %w", req.method, req.path, err)
		}
		req.contentType = "application/json"
	}
	attempts := 1
	if req.method == http.MethodGet {
		attempts += c.retries
	}
	for attempt := 1; ; attempt++ {
		wait, err := c.send(ctx, req, body, out)
		if err == nil || attempt == attempts || wait < 0 {
			return err
		}
		t := time.NewTimer(c.delay(attempt, wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("gatehouse: %s %s: %w (after %v)", req.method, req.path, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// delay is the wait before attempt+1: the server's Retry-After if it sent
// one, else backoff·2^(attempt-1) with jitter; never more than MaxBackoff.
func (c *Client) delay(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, MaxBackoff)
	}
	d := min(c.backoff<<(attempt-1), MaxBackoff)
	if d <= 0 {
		return 0
	}
	// Half fixed, half random: callers that failed together spread out.
	return d/2 + rand.N(d/2+1)
}

// send makes one attempt. wait is negative when the error must not be
// retried, else the server's Retry-After (0 without one).
func (c *Client) send(ctx context.Context, req request, body []byte, out any) (wait time.Duration, err error) {
	u := c.base + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, rd)
	if err != nil {
		return -1, fmt.Errorf("gatehouse: %s %s: %w", req.method, req.path, err)
	}
	hr.Header.Set("Accept", "application/json")
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	if c.userAgent != "" {
		hr.Header.Set("User-Agent", c.userAgent)
	}
	if c.lang != "" {
		hr.Header.Set("Accept-Language", c.lang)
	}
	token, err := c.token(ctx)
	if err != nil {
		return -1, fmt.Errorf("gatehouse: %s %s: token: %w", req.method, req.path, err)
	}
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return -1, fmt.Errorf("gatehouse: %s %s: %w", req.method, req.path, ctx.Err())
		}
		return 0, &Error{Code: gatehouse.CodeUnavailable, Message: "Gatehouse cannot be reached.",
			Err: fmt.Errorf("%s %s: %w", req.method, req.path, err)}
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		e := readError(res)
		if res.StatusCode != http.StatusServiceUnavailable {
			return -1, e
		}
		return retryAfter(res.Header.Get("Retry-After")), e
	}
	if raw, ok := out.(*[]byte); ok {
		if *raw, err = io.ReadAll(res.Body); err != nil {
			return -1, fmt.Errorf("gatehouse: read %s %s: %w", req.method, req.path, err)
		}
		return 0, nil
	}
	if out == nil {
		_, err = io.Copy(io.Discard, res.Body)
	} else {
		err = json.NewDecoder(res.Body).Decode(out)
	}
	if err != nil {
		return -1, fmt.Errorf("gatehouse: decode %s %s: %w", req.method, req.path, err)
	}
	return 0, nil
}

// retryAfter reads a Retry-After of whole seconds; 0 when absent or an HTTP date.
func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// pathEscape escapes each segment of a path below the base URL.
func pathEscape(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}
