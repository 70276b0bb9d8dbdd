package http_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strconv"
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
	t.Parallel()
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
			c["email_verified"] = true
			return c
		}()), http.StatusOK},
		{"email fallback without email_verified", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, func() jwt.MapClaims {
			c := with("sub", "00u1abc")
			c["email"] = "sara@acme.example"
			return c
		}()), http.StatusUnauthorized},
		{"email fallback with email_verified false", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, func() jwt.MapClaims {
			c := with("sub", "00u1abc")
			c["email"] = "sara@acme.example"
			c["email_verified"] = false
			return c
		}()), http.StatusUnauthorized},
		{"issued in the future", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("iat", now.Add(time.Hour).Unix())), http.StatusUnauthorized},
		{"issued within the leeway", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("iat", now.Add(10*time.Second).Unix())), http.StatusOK},
		{"exp as a string", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("exp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))), http.StatusUnauthorized},
		{"nbf as a string", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("nbf", strconv.FormatInt(now.Unix(), 10))), http.StatusUnauthorized},
		{"iat as a string", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("iat", strconv.FormatInt(now.Unix(), 10))), http.StatusUnauthorized},
		{"iat as a bool", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with("iat", true)), http.StatusUnauthorized},
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
	t.Parallel()
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
	t.Parallel()
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

// TestLookAlikeEmails: a correctly signed token naming a look-alike of the
// superuser's email is refused, never folded into admin@example.com.
func TestLookAlikeEmails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	secret := []byte(testSecret)
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name   string
		claims jwt.MapClaims
		status int
	}{
		{"the superuser", jwt.MapClaims{"sub": "user:admin@example.com", "exp": exp}, http.StatusOK},
		{"the superuser in upper case", jwt.MapClaims{"sub": "user:ADMIN@Example.COM", "exp": exp}, http.StatusOK},
		{"dotted capital I in sub", jwt.MapClaims{"sub": "user:adm\u0130n@example.com", "exp": exp}, http.StatusUnauthorized},
		{"dotted capital I in a verified email", jwt.MapClaims{"sub": "00u1", "email": "ADM\u0130N@example.com", "email_verified": true, "exp": exp}, http.StatusUnauthorized},
		{"Cyrillic a", jwt.MapClaims{"sub": "user:\u0430dmin@example.com", "exp": exp}, http.StatusUnauthorized},
		{"bare email with a Kelvin sign", jwt.MapClaims{"sub": "\u212aarl@acme.example", "exp": exp}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		r := f.do(call{method: http.MethodGet, path: "/api/v1/policy", token: sign(t, jwt.SigningMethodHS256, secret, tt.claims)})
		if r.status != tt.status {
			t.Errorf("%s: GET /api/v1/policy %d, want %d: %.200s", tt.name, r.status, tt.status, r.body)
		}
	}
}
