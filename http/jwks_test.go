package http_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

// jwksServer serves a JSON Web Key Set that a test can rotate.
type jwksServer struct {
	mu    sync.Mutex
	keys  []map[string]string
	hits  int
	url   string
	close func()
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.hits++
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": j.keys})
	}))
	t.Cleanup(ts.Close)
	j.url = ts.URL
	return j
}

func (j *jwksServer) set(keys ...map[string]string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = keys
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk describes a public key as a JWK with kid and alg.
func jwk(kid string, pub any) map[string]string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		return map[string]string{"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256",
			"x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32)))}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": b64(k)}
	}
	panic("unknown key type")
}

func signKID(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Tokens signed by an identity provider's keys, found by kid in its JWKS,
// with the key set rotated while the server runs.
func TestJWKS(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp := newJWKSServer(t)
	idp.set(jwk("rsa-1", &rsaKey.PublicKey), jwk("ec-1", &ecKey.PublicKey), jwk("ed-1", edPub))
	f := newFixture(t, examplePolicy, func(c *gatehttp.Config) {
		c.JWKSURL = idp.url
		c.JWKSMinRefresh = time.Millisecond
		c.JWTAudience = "gatehouse"
	})
	now := time.Now()
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "user:sara@acme.example", "aud": "gatehouse", "exp": now.Add(time.Hour).Unix()}
	}
	expired := claims()
	expired["exp"] = now.Add(-time.Hour).Unix()
	wrongAud := claims()
	wrongAud["aud"] = "someone-else"
	rsaPEM := rsaKey.PublicKey.N.Bytes()
	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"RS256", signKID(t, jwt.SigningMethodRS256, "rsa-1", rsaKey, claims()), http.StatusOK},
		{"ES256", signKID(t, jwt.SigningMethodES256, "ec-1", ecKey, claims()), http.StatusOK},
		{"EdDSA", signKID(t, jwt.SigningMethodEdDSA, "ed-1", edKey, claims()), http.StatusOK},
		{"HS256 with the shared secret still works", signKID(t, jwt.SigningMethodHS256, "", []byte(testSecret), claims()), http.StatusOK},
		{"expired", signKID(t, jwt.SigningMethodRS256, "rsa-1", rsaKey, expired), http.StatusUnauthorized},
		{"wrong audience", signKID(t, jwt.SigningMethodES256, "ec-1", ecKey, wrongAud), http.StatusUnauthorized},
		{"no kid", signKID(t, jwt.SigningMethodRS256, "", rsaKey, claims()), http.StatusUnauthorized},
		{"unknown kid", signKID(t, jwt.SigningMethodRS256, "rsa-9", rsaKey, claims()), http.StatusUnauthorized},
		{"kid of another key type", signKID(t, jwt.SigningMethodRS256, "ec-1", rsaKey, claims()), http.StatusUnauthorized},
		{"HS256 keyed with the RSA public key (key confusion)", signKID(t, jwt.SigningMethodHS256, "rsa-1", rsaPEM, claims()), http.StatusUnauthorized},
		{"RS384 is not accepted", signKID(t, jwt.SigningMethodRS384, "rsa-1", rsaKey, claims()), http.StatusUnauthorized},
		{"alg none", signKID(t, jwt.SigningMethodNone, "rsa-1", jwt.UnsafeAllowNoneSignatureType, claims()), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		r := f.do(call{method: http.MethodGet, path: "/api/v1/me/effective?tenant=acme", token: tt.token})
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
		}
	}

	// Rotation: the provider replaces rsa-1 by rsa-2. A token naming the new
	// kid makes the server refetch the set; the retired key stops working.
	rsa2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp.set(jwk("rsa-2", &rsa2.PublicKey))
	// The refetch is rate-limited (JWKSMinRefresh, 1 ms here): on a busy
	// machine the first try may still fall inside the window.
	rotated := signKID(t, jwt.SigningMethodRS256, "rsa-2", rsa2, claims())
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := f.do(call{method: http.MethodGet, path: "/api/v1/me/effective", token: rotated})
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a token of the rotated-in key: %d %s", r.status, r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/me/effective", token: signKID(t, jwt.SigningMethodRS256, "rsa-1", rsaKey, claims())}); r.status != http.StatusUnauthorized {
		t.Errorf("a token of the retired key: %d", r.status)
	}
}

// A JWKS that cannot be fetched fails closed: 401, never an allow.
func TestJWKSUnreachable(t *testing.T) {
	t.Parallel()
	idp := newJWKSServer(t)
	url := idp.url
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, examplePolicy, func(c *gatehttp.Config) {
		c.JWTSecret = nil
		c.JWKSURL = url + "/nowhere-then-closed"
	})
	tok := signKID(t, jwt.SigningMethodRS256, "rsa-1", rsaKey, jwt.MapClaims{"sub": "user:sara@acme.example", "exp": time.Now().Add(time.Hour).Unix()})
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/me/effective", token: tok}); r.status != http.StatusUnauthorized {
		t.Errorf("unreachable JWKS: %d", r.status)
	}
	// Without a secret, HS256 tokens are not accepted at all.
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/me/effective", token: signKID(t, jwt.SigningMethodHS256, "", []byte(testSecret),
		jwt.MapClaims{"sub": "user:sara@acme.example", "exp": time.Now().Add(time.Hour).Unix()})}); r.status != http.StatusUnauthorized {
		t.Errorf("HS256 without a secret: %d", r.status)
	}
}
