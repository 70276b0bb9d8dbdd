package engine_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/engine/enginetest"
)

// benchRequests is the number of requests per mix: enough distinct users
// and tenants that a benchmark does not run from a warm cache line.
const benchRequests = 1 << 14

type benchFixture struct {
	snap                   *engine.Snapshot
	allowed, denied, mixed []gatehouse.Request
	upper, agentForUser    []gatehouse.Request
	deniedReasons          map[gatehouse.Reason]int
}

// loadBench compiles enginetest.DefaultConfig once per process and splits a
// request mix into allowed and denied requests.
var loadBench = sync.OnceValues(func() (*benchFixture, error) {
	p := enginetest.Generate(enginetest.DefaultConfig())
	s, err := engine.Compile(p, 1)
	if err != nil {
		return nil, err
	}
	f := &benchFixture{snap: s, deniedReasons: make(map[gatehouse.Reason]int)}
	for _, req := range enginetest.Requests(p, 2, 8*benchRequests) {
		d := s.Check(&req)
		switch {
		case d.Allowed && len(f.allowed) < benchRequests:
			f.allowed = append(f.allowed, req)
		case !d.Allowed && len(f.denied) < benchRequests:
			f.denied = append(f.denied, req)
			f.deniedReasons[d.Reason]++
		}
		if len(f.mixed) < benchRequests {
			f.mixed = append(f.mixed, req)
			up := req
			up.Subject.ID = strings.ToUpper(up.Subject.ID[:1]) + up.Subject.ID[1:]
			f.upper = append(f.upper, up)
			agent := req
			agent.Subject = gatehouse.AgentRef(enginetest.AgentID(len(f.mixed) % len(p.Agents)))
			agent.OnBehalfOf = req.Subject
			f.agentForUser = append(f.agentForUser, agent)
		}
	}
	return f, nil
})

func mustLoadBench(b *testing.B) *benchFixture {
	b.Helper()
	f, err := loadBench()
	if err != nil {
		b.Fatalf("compile generated policy: %v", err)
	}
	return f
}

// TestGeneratedPolicy: the benchmark policy compiles, its request mix has
// both outcomes, and Explain agrees with Check at scale.
func TestGeneratedPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a 10k-user policy")
	}
	f, err := loadBench()
	if err != nil {
		t.Fatalf("compile generated policy: %v", err)
	}
	if len(f.allowed) < benchRequests/4 || len(f.denied) < benchRequests/4 {
		t.Fatalf("generated mix: %d allowed, %d denied; want at least %d of each", len(f.allowed), len(f.denied), benchRequests/4)
	}
	for _, r := range []gatehouse.Reason{notVisible, missing, planReq} {
		if f.deniedReasons[r] == 0 {
			t.Errorf("generated mix has no %s denial: %v", r, f.deniedReasons)
		}
	}
	for i := range 2000 {
		req := &f.mixed[i]
		if e, d := f.snap.Explain(req), f.snap.Check(req); e.Decision != d {
			t.Errorf("Explain(%s).Decision = %+v, Check = %+v", reqString(req), e.Decision, d)
		}
		if up := &f.upper[i]; f.snap.Check(up) != f.snap.Check(req) {
			t.Errorf("Check(%s) differs from Check(%s)", reqString(up), reqString(req))
		}
	}
	for i := range 200 {
		if n := testing.AllocsPerRun(10, func() { f.snap.Check(&f.mixed[i]) }); n != 0 {
			t.Errorf("Check(%s) allocates %v times, want 0", reqString(&f.mixed[i]), n)
		}
	}
}

// hotRequests is the size of the hot working set: few enough requests that
// the data they touch stays in the CPU caches, as for a burst of checks by
// the same users (a tools/list, an Effective call, a chat session).
const hotRequests = 64

// BenchmarkCheck decides generated requests. The hot mixes cycle through
// hotRequests requests; the cold ones through benchRequests requests spread
// over all 10k users, so most of what a check reads comes from memory.
func BenchmarkCheck(b *testing.B) {
	f := mustLoadBench(b)
	mixes := []struct {
		name string
		reqs []gatehouse.Request
	}{
		{"hot/allowed", f.allowed[:hotRequests]},
		{"hot/denied", f.denied[:hotRequests]},
		{"cold/allowed", f.allowed},
		{"cold/denied", f.denied},
		{"cold/mixed", f.mixed},
		{"cold/mixed-case-email", f.upper},
		{"cold/agent-for-user", f.agentForUser},
	}
	for _, mix := range mixes {
		b.Run(mix.name, func(b *testing.B) {
			reqs := mix.reqs
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f.snap.Check(&reqs[i])
				if i++; i == len(reqs) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkCheckDerived is BenchmarkCheck's cold mixes on a snapshot
// derived from the compiled one by creating, renaming and removing a user,
// so that every user is looked up through the overlay's path.
func BenchmarkCheckDerived(b *testing.B) {
	f := mustLoadBench(b)
	snap, ok, err := f.snap.Derive(2, engine.SubjectDelta{
		Users: []gatehouse.UserEntry{
			{Email: "created@example.com", Aliases: []string{"created"}},
			{Email: enginetest.UserEmail(1), Aliases: []string{"renamed"}},
		},
		RemoveUsers: []string{enginetest.UserEmail(2)},
	})
	if !ok || err != nil {
		b.Fatalf("Derive = %v, %v", ok, err)
	}
	for _, mix := range []struct {
		name string
		reqs []gatehouse.Request
	}{{"cold/mixed", f.mixed}, {"cold/mixed-case-email", f.upper}, {"cold/agent-for-user", f.agentForUser}} {
		b.Run(mix.name, func(b *testing.B) {
			reqs := mix.reqs
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				snap.Check(&reqs[i])
				if i++; i == len(reqs) {
					i = 0
				}
			}
		})
	}
}

func BenchmarkCheckParallel(b *testing.B) {
	f := mustLoadBench(b)
	var h engine.Holder
	h.Store(f.snap)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			h.Load().Check(&f.mixed[i])
			if i++; i == len(f.mixed) {
				i = 0
			}
		}
	})
}

// BenchmarkCheckCondition measures the slow path: a CEL condition per check.
func BenchmarkCheckCondition(b *testing.B) {
	s := compileTest(b)
	req := &gatehouse.Request{Subject: user("carl@acme.example"), Permission: "export_report", Tenant: "acme-berlin", Context: ctx("report_kind", "daily")}
	if d := s.Check(req); d.Reason != granted {
		b.Fatalf("Check(%s) = %s, want granted", reqString(req), d.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Check(req)
	}
}

func BenchmarkCheckTool(b *testing.B) {
	s := compileTest(b)
	req := &gatehouse.Request{Subject: user("sara@acme.example"), Tenant: "acme-berlin"}
	b.ReportAllocs()
	for b.Loop() {
		s.CheckTool(req, "analyze_loan")
	}
}

func BenchmarkExplain(b *testing.B) {
	f := mustLoadBench(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f.snap.Explain(&f.mixed[i])
		if i++; i == len(f.mixed) {
			i = 0
		}
	}
}

func BenchmarkEffective(b *testing.B) {
	f := mustLoadBench(b)
	req := f.allowed[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.snap.Effective(req.Subject, req.Tenant); err != nil {
			b.Fatal(err)
		}
	}
}

// compileConfigs are the policies BenchmarkCompile builds; generated once.
var compileConfigs = sync.OnceValue(func() map[string]*gatehouse.Policy {
	big := enginetest.DefaultConfig()
	big.Users, big.Grants = 100_000, 10
	return map[string]*gatehouse.Policy{
		"users=10k":            enginetest.Generate(enginetest.DefaultConfig()),
		"users=100k/grants=1M": enginetest.Generate(big),
	}
})

// BenchmarkCompile reports the time to compile and, as MB-heap, the heap
// the snapshot retains.
func BenchmarkCompile(b *testing.B) {
	policies := compileConfigs()
	for _, name := range []string{"users=10k", "users=100k/grants=1M"} {
		p := policies[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := engine.Compile(p, 1); err != nil {
					b.Fatal(err)
				}
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s, err := engine.Compile(p, 1)
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB-heap")
			runtime.KeepAlive(s)
		})
	}
}

// BenchmarkDerive derives the snapshot of a one-user change of a generated
// 100k-user policy from the newest snapshot, as a writer does after each
// commit: a user's roles changed, a user created, a user deleted. When the
// lineage has derived as much as it may, the benchmark compiles again,
// with the timer stopped.
func BenchmarkDerive(b *testing.B) {
	cfg := enginetest.DefaultConfig()
	cfg.Users = 100_000
	p := enginetest.Generate(cfg)
	base, err := engine.Compile(p, 1)
	if err != nil {
		b.Fatal(err)
	}
	role := func(i int) []gatehouse.Assignment {
		return []gatehouse.Assignment{{Role: enginetest.RoleName(i % cfg.Roles)}, {Role: enginetest.RoleName((i + 7) % cfg.Roles), Tenant: enginetest.OrgID(i % 50)}}
	}
	for _, tc := range []struct {
		name  string
		delta func(i int) engine.SubjectDelta
	}{
		{"change", func(i int) engine.SubjectDelta {
			u := p.Users[i%len(p.Users)]
			u.Roles = role(i)
			return engine.SubjectDelta{Users: []gatehouse.UserEntry{u}}
		}},
		{"create", func(i int) engine.SubjectDelta {
			u := gatehouse.UserEntry{Email: fmt.Sprintf("created%07d@example.com", i), Roles: role(i), Tenants: []string{enginetest.OrgID(i % 50)}}
			return engine.SubjectDelta{Users: []gatehouse.UserEntry{u}}
		}},
		{"delete", func(i int) engine.SubjectDelta {
			return engine.SubjectDelta{RemoveUsers: []string{p.Users[i%len(p.Users)].Email}}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			snap, compiles := base, 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				next, ok, err := snap.Derive(snap.Version()+1, tc.delta(i))
				if err != nil {
					b.Fatal(err)
				}
				if !ok {
					// The lineage is full, or the user to delete is gone:
					// start again from a Compile.
					b.StopTimer()
					if next, err = engine.Compile(p, snap.Version()+1); err != nil {
						b.Fatal(err)
					}
					compiles++
					b.StartTimer()
				}
				snap = next
				i++
			}
			b.ReportMetric(float64(compiles), "compiles")
		})
	}
}
