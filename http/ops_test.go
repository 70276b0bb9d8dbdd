package http_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/service"
)

// metricValue returns the value of the sample line starting with name (and
// its labels) in a Prometheus text exposition, or -1.
func metricValue(body, name string) float64 {
	for line := range strings.SplitSeq(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	tok := f.token("user:sara@acme.example")
	for range 3 {
		f.do(call{path: "/access/v1/evaluation", token: tok, body: saraLoan})
	}
	f.do(call{path: "/api/v1/check", token: f.token("user:carl@acme.example"), body: `{"tool": "analyze_loan", "tenant": "acme-berlin"}`})
	f.do(call{method: http.MethodGet, path: "/no/such/path"})
	r := f.do(call{method: http.MethodGet, path: "/metrics"})
	body := string(r.body)
	for _, tc := range []struct {
		sample string
		want   float64
	}{
		{`gatehouse_decisions_total{endpoint="evaluation",reason="granted"}`, 3},
		{`gatehouse_decisions_total{endpoint="check",reason="permission_missing"}`, 1},
		{`gatehouse_decision_duration_seconds_count{endpoint="evaluation"}`, 3},
		{`gatehouse_http_requests_total{code="200",route="POST /access/v1/evaluation"}`, 3},
		{`gatehouse_http_requests_total{code="404",route="/"}`, 1},
		{`gatehouse_policy_version`, 1},
	} {
		if got := metricValue(body, tc.sample); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.sample, got, tc.want)
		}
	}
	if age := metricValue(body, "gatehouse_policy_snapshot_age_seconds"); age < 0 || age > 60 {
		t.Errorf("snapshot age %v", age)
	}
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("/metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, func(c *gatehttp.Config) {
		c.RateLimit = 0.5 // one token every two seconds: the test never refills
		c.RateBurst = 3
	})
	sara, carl := f.token("user:sara@acme.example"), f.token("user:carl@acme.example")
	for i := range 3 {
		if r := f.do(call{path: "/access/v1/evaluation", token: sara, body: saraLoan}); r.status != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i+1, r.status)
		}
	}
	r := f.do(call{path: "/access/v1/evaluation", token: sara, body: saraLoan})
	e := decodeInto[errorBody](t, r)
	if retry, err := strconv.Atoi(r.header.Get("Retry-After")); r.status != http.StatusTooManyRequests || e.Error.Code != gatehttp.CodeRateLimited || err != nil || retry < 1 || retry > 2 {
		t.Errorf("over the limit: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Another credential has its own bucket; probes are never limited.
	if r := f.do(call{path: "/access/v1/evaluation", token: carl, body: strings.Replace(saraLoan, "sara@", "carl@", 1)}); r.status != http.StatusOK {
		t.Errorf("another caller: %d", r.status)
	}
	for range 5 {
		if r := f.do(call{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
			t.Fatalf("healthz limited: %d", r.status)
		}
	}
	if got := metricValue(string(f.do(call{method: http.MethodGet, path: "/metrics"}).body), "gatehouse_http_rate_limited_total"); got != 1 {
		t.Errorf("rate limited counter = %v, want 1", got)
	}
}

// One verified caller has one bucket however its credential is spelled:
// the scheme's case, spaces, or another token of the same subject.
func TestRateLimitByIdentity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, func(c *gatehttp.Config) {
		c.RateLimit = 0.1 // never refills within the test
		c.RateBurst = 5
	})
	sara := f.token("user:sara@acme.example")
	other, err := gatehttp.IssueToken(f.cfg, "user:sara@acme.example", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	spellings := []string{"Bearer " + sara, "bearer " + sara, "BEARER " + sara, "Bearer   " + sara + "  ", "Bearer " + other}
	for _, auth := range spellings {
		if r := f.do(call{path: "/access/v1/evaluation", header: map[string]string{"Authorization": auth}, body: saraLoan}); r.status != http.StatusOK {
			t.Fatalf("%q within the burst: %d %s", auth, r.status, r.body)
		}
	}
	for _, auth := range spellings {
		r := f.do(call{path: "/access/v1/evaluation", header: map[string]string{"Authorization": auth}, body: saraLoan})
		if e := decodeInto[errorBody](t, r); r.status != http.StatusTooManyRequests || e.Error.Code != gatehttp.CodeRateLimited {
			t.Errorf("%q over the limit: %d %s", auth, r.status, r.body)
		}
	}
}

// Credentials that fail verification are counted per client address before
// they reach the verifier; a client behind a trusted proxy is counted by its
// forwarded address, and X-Forwarded-For from anyone else is ignored.
func TestRateLimitFailedAttempts(t *testing.T) {
	t.Parallel()
	limited := func(c *gatehttp.Config) { c.RateLimit = 0.1; c.RateBurst = 3 }
	garbage := func(f *fixture, n int, header map[string]string) (unauthorized, limited int) {
		for i := range n {
			h := map[string]string{"Authorization": fmt.Sprintf("Bearer garbage-%d", i)}
			maps.Copy(h, header)
			switch r := f.do(call{path: "/api/v1/check", header: h, body: `{"tool": "analyze_loan"}`}); r.status {
			case http.StatusUnauthorized:
				unauthorized++
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Fatalf("garbage token: %d %s", r.status, r.body)
			}
		}
		return unauthorized, limited
	}
	direct := newFixture(t, examplePolicy, limited)
	if u, l := garbage(direct, 200, map[string]string{"X-Forwarded-For": "203.0.113.7"}); u != 3 || l != 197 {
		t.Errorf("200 garbage tokens from one address: %d reached the verifier, %d refused, want 3 and 197", u, l)
	}
	// The address is refused before verification, a good token too …
	if r := direct.do(call{path: "/api/v1/check", token: direct.token("user:sara@acme.example"), body: `{"tool": "analyze_loan", "tenant": "acme"}`}); r.status != http.StatusTooManyRequests {
		t.Errorf("a good token from the exhausted address: %d", r.status)
	}
	// … but unauthenticated probes are not.
	if r := direct.do(call{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
		t.Errorf("healthz: %d", r.status)
	}

	proxied := newFixture(t, examplePolicy, func(c *gatehttp.Config) {
		limited(c)
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	for _, client := range []string{"203.0.113.7", "203.0.113.8", "198.51.100.1, 203.0.113.9"} {
		if u, l := garbage(proxied, 5, map[string]string{"X-Forwarded-For": client}); u != 3 || l != 2 {
			t.Errorf("5 garbage tokens via the proxy for %s: %d verified, %d refused, want 3 and 2", client, u, l)
		}
	}
	// A client cannot pick its address by writing X-Forwarded-For itself:
	// the proxy appends the address it saw, and that one counts.
	if u, l := garbage(proxied, 5, map[string]string{"X-Forwarded-For": "192.0.2.1, 203.0.113.7"}); u != 0 || l != 5 {
		t.Errorf("a forged hop before 203.0.113.7: %d verified, %d refused, want 0 and 5", u, l)
	}
}

// decisionLogFixture is a server on the example policy whose decisions go
// to the audit trail through the asynchronous log, which the caller closes
// to flush it.
func decisionLogFixture(t *testing.T) (*fixture, *service.DecisionLog) {
	t.Helper()
	svc, store := newService(t, examplePolicy)
	log := svc.DecisionLog(service.DecisionLogConfig{Flush: 5 * time.Millisecond})
	cfg := testConfig(t)
	cfg.Decisions = log
	f := &fixture{t: t, cfg: cfg, store: store, cat: cfg.Catalog}
	f.url = newListener(t, gatehttp.NewServer(svc, cfg).Handler())
	return f, log
}

// Every decision lands in the audit trail, through the asynchronous log.
func TestDecisionLogging(t *testing.T) {
	t.Parallel()
	f, log := decisionLogFixture(t)
	tok := f.token("user:sara@acme.example")
	f.do(call{path: "/access/v1/evaluation", token: tok, body: saraLoan, header: map[string]string{"X-Request-ID": "req-1"}})
	f.do(call{path: "/access/v1/evaluations", token: tok, body: `{"subject": {"type": "user", "id": "sara@acme.example"}, "resource": {"type": "tenant", "id": "acme"},
		"evaluations": [{"action": {"name": "analyze_loan"}}, {"action": {"name": "manage_ai_tools"}}]}`})
	f.do(call{path: "/api/v1/check", token: tok, body: `{"tool": "detect_fraud", "tenant": "acme"}`})
	if err := log.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	events, err := f.store.ListAudit(t.Context(), gatehouse.AuditFilter{Action: "decision"})
	if err != nil {
		t.Fatal(err)
	}
	type detail struct {
		Endpoint  string `json:"endpoint"`
		Subject   string `json:"subject"`
		Action    string `json:"action"`
		Tool      string `json:"tool"`
		Tenant    string `json:"tenant"`
		Allowed   bool   `json:"allowed"`
		Reason    string `json:"reason"`
		Version   int64  `json:"version"`
		RequestID string `json:"request_id"`
	}
	var got []detail
	for _, e := range events {
		var d detail
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if e.Actor != "user:sara@acme.example" || e.Target != d.Subject || d.Version != 1 || d.RequestID == "" {
			t.Errorf("event %+v / %+v", e, d)
		}
		got = append(got, d)
	}
	want := []struct {
		endpoint, action, reason string
		allowed                  bool
	}{
		{"evaluation", "analyze_loan", "granted", true},
		{"evaluations", "analyze_loan", "granted", true},
		{"evaluations", "manage_ai_tools", "permission_missing", false},
		{"check", "", "granted", true},
	}
	if len(got) != len(want) {
		t.Fatalf("%d decisions recorded, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Endpoint != w.endpoint || got[i].Action != w.action || got[i].Reason != w.reason || got[i].Allowed != w.allowed {
			t.Errorf("decision %d = %+v, want %+v", i, got[i], w)
		}
	}
	if got[0].RequestID != "req-1" || got[3].Tool != "detect_fraud" || got[0].Tenant != "acme" {
		t.Errorf("details: %+v", got)
	}
	if log.Written() != 4 || log.Dropped() != 0 || log.Failed() != 0 {
		t.Errorf("written %d dropped %d failed %d", log.Written(), log.Dropped(), log.Failed())
	}
}

// GET /api/v1/audit keeps the decisions or the changes, and the decisions
// with one reason code.
func TestAuditKindAndReason(t *testing.T) {
	t.Parallel()
	f, log := decisionLogFixture(t)
	tok := f.token("user:sara@acme.example")
	f.do(call{path: "/access/v1/evaluations", token: tok, body: `{"subject": {"type": "user", "id": "sara@acme.example"}, "resource": {"type": "tenant", "id": "acme"},
		"evaluations": [{"action": {"name": "analyze_loan"}}, {"action": {"name": "manage_ai_tools"}}]}`})
	if err := log.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	admin := f.token("user:admin@example.com")
	type page struct {
		Events []struct {
			Action string          `json:"action"`
			Detail json.RawMessage `json:"detail"`
		} `json:"events"`
	}
	get := func(query string) page {
		t.Helper()
		r := f.do(call{method: http.MethodGet, path: "/api/v1/audit?" + query, token: admin})
		if r.status != http.StatusOK {
			t.Fatalf("audit?%s: %d %s", query, r.status, r.body)
		}
		var p page
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	all := get("")
	changes := get("kind=change")
	decisions := get("kind=decision")
	if len(decisions.Events) != 2 || len(changes.Events) == 0 || len(changes.Events)+len(decisions.Events) != len(all.Events) {
		t.Errorf("%d events: %d decisions, %d changes; want 2 decisions and the rest changes", len(all.Events), len(decisions.Events), len(changes.Events))
	}
	for _, e := range changes.Events {
		if e.Action == "decision" {
			t.Errorf("kind=change has a decision")
		}
	}
	denied := get("kind=decision&reason=permission_missing")
	if len(denied.Events) != 1 || !strings.Contains(string(denied.Events[0].Detail), `"action":"manage_ai_tools"`) {
		t.Errorf("reason=permission_missing = %+v, want the manage_ai_tools decision", denied.Events)
	}
	if p := get("reason=permission_missing&actor=user:bo@example.com"); len(p.Events) != 0 {
		t.Errorf("reason and another actor = %d events, want none", len(p.Events))
	}
	if p := get("kind=change&reason=granted"); len(p.Events) != 0 {
		t.Errorf("changes with a reason = %d events, want none", len(p.Events))
	}
	r := f.do(call{method: http.MethodGet, path: "/api/v1/audit?kind=decisions", token: admin})
	var e struct{ Error struct{ Code string } }
	if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusBadRequest || e.Error.Code != "invalid" {
		t.Errorf("kind=decisions: %d %s, want 400 invalid", r.status, r.body)
	}
}
