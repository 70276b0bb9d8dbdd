package guard_test

import (
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
	"github.com/gatehouse/gatehouse/sqlite"
)

// benchPolicy adds to the test policy a store whose refunds have window
// limits too high to refuse anything, need no confirmation, and so are
// counted, reserved and stored on every authorization.
var benchPolicy = strings.NewReplacer("tenants: [acme, acme-berlin, globex]", "tenants: [acme, acme-berlin, globex, acme-bench]",
	"  - {id: globex}\n", `  - {id: globex}
  - id: acme-bench
    parent: acme
    actions:
      process_refund:
        requires_confirmation: false
        limits: {currency: EUR, max_amount: 100, window: 1h, max_count: 1000000000, max_total_amount: 1000000000}
`).Replace(testPolicy)

// benchStores opens each store for a benchmark; PostgreSQL only where
// GATEHOUSE_TEST_POSTGRES names a server (scripts/bench starts one).
var benchStores = []struct {
	name string
	open func(b *testing.B) gatehouse.ActionStore
}{
	{"sqlite", func(b *testing.B) gatehouse.ActionStore {
		s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "gatehouse.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(b *testing.B) gatehouse.ActionStore {
		s, err := postgres.Open(b.Context(), pgtest.NewSchema(b, pgtest.DSN(b)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

// ticker is a clock that moves on by step whenever it is read: with a
// one-hour window and a step of 3.6 s, the window holds the last 1,000
// authorizations, as a busy store's would, however long the benchmark runs.
type ticker struct {
	clock
	step time.Duration
}

func (c *ticker) Now() time.Time {
	c.Advance(c.step)
	return c.clock.Now()
}

// BenchmarkAuthorize measures authorizations that store a record each:
// one caller at a time (latency), and 16 callers at once per core
// (throughput, where reservations share transactions), without window
// limits (apply_discount, pending) and with them (process_refund in
// acme-bench, counted in a window of about 1,000 records); and the decision alone, without the
// store (Simulate of an action without windows).
func BenchmarkAuthorize(b *testing.B) {
	snap := compile(b, benchPolicy, 7)
	requests := []struct {
		name string
		req  *guard.Request
	}{
		{"plain", &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "discount", Args: map[string]any{"percent": "5"}}},
		{"windowed", refund("acme-bench", "12.50")},
	}
	for _, s := range benchStores {
		for _, r := range requests {
			newGuard := func(b *testing.B) *guard.Guard {
				clk := &ticker{clock: clock{t: time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)}, step: 3600 * time.Millisecond}
				g, err := guard.New(s.open(b), func() *engine.Snapshot { return snap }, guard.Config{Clock: clk})
				if err != nil {
					b.Fatal(err)
				}
				return g
			}
			b.Run("serial/"+r.name+"/"+s.name, func(b *testing.B) {
				g := newGuard(b)
				b.ReportAllocs()
				for b.Loop() {
					if res := g.Authorize(b.Context(), r.req, ""); !res.Allowed {
						b.Fatalf("Authorize = %+v", res)
					}
				}
			})
			b.Run("parallel/"+r.name+"/"+s.name, func(b *testing.B) {
				g := newGuard(b)
				var denied atomic.Int64
				b.SetParallelism(16)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if res := g.Authorize(b.Context(), r.req, ""); !res.Allowed {
							denied.Add(1)
						}
					}
				})
				if n := denied.Load(); n > 0 {
					b.Fatalf("%d authorizations denied", n)
				}
			})
		}
	}
	b.Run("decide-only", func(b *testing.B) {
		f := newFixture(b)
		req := &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "discount", Args: map[string]any{"percent": "5"}}
		b.ReportAllocs()
		for b.Loop() {
			if res := f.g.Simulate(b.Context(), req); res.Reason != gatehouse.ReasonConfirmationRequired {
				b.Fatalf("Simulate = %+v", res)
			}
		}
	})
}
