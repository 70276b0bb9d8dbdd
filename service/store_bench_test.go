package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sqlite"
)

// benchStores open a fresh, empty store of each kind. The PostgreSQL one
// skips its benchmarks unless pgtest.EnvDSN names a server.
var benchStores = []struct {
	name string
	open func(b *testing.B) gatehouse.Store
}{
	{"sqlite", func(b *testing.B) gatehouse.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "g.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(b *testing.B) gatehouse.Store {
		s, err := postgres.Open(context.Background(), pgtest.NewSchema(b, pgtest.DSN(b)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

// bigPolicies are the engine benchmarks' configuration with 100,000 users,
// and the same with one user's tenants changed; generated once.
var bigPolicies = sync.OnceValue(func() [2]*gatehouse.Policy {
	cfg := enginetest.DefaultConfig()
	cfg.Users = 100_000
	changed := enginetest.Generate(cfg)
	changed.Users[0].Tenants = []string{enginetest.OrgID(1)}
	return [2]*gatehouse.Policy{enginetest.Generate(cfg), changed}
})

func benchService(b *testing.B, s gatehouse.Store) *service.Service {
	b.Helper()
	svc, err := service.Open(context.Background(), s, service.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// benchSizes runs bench once per store of benchStores and size of
// enginetest.BenchUsers, with svc a service on a fresh store holding the
// engine benchmarks' generated policy p of that many users (benchPolicy).
func benchSizes(b *testing.B, bench func(b *testing.B, store gatehouse.Store, svc *service.Service, p *gatehouse.Policy)) {
	for _, st := range benchStores {
		for _, users := range enginetest.BenchUsers() {
			b.Run(st.name+"/users="+enginetest.SizeName(users), func(b *testing.B) {
				store := st.open(b)
				svc, p := benchPolicy(b, store, users)
				bench(b, store, svc, p)
			})
		}
	}
}

// benchPolicy opens a service on store and makes the engine benchmarks'
// generated policy of users users the stored one through it.
func benchPolicy(b *testing.B, store gatehouse.Store, users int) (*service.Service, *gatehouse.Policy) {
	b.Helper()
	cfg := enginetest.DefaultConfig()
	cfg.Users = users
	p := enginetest.Generate(cfg)
	svc := benchService(b, store)
	benchApply(b, svc, p)
	return svc, p
}

// benchApply makes p the stored policy through the write path every change
// takes.
func benchApply(b *testing.B, svc *service.Service, p *gatehouse.Policy) service.Result {
	b.Helper()
	res, err := svc.Update(context.Background(), "bench", "policy.apply", func(cur *gatehouse.Policy) error {
		*cur = *p
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// BenchmarkApply applies the 100,000-user policy through the write path of
// `gatehouse apply` after parsing (load, validate, diff, compile, commit
// with one audit event per changed object): into an empty store, and as a
// change of one user to a store that holds it, on each store side by side.
func BenchmarkApply(b *testing.B) {
	docs := bigPolicies()
	for _, st := range benchStores {
		b.Run(st.name+"/users=100k/initial", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				svc := benchService(b, st.open(b))
				b.StartTimer()
				if res := benchApply(b, svc, docs[0]); res.Version != 1 {
					b.Fatalf("apply into an empty store: version %d, want 1", res.Version)
				}
			}
		})
	}
	for _, st := range benchStores {
		b.Run(st.name+"/users=100k/one-user", func(b *testing.B) {
			svc := benchService(b, st.open(b))
			benchApply(b, svc, docs[0])
			i := 0
			for b.Loop() {
				i++
				if res := benchApply(b, svc, docs[i%2]); len(res.Changes) != 1 {
					b.Fatalf("apply: %d changes, want 1", len(res.Changes))
				}
			}
		})
	}
}

// BenchmarkSnapshot builds the snapshot of the stored 100,000-user policy
// as an instance does at start and after every change: LoadPolicy, decode,
// engine.Compile. load-ms is the LoadPolicy share.
func BenchmarkSnapshot(b *testing.B) {
	docs := bigPolicies()
	for _, st := range benchStores {
		b.Run(st.name+"/users=100k", func(b *testing.B) {
			s := st.open(b)
			benchApply(b, benchService(b, s), docs[0])
			ctx := context.Background()
			var load time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				objs, v, err := s.LoadPolicy(ctx)
				load += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				p, err := gatehouse.PolicyFromObjects(objs)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := engine.Compile(p, v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(load.Milliseconds())/float64(b.N), "load-ms/op")
		})
	}
}

// BenchmarkChange is one single-user change through the service
// (SetUserTenants, alternating between two tenant lists) in a store that
// holds the engine benchmarks' policy with 10,000 and with 100,000 users,
// side by side: a change should cost what it changes, not what the store
// holds. p50-ms and p99-ms are over the iterations of one run.
func BenchmarkChange(b *testing.B) {
	benchSizes(b, func(b *testing.B, _ gatehouse.Store, svc *service.Service, p *gatehouse.Policy) {
		ctx := context.Background()
		email := p.Users[0].Email
		lists := [2][]string{{enginetest.OrgID(1)}, {enginetest.OrgID(2), enginetest.StoreID(2, 1)}}
		var took []time.Duration
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			res, err := svc.SetUserTenants(ctx, "bench", email, lists[len(took)%2])
			took = append(took, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Changes) != 1 {
				b.Fatalf("SetUserTenants: %d changes, want 1", len(res.Changes))
			}
		}
		reportPercentiles(b, took, "")
	})
}

// BenchmarkCreateDelete is BenchmarkChange for creating a user (PUT of a
// new entry) and deleting it again, alternately: each iteration one
// change, whose snapshot is derived, not compiled.
func BenchmarkCreateDelete(b *testing.B) {
	benchSizes(b, func(b *testing.B, _ gatehouse.Store, svc *service.Service, p *gatehouse.Policy) {
		ctx := context.Background()
		body := fmt.Sprintf(`{"tenants": [%q], "roles": [{"role": %q}]}`, enginetest.OrgID(1), enginetest.RoleName(1))
		var took []time.Duration
		for b.Loop() {
			email := fmt.Sprintf("bench%06d@example.com", len(took)/2)
			start := time.Now()
			var err error
			if len(took)%2 == 0 {
				var created bool
				if _, created, err = svc.PutObject(ctx, "bench", gatehouse.KindUser, email, []byte(body)); err == nil && !created {
					b.Fatalf("PUT %s did not create it", email)
				}
			} else {
				_, err = svc.DeleteObject(ctx, "bench", gatehouse.KindUser, email)
			}
			took = append(took, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
		}
		reportPercentiles(b, took, "")
	})
}

// reportPercentiles reports the median and 99th percentile of took in ms,
// as PREFIXp50-ms and PREFIXp99-ms.
func reportPercentiles(b *testing.B, took []time.Duration, prefix string) {
	slices.Sort(took)
	ms := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), prefix+"p50-ms")
	b.ReportMetric(ms(0.99), prefix+"p99-ms")
}

// BenchmarkFollowChange is BenchmarkChange seen from a second instance on
// the same store: after each single-user change on the writer, the
// follower's Reload (what Follow runs on a notification or a poll) catches
// up by change from the audit trail. follow-p50-ms and follow-p99-ms are
// the Reload's; heap-MB is the live heap of the process holding both
// instances (each keeps the policy and its snapshot) after a collection.
func BenchmarkFollowChange(b *testing.B) {
	benchSizes(b, func(b *testing.B, s gatehouse.Store, writer *service.Service, p *gatehouse.Policy) {
		follower := benchService(b, s)
		email := p.Users[0].Email
		p = nil
		ctx := context.Background()
		lists := [2][]string{{enginetest.OrgID(1)}, {enginetest.OrgID(2), enginetest.StoreID(2, 1)}}
		var took []time.Duration
		for b.Loop() {
			if _, err := writer.SetUserTenants(ctx, "bench", email, lists[len(took)%2]); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			swapped, err := follower.Reload(ctx)
			took = append(took, time.Since(start))
			if err != nil || !swapped {
				b.Fatalf("follower Reload = %v, %v; want a swap", swapped, err)
			}
		}
		reportPercentiles(b, took, "follow-")
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapAlloc)/1e6, "heap-MB")
		runtime.KeepAlive(writer)
		runtime.KeepAlive(follower)
	})
}

// BenchmarkFollowRoleChange is BenchmarkRoleChange seen from a second
// instance: after each role change on the writer, the follower's Reload
// catches up by change (the role's new section, then a compile), which
// follow-p50-ms and follow-p99-ms report; open-ms is what the follower
// would pay instead, loading and compiling the whole policy (one Open of
// a third instance, timed once in the same run).
func BenchmarkFollowRoleChange(b *testing.B) {
	benchSizes(b, func(b *testing.B, s gatehouse.Store, writer *service.Service, p *gatehouse.Policy) {
		follower := benchService(b, s)
		ctx := context.Background()
		role := p.Roles[0]
		p = nil
		bodies := roleBodies(role.Name)
		var took []time.Duration
		for b.Loop() {
			if _, _, err := writer.PutObject(ctx, "bench", gatehouse.KindRole, role.Name, []byte(bodies[len(took)%2])); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			swapped, err := follower.Reload(ctx)
			took = append(took, time.Since(start))
			if err != nil || !swapped {
				b.Fatalf("follower Reload = %v, %v; want a swap", swapped, err)
			}
		}
		reportPercentiles(b, took, "follow-")
		b.StopTimer()
		start := time.Now()
		benchService(b, s)
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "open-ms")
		runtime.KeepAlive(writer)
		runtime.KeepAlive(follower)
	})
}

// BenchmarkRoleChange is a change of a role (PutObject, alternating
// between two permission lists) in the same stores as BenchmarkChange: a
// change of a shared table, which every user holding the role depends on.
func BenchmarkRoleChange(b *testing.B) {
	benchSizes(b, func(b *testing.B, _ gatehouse.Store, svc *service.Service, p *gatehouse.Policy) {
		ctx := context.Background()
		role := p.Roles[0]
		bodies := roleBodies(role.Name)
		var took []time.Duration
		for b.Loop() {
			start := time.Now()
			_, _, err := svc.PutObject(ctx, "bench", gatehouse.KindRole, role.Name, []byte(bodies[len(took)%2]))
			took = append(took, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
		}
		reportPercentiles(b, took, "")
	})
}

// BenchmarkRoleBurst puts 100 roles at once, each from its own goroutine,
// as an admin script or a burst of API calls would: one op is the burst,
// reported with the time per role change and how many versions (commits
// and compiles) it took, against BenchmarkRoleChange's one compile each.
func BenchmarkRoleBurst(b *testing.B) {
	const burst = 100
	benchSizes(b, func(b *testing.B, _ gatehouse.Store, svc *service.Service, p *gatehouse.Policy) {
		ctx := context.Background()
		// The generated roles, changed, then new ones.
		var names [burst]string
		var bodies [2][burst]string
		for i := range burst {
			names[i] = fmt.Sprintf("burst-%03d", i)
			if i < len(p.Roles) {
				names[i] = p.Roles[i].Name
			}
			b := roleBodies(names[i])
			bodies[0][i], bodies[1][i] = b[0], b[1]
		}
		var versions, bursts int64
		for b.Loop() {
			before, body := svc.Snapshot().Version(), &bodies[bursts%2]
			var wg sync.WaitGroup
			for i := range burst {
				wg.Go(func() {
					if _, _, err := svc.PutObject(ctx, "bench", gatehouse.KindRole, names[i], []byte(body[i])); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			versions += svc.Snapshot().Version() - before
			bursts++
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(bursts*burst), "ms/change")
		b.ReportMetric(float64(versions)/float64(bursts), "versions/burst")
	})
}

// roleBodies are the two bodies of role name the role benchmarks put in
// turn: one permission, then two.
func roleBodies(name string) [2]string {
	return [2]string{
		fmt.Sprintf(`{"name": %q, "permissions": [%q]}`, name, enginetest.PermissionName(1)),
		fmt.Sprintf(`{"name": %q, "permissions": [%q, %q]}`, name, enginetest.PermissionName(1), enginetest.PermissionName(2)),
	}
}
