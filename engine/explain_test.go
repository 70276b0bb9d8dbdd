package engine_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/golden"
)

// TestExplainPath checks the paths humans read for the common grants.
func TestExplainPath(t *testing.T) {
	s := compileTest(t)
	tests := []struct {
		req  *gatehouse.Request
		want []string
	}{
		{
			&gatehouse.Request{Subject: user("gus@example.org"), Permission: "use_ai_loan_tool"},
			[]string{"role Agent Supervisor (global)", "bundle Use Loan Analysis Tool", "permission use_ai_loan_tool"},
		},
		{
			&gatehouse.Request{Subject: user("sara@acme.example"), Permission: "orders.refund", Tenant: "acme-berlin"},
			[]string{"role Store Support (tenant acme-berlin)", "permission orders.refund"},
		},
		{
			&gatehouse.Request{Subject: user("ursula@example.org"), Permission: "use_ai_fraud_detection"},
			[]string{"grant use_ai_fraud_detection (global)"},
		},
		{
			&gatehouse.Request{Subject: user("carl@acme.example"), Permission: "export_report", Tenant: "acme-berlin", Context: ctx("report_kind", "daily")},
			[]string{`grant export_report (tenant acme-berlin, condition context.report_kind == "daily")`},
		},
	}
	for _, tc := range tests {
		e := s.Explain(tc.req)
		var got []string
		for _, st := range e.Steps {
			if st.Rule == "permission" && st.Outcome == "pass" {
				got = st.Path
			}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Explain(%s) permission path mismatch (-want +got):\n%s", reqString(tc.req), diff)
		}
	}
}

// TestExplainGolden compares whole explanations with testdata/explain.golden;
// run with -update after an intended change.
func TestExplainGolden(t *testing.T) {
	s := compileTest(t)
	reqs := []struct {
		name string
		req  *gatehouse.Request
	}{
		{"scoped role via bundle", &gatehouse.Request{Subject: user("sara@acme.example"), Permission: "use_ai_loan_tool", Tenant: "acme-berlin"}},
		{"condition false", &gatehouse.Request{Subject: user("carl@acme.example"), Permission: "export_report", Tenant: "acme-berlin", Context: ctx("report_kind", "weekly")}},
		{"condition error", &gatehouse.Request{Subject: user("carl@acme.example"), Permission: "export_report", Tenant: "acme-berlin"}},
		{"plan required", &gatehouse.Request{Subject: user("gina@globex.example"), Permission: "use_ai_fraud_detection", Tenant: "globex-rome"}},
		{"not visible", &gatehouse.Request{Subject: user("olga@acme.example"), Permission: "orders.refund", Tenant: "acme-berlin"}},
		{"agent for superuser", &gatehouse.Request{Subject: agent("support-bot"), OnBehalfOf: user("admin@example.com"), Permission: "orders.refund", Tenant: "acme-berlin"}},
		{"agent denied for user", &gatehouse.Request{Subject: agent("support-bot"), OnBehalfOf: user("sara@acme.example"), Permission: "use_ai_loan_tool", Tenant: "acme-berlin"}},
		{"unknown tenant", &gatehouse.Request{Subject: user("sara@acme.example"), Permission: "chat.view", Tenant: "nowhere"}},
		{"invalid", &gatehouse.Request{Subject: gatehouse.SubjectRef{Type: "robot", ID: "r2"}, Permission: "chat.view"}},
	}
	type entry struct {
		Name        string                `json:"name"`
		Explanation gatehouse.Explanation `json:"explanation"`
	}
	var entries []entry
	for _, r := range reqs {
		entries = append(entries, entry{r.name, s.Explain(r.req)})
	}
	got, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden.Check(t, filepath.Join("testdata", "explain.golden"), string(got))
}
