package service

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
)

// A follower that reloads only now and then (it missed notifications),
// or restarts, over a random sequence of changes on another instance ends
// every catch-up with the kept policy the store holds and a snapshot that
// decides as one compiled from a fresh load; most catch-ups of subject
// changes go by change, not by reload. On SQLite, and on PostgreSQL when
// pgtest.EnvDSN names a server.
func TestCatchUpEqualsReload(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "g.db")
		testCatchUp(t, func() *Service { return openSQLite(t, path) })
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.NewSchema(t, pgtest.DSN(t))
		testCatchUp(t, func() *Service { return openPostgres(t, dsn) })
	})
}

func testCatchUp(t *testing.T, open func() *Service) {
	ctx := context.Background()
	writer := open()
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Agents, cfg.Tenants, cfg.Roles, cfg.Bundles, cfg.Permissions = 80, 4, 40, 8, 10, 30
	gen := enginetest.Generate(cfg)
	if _, err := writer.Update(ctx, "test", "policy.apply", func(p *gatehouse.Policy) error { *p = *gen; return nil }); err != nil {
		t.Fatal(err)
	}
	// The follower's loads of the whole policy are counted.
	loads := &loadCounter{}
	openFollower := func() *Service {
		s := open()
		loads.Store = s.store
		s.store = loads
		return s
	}
	follower := openFollower()
	r := rand.New(rand.NewPCG(5, 11))
	var reloads, byChange int
	for step := range 150 {
		stored, _, err := writer.load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch r.IntN(12) {
		case 0:
			if _, err := writer.CreateTenant(ctx, "t", gatehouse.Tenant{ID: fmt.Sprintf("extra-%d", step)}); err != nil {
				t.Fatal(err)
			}
		case 1, 2:
			// Roles and plans created, changed and deleted: a deleted
			// plan moves the tiers above it.
			kind, id := gatehouse.KindRole, fmt.Sprintf("extra-role-%d", r.IntN(3))
			body := fmt.Sprintf(`{"permissions": [%q]}`, gen.Permissions[r.IntN(len(gen.Permissions))].Name)
			if r.IntN(2) == 0 {
				kind, id, body = gatehouse.KindPlan, fmt.Sprintf("extra-plan-%d", r.IntN(3)), fmt.Sprintf(`{"description": "step %d"}`, step)
			}
			if r.IntN(3) == 0 {
				_, _ = writer.DeleteObject(ctx, "t", kind, id) // may not exist
			} else if _, _, err := writer.PutObject(ctx, "t", kind, id, []byte(body)); err != nil {
				t.Fatal(err)
			}
		default:
			_, op := subjectOp(rand.New(rand.NewPCG(uint64(step), 9)), stored)
			_, _ = op(ctx, writer) // refused changes are part of the mix
		}
		switch r.IntN(6) {
		case 0:
			follower = openFollower() // restarted
			continue
		case 1, 2:
		default:
			continue // missed the notification
		}
		before := loads.n.Load()
		swapped, err := follower.Reload(ctx)
		if err != nil {
			t.Fatalf("step %d: Reload: %v", step, err)
		}
		if !swapped {
			continue
		}
		reloads++
		if loads.n.Load() == before {
			byChange++
		}
		fresh, v, err := follower.load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keptObjs, _ := follower.current.policy().Objects()
		freshObjs, _ := fresh.Objects()
		if !reflect.DeepEqual(keptObjs, freshObjs) || follower.current.v != v || follower.Snapshot().Version() != v {
			t.Fatalf("step %d: the follower keeps version %d (snapshot %d), not the stored policy of version %d", step, follower.current.v, follower.Snapshot().Version(), v)
		}
		snap, err := engine.Compile(fresh, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, req := range enginetest.Requests(fresh, uint64(step), 64) {
			if got, want := follower.Snapshot().Check(&req), snap.Check(&req); got != want {
				t.Fatalf("step %d: follower Check(%+v) = %+v, fresh compile %+v", step, req, got, want)
			}
		}
		// The follower writes too: its kept policy is a base like any other.
		if step%10 == 0 {
			_, op := subjectOp(rand.New(rand.NewPCG(uint64(step), 13)), fresh)
			_, _ = op(ctx, follower)
		}
	}
	t.Logf("%d catch-ups, %d by change", reloads, byChange)
	if reloads < 20 || byChange != reloads {
		t.Errorf("%d catch-ups, %d by change; want many, all by change", reloads, byChange)
	}
}

// loadCounter is a store that counts the loads of the whole policy.
type loadCounter struct {
	gatehouse.Store
	n atomic.Int64
}

func (l *loadCounter) LoadPolicy(ctx context.Context) ([]gatehouse.Object, int64, error) {
	l.n.Add(1)
	return l.Store.LoadPolicy(ctx)
}
