package engine_test

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

// randomRequests draws requests from the ids of testPolicy plus unknown,
// blank and oddly cased ones, with contexts that make conditions true, false
// or fail.
func randomRequests(rng *rand.Rand, n int) []*gatehouse.Request {
	p := testPolicy()
	var subjects []gatehouse.SubjectRef
	for _, u := range p.Users {
		subjects = append(subjects, user(u.Email))
	}
	for _, a := range p.Agents {
		subjects = append(subjects, agent(a.ID))
	}
	subjects = append(subjects, user("GHOST@example.com"), agent("ghost"), user(""), gatehouse.SubjectRef{Type: "robot", ID: "x"},
		user(" SARA@acme.example "), gatehouse.SubjectRef{})
	var perms []string
	for _, pm := range p.Permissions {
		perms = append(perms, pm.Name)
	}
	perms = append(perms, "no.such", "", " chat.view")
	tenants := []string{"", "", "nowhere", " "}
	for _, tn := range p.Tenants {
		tenants = append(tenants, tn.ID)
	}
	contexts := []map[string]any{nil, {"report_kind": "daily", "amount": 3}, {"report_kind": "weekly", "amount": 300.5}, {"amount": "lots"}}
	resources := []map[string]any{nil, {"ownerID": "carl@acme.example"}, {"ownerID": 42}}
	pick := func(n int) int { return rng.IntN(n) }
	out := make([]*gatehouse.Request, n)
	for i := range out {
		r := &gatehouse.Request{
			Subject:    subjects[pick(len(subjects))],
			Permission: perms[pick(len(perms))],
			Tenant:     tenants[pick(len(tenants))],
			Context:    contexts[pick(len(contexts))],
			Resource:   gatehouse.Resource{Properties: resources[pick(len(resources))]},
		}
		if pick(3) == 0 {
			r.OnBehalfOf = subjects[pick(len(subjects))]
		}
		if pick(4) == 0 {
			r.SubjectProperties = map[string]any{"tier": "gold", "team": "support"}
		}
		out[i] = r
	}
	return out
}

// TestExplainMatchesCheck: Explain and Check decide alike on random requests.
func TestExplainMatchesCheck(t *testing.T) {
	s := compileTest(t)
	tools := []string{"analyze_loan", "detect_fraud", "refund", "generate_report", "chat", "no_such", ""}
	rng := rand.New(rand.NewPCG(1, 2))
	reasons := make(map[gatehouse.Reason]int)
	for _, req := range randomRequests(rng, 5000) {
		d := s.Check(req)
		reasons[d.Reason]++
		if d.Reason == gatehouse.ReasonInternalError {
			t.Errorf("Check(%s) = internal_error", reqString(req))
		}
		e := s.Explain(req)
		if e.Decision != d {
			t.Errorf("Explain(%s).Decision = %+v, Check = %+v", reqString(req), e.Decision, d)
		}
		if len(e.Steps) == 0 {
			t.Errorf("Explain(%s) has no steps", reqString(req))
		}
		tool := tools[rng.IntN(len(tools))]
		if et, dt := s.ExplainTool(req, tool), s.CheckTool(req, tool); et.Decision != dt {
			t.Errorf("ExplainTool(%s, %q).Decision = %+v, CheckTool = %+v", reqString(req), tool, et.Decision, dt)
		}
	}
	// The random mix must reach every reason the engine gives.
	for _, r := range []gatehouse.Reason{granted, superuser, invalid, unknownSub, unknownTen, unknownPer, notVisible, missing, condFailed, planReq} {
		if reasons[r] == 0 {
			t.Errorf("no random request was decided %s; got %v", r, reasons)
		}
	}
}

// TestHolderSwap: readers Check while a writer swaps snapshots (run with -race).
func TestHolderSwap(t *testing.T) {
	var h engine.Holder
	if h.Load() != nil {
		t.Fatal("zero Holder.Load() != nil")
	}
	// A nil snapshot from an empty holder denies.
	if d := h.Load().Check(&gatehouse.Request{Subject: user("sara@acme.example"), Permission: "chat.view"}); d.Reason != gatehouse.ReasonInternalError {
		t.Errorf("empty Holder: Check = %s, want internal_error", d.Reason)
	}
	snaps := make([]*engine.Snapshot, 4)
	for i := range snaps {
		p := testPolicy()
		if i%2 == 1 {
			// Even versions revoke sara's global chat role.
			p.Users[1].Roles = p.Users[1].Roles[:2]
		}
		s, err := engine.Compile(p, int64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		snaps[i] = s
	}
	h.Store(snaps[0])
	req := &gatehouse.Request{Subject: user("sara@acme.example"), Permission: "chat.view"}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				d := h.Load().Check(req)
				// Each decision must be consistent with the version that made it.
				if wantAllowed := d.Version%2 == 1; d.Allowed != wantAllowed {
					select {
					case errs <- reqString(req):
					default:
					}
					return
				}
			}
		}()
	}
	for i := range 2000 {
		h.Store(snaps[i%len(snaps)])
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("Check(%s) disagreed with its snapshot's version", e)
	}
}
