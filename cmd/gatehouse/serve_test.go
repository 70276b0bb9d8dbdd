package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

// syncBuffer is an output the server's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a long-running command (serve, demo) started in-process.
type running struct {
	m              *Main
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan error
	stopped        bool
}

func start(t *testing.T, db string, args ...string) *running {
	t.Helper()
	env := map[string]string{"GATEHOUSE_DB": db, "USER": "tester", "LANG": "C"}
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	r.m = NewMain(func(k string) string { return env[k] }, strings.NewReader(""), r.stdout, r.stderr)
	if err := r.m.ParseFlags(args); err != nil {
		t.Fatalf("gatehouse %s: %v", strings.Join(args, " "), err)
	}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() { r.done <- r.m.Run(ctx) }()
	t.Cleanup(func() {
		if !r.stopped {
			r.stop(t)
		}
	})
	return r
}

// waitFor polls stdout until it contains s, failing if the command ends or
// ten seconds pass first.
func (r *running) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tick := time.NewTicker(5 * time.Millisecond); ; <-tick.C {
		if out := r.stdout.String(); strings.Contains(out, s) {
			tick.Stop()
			return out
		}
		select {
		case err := <-r.done:
			r.stopped = true
			t.Fatalf("the command ended before printing %q: %v\nstdout:\n%s\nstderr:\n%s", s, err, r.stdout, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q after 10s\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

// stop interrupts the command as SIGINT would and returns what Run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	r.stopped = true
	var err error
	select {
	case err = <-r.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the command did not stop within 15s of its context ending")
	}
	if cerr := r.m.Close(); err == nil {
		err = cerr
	}
	return err
}

// eventually polls fn until it returns "" or five seconds pass.
func eventually(t *testing.T, what string, fn func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for tick := time.NewTicker(10 * time.Millisecond); ; <-tick.C {
		problem := fn()
		if problem == "" {
			tick.Stop()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 5s", what, problem)
		}
	}
}

func post(t *testing.T, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

const serveSecret = "a-serve-test-secret-of-at-least-32-bytes"

func TestServe(t *testing.T) {
	db := newDB(t)
	t.Setenv("GATEHOUSE_JWT_SECRET", serveSecret)
	r := start(t, db, "serve", "--addr", "127.0.0.1:0", "--reload-interval", "20ms")
	out := r.waitFor(t, "serving http://")
	base := regexp.MustCompile(`serving (http://\S+)`).FindStringSubmatch(out)[1]

	cfg := gatehttp.DefaultConfig()
	cfg.JWTSecret = []byte(serveSecret)
	tok, err := gatehttp.IssueToken(cfg, "user:carl@acme.example", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	reason := func() string {
		status, body := post(t, base+"/api/v1/check", tok, `{"tool": "analyze_loan", "tenant": "acme-berlin"}`)
		var c struct{ Reason string }
		if err := json.Unmarshal(body, &c); err != nil || status != http.StatusOK {
			t.Fatalf("check = %d %s", status, body)
		}
		return c.Reason
	}
	if got := reason(); got != "permission_missing" {
		t.Fatalf("carl's check = %s, want permission_missing", got)
	}
	// The web UI's sign-in page is at /, with no demo users to offer.
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || res.Request.URL.Path != "/signin" || strings.Contains(string(page), `name="demo"`) {
		t.Errorf("GET / = %d at %s (%v), want the sign-in page without demo users", res.StatusCode, res.Request.URL, err)
	}
	// A change made by another process reaches the running server.
	if res := run(t, db, "user", "promote", "carl@acme.example"); res.code != 0 {
		t.Fatalf("promote: %d %s", res.code, res.stderr)
	}
	eventually(t, "the promotion reaching the server", func() string {
		if got := reason(); got != "superuser" {
			return got
		}
		return ""
	})

	addr := strings.TrimPrefix(base, "http://")
	if err := r.stop(t); err != nil {
		t.Fatalf("serve returned %v after an interrupt", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the server still accepts connections after stopping")
	}
	for _, want := range []string{"policy reloaded", "http request", "shutting down"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, r.stderr)
		}
	}
}

// serve --tls-cert/--tls-key serves HTTPS; --authzen-auth=token lets the
// AuthZEN endpoints take the shared tokens, from flags or the environment.
func TestServeTLSAndSharedToken(t *testing.T) {
	db := newDB(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := gatehttp.WriteSelfSignedCert(cert, key, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	t.Cleanup(client.CloseIdleConnections)
	t.Setenv("GATEHOUSE_JWT_SECRET", serveSecret)
	t.Setenv("GATEHOUSE_AUTHZEN_TOKENS", "from-the-environment-1, from-the-environment-2")
	for _, tc := range []struct {
		name  string
		flags []string
		good  []string
	}{
		{"flags", []string{"--authzen-token", "first-shared-token", "--authzen-token", "second-shared-token"}, []string{"first-shared-token", "second-shared-token"}},
		{"environment", nil, []string{"from-the-environment-1", "from-the-environment-2"}},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--authzen-auth", "token"}, tc.flags...)
		r := start(t, db, args...)
		base := regexp.MustCompile(`serving (https://\S+)`).FindStringSubmatch(r.waitFor(t, "serving https://"))[1]
		eval := func(token string) int {
			req, err := http.NewRequest(http.MethodPost, base+"/access/v1/evaluation", strings.NewReader(
				`{"subject": {"type": "user", "id": "sara@acme.example"}, "action": {"name": "analyze_loan"}, "resource": {"type": "tenant", "id": "acme"}}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		for _, tok := range tc.good {
			if got := eval(tok); got != http.StatusOK {
				t.Errorf("%s: token %q = %d, want 200", tc.name, tok, got)
			}
		}
		if got := eval("not-one-of-the-tokens"); got != http.StatusUnauthorized {
			t.Errorf("%s: a wrong token = %d, want 401", tc.name, got)
		}
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServeUsageErrors(t *testing.T) {
	db := newDB(t)
	t.Setenv("GATEHOUSE_JWT_SECRET", "")
	t.Setenv("GATEHOUSE_AUTHZEN_TOKENS", "")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no secret", []string{"serve"}, "--jwt-secret"},
		{"short secret", []string{"serve", "--jwt-secret", "short"}, "want at least 32"},
		{"bad authzen auth", []string{"serve", "--jwt-secret", serveSecret, "--authzen-auth", "open"}, "AuthZEN authentication"},
		{"bad base URL", []string{"serve", "--jwt-secret", serveSecret, "--base-url", "pdp.example.com"}, "base URL"},
		{"zero reload interval", []string{"serve", "--jwt-secret", serveSecret, "--reload-interval", "0s"}, "--reload-interval"},
		{"busy address", []string{"serve", "--jwt-secret", serveSecret, "--addr", busy.Addr().String()}, "already in use"},
		{"unused port syntax", []string{"serve", "--jwt-secret", serveSecret, "--addr", "127.0.0.1:http-alt-nope"}, "listen on"},
		{"token mode without tokens", []string{"serve", "--jwt-secret", serveSecret, "--authzen-auth", "token"}, "needs at least one token"},
		{"short shared token", []string{"serve", "--jwt-secret", serveSecret, "--authzen-auth", "token", "--authzen-token", "short"}, "at least 16"},
		{"JWKS URL not a URL", []string{"serve", "--jwks-url", "idp.example.com/keys"}, "JWKS URL"},
		{"negative rate limit", []string{"serve", "--jwt-secret", serveSecret, "--rate-limit", "-1"}, "rate limit"},
		{"certificate without key", []string{"serve", "--jwt-secret", serveSecret, "--tls-cert", "cert.pem"}, "both a certificate and a key"},
		{"missing certificate", []string{"serve", "--jwt-secret", serveSecret, "--tls-cert", "nope.pem", "--tls-key", "nope.key"}, "TLS certificate"},
	}
	for _, tt := range tests {
		res := run(t, db, tt.args...)
		if res.code == 0 || !strings.Contains(res.stderr, tt.stderr) {
			t.Errorf("%s: exit %d, stderr %q, want a failure naming %q", tt.name, res.code, res.stderr, tt.stderr)
		}
	}
}
