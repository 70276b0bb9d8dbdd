package engine_test

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// FuzzCheck: no request makes Check, CheckTool or Explain panic or fail
// internally, and Explain always agrees with Check.
func FuzzCheck(f *testing.F) {
	f.Add("user", "sara@acme.example", "", "", "use_ai_loan_tool", "acme-berlin", "daily")
	f.Add("user", " SARA@Acme.Example ", "", "", "orders.refund", "acme", "")
	f.Add("agent", "support-bot", "user", "carl@acme.example", "orders.refund", "acme-berlin", "")
	f.Add("user", "carl@acme.example", "", "", "export_report", "acme-berlin", "weekly")
	f.Add("user", "admin@example.com", "agent", "x", "", " ", "")
	f.Add("robot", "\xff\xfe", "user", "\u212a@example.org", "chat.view", "nowhere", "\x00")
	s := compileTest(f)
	f.Fuzz(func(t *testing.T, typ, id, oboType, oboID, perm, tenant, kind string) {
		req := &gatehouse.Request{
			Subject:    gatehouse.SubjectRef{Type: gatehouse.SubjectType(typ), ID: id},
			OnBehalfOf: gatehouse.SubjectRef{Type: gatehouse.SubjectType(oboType), ID: oboID},
			Permission: perm,
			Tenant:     tenant,
			Context:    map[string]any{"report_kind": kind, "amount": len(kind)},
			Resource:   gatehouse.Resource{Properties: map[string]any{"ownerID": id}},
		}
		d := s.Check(req)
		if !slices.Contains(gatehouse.Reasons, d.Reason) || d.Reason == gatehouse.ReasonInternalError {
			t.Fatalf("Check(%s) = %+v", reqString(req), d)
		}
		if d.Version != testVersion {
			t.Fatalf("Check(%s).Version = %d, want %d", reqString(req), d.Version, testVersion)
		}
		if e := s.Explain(req); e.Decision != d {
			t.Fatalf("Explain(%s).Decision = %+v, Check = %+v", reqString(req), e.Decision, d)
		}
		if dt := s.CheckTool(req, perm); dt.Reason == gatehouse.ReasonInternalError {
			t.Fatalf("CheckTool(%s, %q) = internal_error", reqString(req), perm)
		}
	})
}
