package service

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/memstore"
)

// interposed is a store that, once armed, runs first once before its next
// CommitPolicy goes on: another writer committing in between.
type interposed struct {
	gatehouse.Store
	armed atomic.Bool
	once  sync.Once
	first func()
}

func (s *interposed) CommitPolicy(ctx context.Context, base int64, changes []gatehouse.Change, events []gatehouse.AuditEvent) (int64, error) {
	if s.armed.Load() {
		s.once.Do(s.first)
	}
	return s.Store.CommitPolicy(ctx, base, changes, events)
}

// openInterposed returns a service on mem whose first commit once armed
// lets between, another instance's write, run first — a batch or an apply
// that loses its commit to another instance.
func openInterposed(t *testing.T, mem gatehouse.Store, between func()) (*Service, *interposed) {
	t.Helper()
	store := &interposed{Store: mem, first: between}
	s, err := Open(context.Background(), store, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s, store
}

// openReviewStore returns a memstore holding reviewPolicy and the service
// that wrote it: the other instance of a race.
func openReviewStore(t *testing.T) (gatehouse.Store, *Service) {
	t.Helper()
	mem := memstore.New()
	s, err := Open(context.Background(), mem, Config{})
	if err != nil {
		t.Fatal(err)
	}
	applyReview(t, s)
	return mem, s
}

// Writes queued in one batch are decided in queue order even when the
// batch loses its commit to another instance: a write refused because of
// the writes staged before it is decided again on what was committed, so
// that an earlier write refused on the retry does not leave a later one
// refused for it — of roles and permissions, and of superusers.
func TestBatchRetryDecidesInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("sections", func(t *testing.T) {
		t.Parallel()
		mem, other := openReviewStore(t)
		if _, _, err := other.PutObject(ctx, "test", gatehouse.KindPermission, "spare.perm", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		s, armed := openInterposed(t, mem, func() {
			// Another instance gives a role the permission W1 deletes.
			if _, _, err := other.PutObject(ctx, "other", gatehouse.KindRole, "holder", []byte(`{"permissions": ["spare.perm"]}`)); err != nil {
				t.Errorf("the other writer: %v", err)
			}
		})
		// A write of s's own, so that s keeps a policy known valid, which
		// batches start from.
		if _, _, err := s.PutObject(ctx, "test", gatehouse.KindTenant, "store-z", []byte(`{"parent": "org"}`)); err != nil {
			t.Fatal(err)
		}
		armed.armed.Store(true)
		errs := queued(t, s,
			func() error {
				_, err := s.DeleteObject(ctx, "test", gatehouse.KindPermission, "spare.perm")
				return err
			},
			func() error {
				_, _, err := s.PutObject(ctx, "test", gatehouse.KindRole, "r2", []byte(`{"permissions": ["spare.perm"]}`))
				return err
			},
		)
		if !errors.Is(errs[0], gatehouse.ErrInvalid) {
			t.Errorf("deleting the permission the other instance's role now holds = %v, want ErrInvalid", errs[0])
		}
		if errs[1] != nil {
			t.Errorf("a role of the permission that stays = %v, want it committed", errs[1])
		}
		checkKept(t, s)
	})
	t.Run("superusers", func(t *testing.T) {
		t.Parallel()
		mem, other := openReviewStore(t)
		if _, err := other.Promote(ctx, "test", "ann@example.com"); err != nil {
			t.Fatal(err)
		}
		s, armed := openInterposed(t, mem, func() {
			if _, err := other.Promote(ctx, "other", "bob@example.com"); err != nil {
				t.Errorf("the other writer: %v", err)
			}
		})
		if _, err := s.SetUserTenants(ctx, "test", "tad@example.com", []string{"org"}); err != nil {
			t.Fatal(err)
		}
		armed.armed.Store(true)
		// Alone on the stored policy the second demotion would remove
		// the last superuser; after the other instance's promotion it
		// does not.
		errs := queued(t, s,
			func() error { _, err := s.Demote(ctx, "test", "root@example.com"); return err },
			func() error { _, err := s.Demote(ctx, "test", "ann@example.com"); return err },
		)
		for i, err := range errs {
			if err != nil {
				t.Errorf("demotion %d: %v, want it committed: bob stays a superuser", i, err)
			}
		}
		checkKept(t, s)
	})
}

// An ApplyTaking that loses its commit to another instance merges the
// document again as it was asked for: a plan billing kept on the first
// attempt, for a customer who has since moved, is the document's on the
// retry, as Apply, which copies the document, commits it.
func TestApplyRetryRestoresBilledPlans(t *testing.T) {
	t.Parallel()
	for _, take := range []bool{false, true} {
		name := "Apply"
		if take {
			name = "ApplyTaking"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			mem := memstore.New()
			other, err := Open(ctx, mem, Config{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Apply(ctx, "test", parseDoc(t, `
settings: {default_tenants: [general]}
permissions: [{name: chat.view}]
plans: [{name: free}, {name: pro}]
tenants:
  - {id: general}
  - {id: org, plan: pro}
  - {id: store-a, parent: org}
users:
  - {email: root@example.com, superuser: true}
`), false); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
			bill := func(event, subject string, version int64) {
				v, err := mem.PolicyVersion(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := mem.CommitBilling(ctx, gatehouse.BillingCommit{
					Base:  v,
					Event: gatehouse.BillingEvent{ID: event, Type: "customer.subscription.updated", Customer: "cus_1", Created: now, ProcessedAt: now, Outcome: "applied"},
					Customer: gatehouse.BillingCustomer{ID: "cus_1", Subject: subject, Plan: "pro", Status: gatehouse.BillingActive,
						LastEvent: event, LastCreated: now, UpdatedAt: now, Version: version},
				}); err != nil {
					t.Fatal(err)
				}
			}
			bill("evt_0", "tenant:org", 0) // the customer pays for org
			s, armed := openInterposed(t, mem, func() {
				// Between the first attempt and its commit the customer
				// moves to store-a, and another instance commits.
				bill("evt_1", "tenant:store-a", 1)
				if _, _, err := other.PutObject(ctx, "other", gatehouse.KindRole, "extra", []byte(`{"permissions": ["chat.view"]}`)); err != nil {
					t.Errorf("the other writer: %v", err)
				}
			})
			armed.armed.Store(true)
			apply := s.Apply
			if take {
				apply = s.ApplyTaking
			}
			if _, err := apply(ctx, "test", parseDoc(t, `
tenants:
  - {id: general}
  - {id: org, plan: free}
  - {id: store-a, parent: org}
  - {id: store-b, parent: org}
`), false); err != nil {
				t.Fatal(err)
			}
			stored, _, err := s.load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := stored.Tenant("org").Plan; got != "free" {
				t.Errorf("org's plan %q after the retry, want free: billing no longer manages it, the document says free", got)
			}
		})
	}
}

// A follower catching up by change across a whole-document apply that
// reorders the plans and empties the settings, a role created and
// deleted, a user and a tenant changed, ends where a reload ends, without
// loading the store.
func TestCatchUpAcrossDocumentApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := memstore.New()
	writer, err := Open(ctx, mem, Config{})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(src string) {
		t.Helper()
		if _, err := writer.ApplyTaking(ctx, "test", parseDoc(t, src), false); err != nil {
			t.Fatal(err)
		}
	}
	apply(`
settings: {default_tenants: [general], admin_permission: manage, subject_types: {svc: agent}}
permissions: [{name: chat.view}, {name: manage}, {name: fancy, feature: f2}]
roles: [{name: user, permissions: [chat.view]}, {name: fan, permissions: [fancy]}]
plans: [{name: free}, {name: mid, features: [f1]}, {name: top, features: [f2]}]
tenants: [{id: general}, {id: org, plan: mid}]
users:
  - {email: root@example.com, superuser: true}
  - {email: ann@example.com, roles: [{role: fan}], plan: mid}
`)
	follower, err := Open(ctx, mem, Config{})
	if err != nil {
		t.Fatal(err)
	}
	// A write of the follower's own, so that it keeps a valid policy.
	if _, _, err := follower.PutObject(ctx, "f", gatehouse.KindTenant, "ftenant", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	apply(`
settings: {}
plans: [{name: top, features: [f2]}, {name: free}, {name: mid, features: [f1]}]
`)
	for _, w := range []sectionWrite{
		{ctx, gatehouse.KindRole, "tmp", `{"permissions": ["chat.view"]}`},
		{ctx, gatehouse.KindRole, "tmp", ""},
		{ctx, gatehouse.KindUser, "ann@example.com", `{"roles": [{"role": "fan"}], "plan": "free"}`},
		{ctx, gatehouse.KindTenant, "ftenant", ""},
	} {
		if _, err := w.batched(writer); err != nil {
			t.Fatalf("%s %s: %v", w.kind, w.id, err)
		}
	}
	loads := &loadCounter{Store: follower.store}
	follower.store = loads
	if swapped, err := follower.Reload(ctx); err != nil || !swapped {
		t.Fatalf("Reload = %v, %v", swapped, err)
	}
	if n := loads.n.Load(); n != 0 {
		t.Errorf("the catch-up loaded the store %d times, want none", n)
	}
	fresh, v, err := follower.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertKeptEqualsStored(t, follower, fresh, v)
	snap, err := engine.Compile(fresh, v)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := follower.Snapshot().AdminPermission(), snap.AdminPermission(); got != want {
		t.Errorf("admin permission %q, fresh compile %q", got, want)
	}
	for _, q := range []gatehouse.Request{
		{Subject: gatehouse.User("ann@example.com"), Permission: "fancy", Tenant: "general"},
		{Subject: gatehouse.User("ann@example.com"), Permission: "chat.view", Tenant: "general"},
	} {
		if got, want := follower.Snapshot().Check(&q), snap.Check(&q); got != want {
			t.Errorf("Check(%+v) = %+v, fresh compile %+v", q, got, want)
		}
	}
	if !slices.ContainsFunc(fresh.Plans, func(p gatehouse.Plan) bool { return p.Name == "top" }) || fresh.Plans[0].Name != "top" {
		t.Errorf("stored plans %v: want top lowest", fresh.Plans)
	}
}
