package http_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

// The OpenID AuthZEN 1.0 certification scenario
// (shared/standards/authzen-1_0-certification-scenario.md), every test ID of
// its Test ID Matrix, against the real server: a TLS listener, the shared
// token mode interop harnesses use, and the fixture of section C.1 applied
// as the ordinary policy examples/authzen-certification/policy.yaml.

const (
	certPolicy = "../examples/authzen-certification/policy.yaml"
	certToken  = "certification-harness-token"
)

// certServer is the PDP under test and a client that trusts it.
type certServer struct {
	url    string
	client *http.Client
}

func newCertServer(t *testing.T) *certServer {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := gatehttp.WriteSelfSignedCert(certFile, keyFile, []string{"127.0.0.1", "localhost"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	svc, _ := newService(t, certPolicy)
	cfg := testConfig(t)
	cfg.Addr = "127.0.0.1:0"
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	cfg.AuthZENAuth = gatehttp.AuthToken
	cfg.AuthZENTokens = []string{certToken}
	srv := gatehttp.NewServer(svc, cfg)
	if err := srv.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	t.Cleanup(client.CloseIdleConnections)
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("server URL %s is not https", srv.URL())
	}
	return &certServer{url: srv.URL(), client: client}
}

// certResponse is a response with its body decoded as generic JSON.
type certResponse struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// send POSTs body as the harness does: JSON, the shared token, and the
// given headers (a header with an empty value is removed).
func (c *certServer) send(t *testing.T, method, path, body string, header map[string]string) certResponse {
	t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+certToken)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := certResponse{status: res.StatusCode, header: res.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: response is not a JSON object: %v: %s", method, path, err, raw)
	}
	return r
}

// certCase is one test of the scenario; check, if set, inspects a response
// that already has the expected status and a JSON content type.
type certCase struct {
	id     string
	path   string
	body   string
	header map[string]string
	status int
	check  func(t *testing.T, r certResponse)
}

const (
	evaluationPath  = "/access/v1/evaluation"
	evaluationsPath = "/access/v1/evaluations"
	subjectPath     = "/access/v1/search/subject"
	resourcePath    = "/access/v1/search/resource"
	actionPath      = "/access/v1/search/action"
)

// decisionIs wants a single decision; a response context must be an object.
func decisionIs(want bool) func(*testing.T, certResponse) {
	return func(t *testing.T, r certResponse) {
		t.Helper()
		d, ok := r.body["decision"].(bool)
		if !ok || d != want {
			t.Errorf("decision = %v, want %t: %s", r.body["decision"], want, r.raw)
		}
		if c, present := r.body["context"]; present {
			if _, ok := c.(map[string]any); !ok {
				t.Errorf("context is not an object: %s", r.raw)
			}
		}
	}
}

// batchIs wants an evaluations array of len(want) decisions; a nil entry
// checks only that the decision is a boolean. The top-level decision is
// omitted (C.3.3.4).
func batchIs(want ...*bool) func(*testing.T, certResponse) {
	return func(t *testing.T, r certResponse) {
		t.Helper()
		evals, ok := r.body["evaluations"].([]any)
		if !ok || len(evals) != len(want) {
			t.Fatalf("evaluations = %v, want %d decisions: %s", r.body["evaluations"], len(want), r.raw)
		}
		if _, present := r.body["decision"]; present {
			t.Errorf("a batch response has a top-level decision: %s", r.raw)
		}
		for i, e := range evals {
			obj, _ := e.(map[string]any)
			d, isBool := obj["decision"].(bool)
			switch {
			case !isBool:
				t.Errorf("evaluations[%d] has no boolean decision: %s", i, r.raw)
			case want[i] != nil && d != *want[i]:
				t.Errorf("evaluations[%d].decision = %t, want %t: %s", i, d, *want[i], r.raw)
			}
		}
	}
}

var (
	yes = new(true)
	no  = new(false)
)

// results returns the results array, checking that it is one and that
// page, if present, is an object with a string next_token.
func results(t *testing.T, r certResponse) []map[string]any {
	t.Helper()
	arr, ok := r.body["results"].([]any)
	if !ok {
		t.Fatalf("results is not an array: %s", r.raw)
	}
	if page, present := r.body["page"]; present {
		p, ok := page.(map[string]any)
		if !ok {
			t.Fatalf("page is not an object: %s", r.raw)
		}
		if tok, present := p["next_token"]; present {
			if _, ok := tok.(string); !ok {
				t.Errorf("page.next_token is not a string: %s", r.raw)
			}
		}
	}
	out := make([]map[string]any, len(arr))
	for i, e := range arr {
		if out[i], ok = e.(map[string]any); !ok {
			t.Fatalf("results[%d] is not an object: %s", i, r.raw)
		}
	}
	return out
}

// entitiesInclude wants results of type typ, each with an id, including ids.
func entitiesInclude(typ string, ids ...string) func(*testing.T, certResponse) {
	return func(t *testing.T, r certResponse) {
		t.Helper()
		var got []string
		for i, e := range results(t, r) {
			gotType, _ := e["type"].(string)
			id, _ := e["id"].(string)
			if gotType != typ || id == "" {
				t.Errorf("results[%d] = %v, want type %q and an id", i, e, typ)
			}
			got = append(got, id)
		}
		for _, id := range ids {
			if !slices.Contains(got, id) {
				t.Errorf("results %v lack %q: %s", got, id, r.raw)
			}
		}
	}
}

// actionsInclude wants action results, each with a name, including names.
func actionsInclude(names ...string) func(*testing.T, certResponse) {
	return func(t *testing.T, r certResponse) {
		t.Helper()
		var got []string
		for i, e := range results(t, r) {
			name, _ := e["name"].(string)
			if name == "" {
				t.Errorf("results[%d] = %v has no name", i, e)
			}
			got = append(got, name)
		}
		for _, n := range names {
			if !slices.Contains(got, n) {
				t.Errorf("results %v lack %q: %s", got, n, r.raw)
			}
		}
	}
}

func emptyResults(t *testing.T, r certResponse) {
	t.Helper()
	if res := results(t, r); len(res) != 0 {
		t.Errorf("results = %v, want none", res)
	}
}

const (
	aliceRead1 = `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}`
	s1         = `{"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}`
	ctxTimeIP  = `"context": {"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"}`
)

func certCases() []certCase {
	bad := func(id, path, body string) certCase {
		return certCase{id: id, path: path, body: body, status: http.StatusBadRequest}
	}
	ok := func(id, path, body string, check func(*testing.T, certResponse)) certCase {
		return certCase{id: id, path: path, body: body, status: http.StatusOK, check: check}
	}
	return []certCase{
		// Basic Core.
		ok("C.2.2.1", evaluationPath, aliceRead1, decisionIs(true)),
		ok("C.2.2.2", evaluationPath, `{"subject": {"type": "user", "id": "bob"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}}`, decisionIs(false)),
		ok("C.2.2.3", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, `+ctxTimeIP+`}`, decisionIs(true)),
		ok("C.2.2.8", evaluationPath, `{"subject": {"type": "user", "id": "alice", "properties": {"department": "Sales", "role": "manager"}},
			"action": {"name": "read", "properties": {"method": "GET"}},
			"resource": {"type": "record", "id": "record-1", "properties": {"status": "active", "owner": "bob"}}}`, decisionIs(true)),
		ok("C.2.2.9", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"},
			"foo": "bar", "futureField": {"nested": true}}`, decisionIs(true)),
		ok("C.2.3", evaluationPath, aliceRead1, decisionIs(true)),
		bad("C.2.4.1/missing-subject", evaluationPath, `{"action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}`),
		bad("C.2.4.1/missing-action", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}}`),
		bad("C.2.4.1/missing-resource", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}}`),
		bad("C.2.4.2/subject-type", evaluationPath, `{"subject": {"id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}`),
		bad("C.2.4.2/subject-id", evaluationPath, `{"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}`),
		bad("C.2.4.2/action-name", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {}, "resource": {"type": "record", "id": "record-1"}}`),
		bad("C.2.4.2/resource-type", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"id": "record-1"}}`),
		bad("C.2.4.2/resource-id", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record"}}`),
		{id: "C.2.4.3", path: evaluationPath, body: aliceRead1, header: map[string]string{"Content-Type": "text/plain"}, status: http.StatusBadRequest},
		{id: "C.2.4.3/absent", path: evaluationPath, body: aliceRead1, header: map[string]string{"Content-Type": ""}, status: http.StatusBadRequest},
		bad("C.2.4.4", evaluationPath, `{"subject": {"type": "user", "id": "alice"`),
		bad("C.2.4.5", evaluationPath, ``),
		bad("C.2.4.6/subject-string", evaluationPath, `{"subject": "alice", "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}`),
		bad("C.2.4.6/action-name-number", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": 123}, "resource": {"type": "record", "id": "record-1"}}`),
		{id: "C.2.5.1", path: evaluationPath, body: aliceRead1, header: map[string]string{"X-Request-ID": "cert-req-42"}, status: http.StatusOK,
			check: func(t *testing.T, r certResponse) {
				if got := r.header.Get("X-Request-ID"); got != "cert-req-42" {
					t.Errorf("X-Request-ID = %q, want the request's", got)
				}
			}},
		{id: "C.2.5.2", path: evaluationPath, body: aliceRead1, header: map[string]string{"X-Request-ID": ""}, status: http.StatusOK, check: decisionIs(true)},

		// Basic Properties.
		ok("C.2.2.4", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
			"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}`, decisionIs(false)),
		ok("C.2.2.5", evaluationPath, `{"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}, "action": {"name": "write"},
			"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}`, decisionIs(true)),
		ok("C.2.2.6", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "delete", "properties": {"soft": true}},
			"resource": {"type": "record", "id": "record-1"}}`, decisionIs(true)),
		ok("C.2.2.7", evaluationPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "delete", "properties": {"soft": false}},
			"resource": {"type": "record", "id": "record-1"}}`, decisionIs(false)),

		// Batch Core.
		ok("C.3.2.1", evaluationsPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
			"evaluations": [{"resource": {"type": "record", "id": "record-1"}}, {"resource": {"type": "record", "id": "record-2"}}]}`, batchIs(yes, nil)),
		ok("C.3.2.2", evaluationsPath, `{"subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "record-1"},
			"evaluations": [{"action": {"name": "read"}}, {"action": {"name": "write"}}]}`, batchIs(yes, no)),
		ok("C.3.2.5", evaluationsPath, `{"evaluations": [
			{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}},
			{"subject": {"type": "user", "id": "bob"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}}]}`, batchIs(yes, no)),
		ok("C.3.2.6", evaluationsPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "context": {"time": "2025-06-27T18:03-07:00"},
			"evaluations": [{"resource": {"type": "record", "id": "record-1"}},
				{"resource": {"type": "record", "id": "record-2"}, "context": {"time": "2025-06-27T19:00-07:00", "source": "batch-override"}}]}`, batchIs(nil, nil)),
		ok("C.3.3", evaluationsPath, `{"subject": {"type": "user", "id": "alice"}, "evaluations": [
			{"action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}},
			{"action": {"name": "delete", "properties": {"soft": false}}, "resource": {"type": "record", "id": "record-1"}},
			{"action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}},
			{"action": {"name": "write"}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}]}`, batchIs(yes, no, yes, no)),
		ok("C.3.4.1", evaluationsPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "options": {"evaluations_semantic": "execute_all"},
			"evaluations": [{"resource": {"type": "record", "id": "record-1"}}, {}]}`, batchIs(yes, no)),
		ok("C.3.4.2", evaluationsPath, aliceRead1, decisionIs(true)),
		ok("C.3.4.3", evaluationsPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, "evaluations": []}`, decisionIs(true)),

		// Batch Properties.
		ok("C.3.2.3", evaluationsPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"}, "evaluations": [
			{"resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}}},
			{"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}]}`, batchIs(yes, no)),
		ok("C.3.2.4", evaluationsPath, `{"action": {"name": "write"}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}},
			"evaluations": [{"subject": {"type": "user", "id": "alice"}}, {"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}}]}`, batchIs(no, yes)),
		ok("C.3.2.7", evaluationsPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
			"resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}},
			"evaluations": [{}, {"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}]}`, batchIs(yes, no)),

		// Search Core.
		ok("C.4.2.1", subjectPath, s1, entitiesInclude("user", "alice", "bob")),
		ok("C.4.2.2", subjectPath, `{"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, `+ctxTimeIP+`}`,
			entitiesInclude("user", "alice", "bob")),
		ok("C.4.2.3", subjectPath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}`,
			entitiesInclude("user", "alice", "bob")),
		ok("C.4.3.1", resourcePath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record"}}`,
			entitiesInclude("record", "record-1")),
		ok("C.4.3.2", resourcePath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record"}, `+ctxTimeIP+`}`,
			entitiesInclude("record", "record-1")),
		ok("C.4.3.3", resourcePath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}`,
			entitiesInclude("record", "record-1", "record-2")),
		ok("C.4.4.1", actionPath, `{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}}`, actionsInclude("read", "write")),
		ok("C.4.4.2", actionPath, `{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}, `+ctxTimeIP+`}`, actionsInclude("read", "write")),
		ok("C.4.6.1", actionPath, `{"subject": {"type": "user", "id": "nonexistent-user"}, "resource": {"type": "record", "id": "record-1"}}`, emptyResults),
		ok("C.4.6.1/subject-search", subjectPath, `{"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "no-such-record"}}`, emptyResults),
		ok("C.4.6.1/resource-search", resourcePath, `{"subject": {"type": "user", "id": "nonexistent-user"}, "action": {"name": "read"}, "resource": {"type": "record"}}`, emptyResults),
		ok("C.4.6.2", subjectPath, `{"subject": {"type": "spaceship"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}`, emptyResults),
		ok("C.4.6.2/resource-search", resourcePath, `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "spaceship"}}`, emptyResults),
		ok("C.4.6.2/action-search", actionPath, `{"subject": {"type": "spaceship", "id": "enterprise"}, "resource": {"type": "record", "id": "record-1"}}`, emptyResults),
		bad("C.4.7.1/subject-search", subjectPath, `{"subject": {"type": "user"}, "resource": {"type": "record", "id": "record-1"}}`),
		bad("C.4.7.1/resource-search", resourcePath, `{"action": {"name": "read"}, "resource": {"type": "record"}}`),
		bad("C.4.7.1/action-search", actionPath, `{"subject": {"type": "user", "id": "alice"}}`),
		bad("C.4.7.2/subject-search", subjectPath, `{"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record"}}`),
		bad("C.4.7.2/resource-search", resourcePath, `{"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record"}}`),
		bad("C.4.7.2/action-search", actionPath, `{"subject": {"type": "user"}, "resource": {"type": "record", "id": "record-1"}}`),

		// Search Properties.
		ok("C.4.2.4", subjectPath, `{"subject": {"type": "user"}, "action": {"name": "write"},
			"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}`, entitiesInclude("user", "bob")),
		ok("C.4.3.4", resourcePath, `{"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}, "action": {"name": "write"}, "resource": {"type": "record"}}`,
			entitiesInclude("record", "record-2")),
		ok("C.4.4.3", actionPath, `{"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
			"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}`, actionsInclude("write")),
	}
}

func TestAuthZENCertification(t *testing.T) {
	t.Parallel()
	c := newCertServer(t)
	for _, tc := range certCases() {
		t.Run(tc.id, func(t *testing.T) {
			r := c.send(t, http.MethodPost, tc.path, tc.body, tc.header)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			// C.5: every response, success or error, is JSON.
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if r.header.Get("X-Request-ID") == "" {
				t.Error("no X-Request-ID in the response")
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	// C.2.6: the same fixture request, repeated, decides the same.
	t.Run("C.2.6", func(t *testing.T) {
		for range 5 {
			decisionIs(true)(t, c.send(t, http.MethodPost, evaluationPath, aliceRead1, nil))
		}
	})

	// C.4.5: a page of one, then the rest by its token, which the harness
	// sends without the limit.
	t.Run("C.4.5", func(t *testing.T) {
		var seen []string
		body := `{"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 1}}`
		for range 10 {
			r := c.send(t, http.MethodPost, subjectPath, body, nil)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			res := results(t, r)
			page, _ := r.body["page"].(map[string]any)
			next, isString := page["next_token"].(string)
			if !isString || len(res) > 1 {
				t.Fatalf("page %v with %d results, want a next_token and at most 1 result", page, len(res))
			}
			for _, e := range res {
				seen = append(seen, e["id"].(string))
			}
			if next == "" {
				break
			}
			body = `{"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, "page": {"token": "` + next + `"}}`
		}
		if !slices.Equal(seen, []string{"alice", "bob"}) {
			t.Errorf("pages gave %v, want alice then bob", seen)
		}
	})

	// C.6: discovery at the root and behind a tenant-style path prefix.
	t.Run("C.6", func(t *testing.T) {
		r := c.send(t, http.MethodGet, "/.well-known/authzen-configuration", "", nil)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("metadata: %d %q", r.status, r.header.Get("Content-Type"))
		}
		if r.body["policy_decision_point"] != c.url {
			t.Errorf("policy_decision_point = %v, want the base URL %s", r.body["policy_decision_point"], c.url)
		}
		for _, key := range []string{"access_evaluation_endpoint", "access_evaluations_endpoint",
			"search_subject_endpoint", "search_resource_endpoint", "search_action_endpoint"} {
			s, _ := r.body[key].(string)
			if u, err := url.Parse(s); err != nil || u.Scheme != "https" || !strings.HasPrefix(s, c.url+"/access/v1/") {
				t.Errorf("%s = %q, want an https URL under %s", key, s, c.url)
			}
		}
		// Every advertised endpoint answers the fixture.
		eval, _ := r.body["access_evaluation_endpoint"].(string)
		decisionIs(true)(t, c.send(t, http.MethodPost, strings.TrimPrefix(eval, c.url), aliceRead1, nil))
	})
}
