package http_test

import (
	"encoding/json"
	"net/http"
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

// Every decision lands in the audit trail, through the asynchronous log.
func TestDecisionLogging(t *testing.T) {
	svc, store := newService(t, examplePolicy)
	log := svc.DecisionLog(service.DecisionLogConfig{Flush: 5 * time.Millisecond})
	cfg := testConfig(t)
	cfg.Decisions = log
	f := &fixture{t: t, cfg: cfg, store: store, cat: cfg.Catalog}
	f.url = newListener(t, gatehttp.NewServer(svc, cfg).Handler())
	tok := f.token("user:sara@acme.example")
	f.do(call{path: "/access/v1/evaluation", token: tok, body: saraLoan, header: map[string]string{"X-Request-ID": "req-1"}})
	f.do(call{path: "/access/v1/evaluations", token: tok, body: `{"subject": {"type": "user", "id": "sara@acme.example"}, "resource": {"type": "tenant", "id": "acme"},
		"evaluations": [{"action": {"name": "analyze_loan"}}, {"action": {"name": "manage_ai_tools"}}]}`})
	f.do(call{path: "/api/v1/check", token: tok, body: `{"tool": "detect_fraud", "tenant": "acme"}`})
	if err := log.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	events, err := store.ListAudit(t.Context(), gatehouse.AuditFilter{Action: "decision"})
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
