package http_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return tok
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, examplePolicy, func(c *gatehttp.Config) {
		c.JWTIssuer = "https://idp.example.com"
		c.JWTAudience = "gatehouse"
	})
	secret := []byte(testSecret)
	now := time.Now()
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "user:sara@acme.example", "iss": "https://idp.example.com", "aud": "gatehouse",
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	}
	with := func(key string, value any) jwt.MapClaims {
		c := valid()
		if value == nil {
			delete(c, key)
		} else {
			c[key] = value
		}
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid())
	tests := []struct {
		name   string
		header string
		status int
	}{
		{"valid", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, valid()), http.StatusOK},
		{"lower-case scheme", "bearer " + sign(t, jwt.SigningMethodHS256, secret, valid()), http.StatusOK},
		{"opaque sub without email", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("sub", "00u1abc")), http.StatusUnauthorized},
		{"email fallback", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, func() jwt.MapClaims {
			c := with("sub", "00u1abc")
			c["email"] = "Sara@Acme.Example"
			return c
		}()), http.StatusOK},
		{"expiry within the leeway", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("exp", now.Add(-10*time.Second).Unix())), http.StatusOK},
		{"no token", "", http.StatusUnauthorized},
		{"basic auth", "Basic c2FyYTpwYXNz", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"garbage", "Bearer not.a.jwt", http.StatusUnauthorized},
		{"expired", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("exp", now.Add(-time.Hour).Unix())), http.StatusUnauthorized},
		{"no expiry", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("exp", nil)), http.StatusUnauthorized},
		{"not yet valid", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("nbf", now.Add(time.Hour).Unix())), http.StatusUnauthorized},
		{"wrong secret", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 40)), valid()), http.StatusUnauthorized},
		{"alg none", "Bearer " + none, http.StatusUnauthorized},
		{"HS512", "Bearer " + sign(t, jwt.SigningMethodHS512, secret, valid()), http.StatusUnauthorized},
		{"RS256", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, valid()), http.StatusUnauthorized},
		{"wrong audience", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("aud", "someone-else")), http.StatusUnauthorized},
		{"no audience", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("aud", nil)), http.StatusUnauthorized},
		{"wrong issuer", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("iss", "https://evil.example.com")), http.StatusUnauthorized},
		{"subject of unknown type", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("sub", "robot:r2")), http.StatusUnauthorized},
	}
	const body = `{"subject": {"type": "user", "id": "sara@acme.example"}, "action": {"name": "chat.view"}, "resource": {"type": "chat", "id": "1"}}`
	for _, tt := range tests {
		for _, path := range []string{"/access/v1/evaluation", "/api/v1/check"} {
			c := call{path: path, body: body, header: map[string]string{}}
			if path == "/api/v1/check" {
				c.body = `{"permission": "chat.view"}`
			}
			if tt.header != "" {
				c.header["Authorization"] = tt.header
			}
			r := f.do(c)
			if r.status != tt.status {
				t.Errorf("%s: %s status %d, want %d: %s", tt.name, path, r.status, tt.status, r.body)
				continue
			}
			if tt.status != http.StatusUnauthorized {
				continue
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("%s: %s WWW-Authenticate %q, want Bearer", tt.name, path, got)
			}
			if e := decodeInto[errorBody](t, r); e.Error.Code != gatehttp.CodeUnauthorized || e.Error.Message == "" {
				t.Errorf("%s: %s error %+v, want code unauthorized with a message", tt.name, path, e.Error)
			}
		}
	}
}

// With --authzen-auth=none the AuthZEN endpoints are open; the native API
// still needs a token.
func TestAuthZENWithoutAuthentication(t *testing.T) {
	f := newFixture(t, examplePolicy, func(c *gatehttp.Config) { c.AuthZENAuth = gatehttp.AuthNone })
	r := f.do(call{path: "/access/v1/evaluation", body: `{"subject": {"type": "user", "id": "sara@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme"}}`})
	if d := decodeInto[decision](t, r); r.status != http.StatusOK || !d.Decision {
		t.Errorf("open evaluation = %d %s, want 200 and an allow", r.status, r.body)
	}
	if r := f.do(call{path: "/api/v1/check", body: `{"permission": "chat.view"}`}); r.status != http.StatusUnauthorized {
		t.Errorf("check without a token = %d, want 401", r.status)
	}
}

func TestIssueTokenAndConfig(t *testing.T) {
	cfg := testConfig(t)
	if _, err := gatehttp.IssueToken(cfg, "robot:x", time.Hour); err == nil {
		t.Error("IssueToken(robot:x) succeeded, want an error")
	}
	cfg.JWTSecret = []byte("short")
	if _, err := gatehttp.IssueToken(cfg, "user:a@b.c", time.Hour); err == nil {
		t.Error("IssueToken with a short secret succeeded, want an error")
	}
	tests := []struct {
		name   string
		modify func(*gatehttp.Config)
		ok     bool
	}{
		{"valid", func(*gatehttp.Config) {}, true},
		{"short secret", func(c *gatehttp.Config) { c.JWTSecret = []byte("0123456789") }, false},
		{"no secret", func(c *gatehttp.Config) { c.JWTSecret = nil }, false},
		{"bad authzen auth", func(c *gatehttp.Config) { c.AuthZENAuth = "open" }, false},
		{"no authzen auth", func(c *gatehttp.Config) { c.AuthZENAuth = "" }, false},
		{"zero body limit", func(c *gatehttp.Config) { c.MaxBodyBytes = 0 }, false},
		{"zero batch limit", func(c *gatehttp.Config) { c.MaxEvaluations = 0 }, false},
		{"zero timeout", func(c *gatehttp.Config) { c.ReadTimeout = 0 }, false},
		{"no address", func(c *gatehttp.Config) { c.Addr = "" }, false},
		{"no catalog", func(c *gatehttp.Config) { c.Catalog = nil }, false},
		{"no logger", func(c *gatehttp.Config) { c.Logger = nil }, false},
		{"https base URL", func(c *gatehttp.Config) { c.BaseURL = "https://pdp.example.com" }, true},
		{"base URL with query", func(c *gatehttp.Config) { c.BaseURL = "https://pdp.example.com?x=1" }, false},
		{"relative base URL", func(c *gatehttp.Config) { c.BaseURL = "/pdp" }, false},
		{"ftp base URL", func(c *gatehttp.Config) { c.BaseURL = "ftp://pdp.example.com" }, false},
	}
	for _, tt := range tests {
		c := testConfig(t)
		tt.modify(&c)
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%s) = %v, want ok %t", tt.name, err, tt.ok)
		}
	}
}
