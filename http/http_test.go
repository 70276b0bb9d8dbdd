package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

const (
	examplePolicy = "../examples/ai-assistant/policy.yaml"
	specPolicy    = "testdata/spec.yaml"
	testSecret    = "0123456789abcdef0123456789abcdef-test"
)

// fixture is a server on a real listener over a store holding one policy
// file: in memory (newFixture) or a SQLite file (faultFixture).
type fixture struct {
	t     testing.TB
	url   string
	cfg   gatehttp.Config
	store gatehouse.Store
	svc   *service.Service
	cat   *locale.Catalog
}

func newService(t testing.TB, policyFile string) (*service.Service, *memstore.Store) {
	t.Helper()
	ctx := context.Background()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	svc, err := service.Open(ctx, store, service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.ParseFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(ctx, "test", doc, false); err != nil {
		t.Fatal(err)
	}
	return svc, store
}

func testConfig(t testing.TB) gatehttp.Config {
	t.Helper()
	cat, err := locale.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := gatehttp.DefaultConfig()
	cfg.JWTSecret = []byte(testSecret)
	cfg.Catalog = cat
	return cfg
}

// newFixture serves policyFile; configure, if not nil, adjusts the config.
func newFixture(t *testing.T, policyFile string, configure func(*gatehttp.Config)) *fixture {
	t.Helper()
	svc, store := newService(t, policyFile)
	cfg := testConfig(t)
	if configure != nil {
		configure(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	url := newListener(t, gatehttp.NewServer(svc, cfg).Handler())
	return &fixture{t: t, url: url, cfg: cfg, store: store, svc: svc, cat: cfg.Catalog}
}

// pep returns an API key with the authzen and check scopes: a policy
// enforcement point's credential, which may ask about any subject.
func (f *fixture) pep() string {
	f.t.Helper()
	// A key names a subject of the policy; any will do, the scope decides.
	users, _, err := f.svc.ObjectsOf(context.Background(), gatehouse.KindUser)
	if err != nil || len(users) == 0 {
		f.t.Fatalf("a user for the PEP key: %v (%d users)", err, len(users))
	}
	tok, _, err := f.svc.IssueAPIKey(context.Background(), "test", "pep", gatehouse.User(users[0].ID),
		[]string{gatehouse.ScopeAuthZEN, gatehouse.ScopeCheck}, time.Hour)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// token returns a valid bearer token for subject.
func (f *fixture) token(subject string) string {
	f.t.Helper()
	tok, err := gatehttp.IssueToken(f.cfg, subject, time.Hour)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// call is one HTTP request to the fixture.
type call struct {
	method, path string
	token        string
	body         string
	header       map[string]string
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends c; a POST or a body defaults to Content-Type application/json.
func (f *fixture) do(c call) response {
	f.t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, f.url+c.path, strings.NewReader(c.body))
	if err != nil {
		f.t.Fatal(err)
	}
	if method == http.MethodPost || c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, c.path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

// decision is an AuthZEN decision as clients read it.
type decision struct {
	Decision bool `json:"decision"`
	Context  struct {
		Reason        string `json:"reason"`
		Message       string `json:"message"`
		Version       int64  `json:"version"`
		Plan          string `json:"plan"`
		Feature       string `json:"feature"`
		DeniedSubject string `json:"denied_subject"`
		DeniedPerm    string `json:"denied_permission"`
		Action        string `json:"action"`
		Limit         *struct {
			Limit, Max, Requested, Used, Window, Currency string
		} `json:"limit"`
		Confirmation *struct {
			Method   string `json:"method"`
			Endpoint string `json:"endpoint"`
		} `json:"confirmation"`
		Problem string `json:"problem"`
	} `json:"context"`
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
		Field   string `json:"field"`
	} `json:"error"`
}

func decodeInto[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

func localeArgs(subject, permission, tenant string) locale.Args {
	return locale.Args{Subject: subject, Permission: permission, Tenant: tenant}
}

// newListener serves h on a loopback listener and returns its URL.
func newListener(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}
