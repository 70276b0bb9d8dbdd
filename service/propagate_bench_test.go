package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
)

// BenchmarkPropagateChange is a single-user change on one instance seen by
// a second instance on the same PostgreSQL database, as two `serve`
// processes run: each has its own connection pool, the second runs Follow
// (LISTEN/NOTIFY, the poll as the safety net). Each iteration moves a user
// between two tenant lists on the writer (SetUserTenants) and then polls
// the follower's Check until it decides the new answer (the tenant visible
// or not); propagate-p50-ms and propagate-p99-ms are from the start of the
// write to that decision. Skipped without GATEHOUSE_TEST_POSTGRES.
func BenchmarkPropagateChange(b *testing.B) {
	for _, users := range enginetest.BenchUsers() {
		b.Run("postgres/users="+enginetest.SizeName(users), func(b *testing.B) {
			dsn := pgtest.NewSchema(b, pgtest.DSN(b))
			ctx := context.Background()
			open := func() gatehouse.Store {
				s, err := postgres.Open(ctx, dsn)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				return s
			}
			writer, p := benchPolicy(b, open(), users)
			follower := benchService(b, open())
			// Past the superusers, who see every tenant.
			email := p.Users[enginetest.DefaultConfig().Superusers].Email
			p = nil
			followCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- follower.Follow(followCtx, 2*time.Second, nil, func(err error) { b.Log(err) })
			}()
			b.Cleanup(func() {
				cancel()
				if err := <-done; err != context.Canceled {
					b.Errorf("Follow returned %v, want context.Canceled", err)
				}
			})
			// The store is in lists[1] and not in lists[0].
			lists := [2][]string{{enginetest.OrgID(1)}, {enginetest.OrgID(2), enginetest.StoreID(2, 1)}}
			req := gatehouse.Request{Subject: gatehouse.User(email), Tenant: enginetest.StoreID(2, 1), Permission: enginetest.PermissionName(0)}
			hidden := func() bool { return follower.Snapshot().Check(&req).Reason == gatehouse.ReasonTenantNotVisible }
			var took []time.Duration
			for b.Loop() {
				n := len(took)
				start := time.Now()
				if _, err := writer.SetUserTenants(ctx, "bench", email, lists[n%2]); err != nil {
					b.Fatal(err)
				}
				wantHidden := n%2 == 0
				deadline := start.Add(10 * time.Second)
				for hidden() != wantHidden {
					if time.Now().After(deadline) {
						b.Fatalf("change %d: follower still decides hidden=%v 10 s after the write", n, !wantHidden)
					}
					time.Sleep(100 * time.Microsecond)
				}
				took = append(took, time.Since(start))
			}
			reportPercentiles(b, took, "propagate-")
		})
	}
}
