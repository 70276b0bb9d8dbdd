package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
)

// Single-subject writes queued while another holds the writers' lock are
// committed by whoever takes it next, in as few versions as their
// independence allows, each with its own result: an unknown role refused
// alone, two demotions of the last two superusers of which the second is
// refused, two changes of one user both kept, a user created through the
// whole-policy path — on every store.
func TestBatchedWrites(t *testing.T) {
	t.Parallel()
	onEveryStore(t, testBatchedWrites)
}

// onEveryStore runs test in parallel on a service over a fresh memstore,
// SQLite and PostgreSQL store each.
func onEveryStore(t *testing.T, test func(t *testing.T, s *Service)) {
	stores := map[string]func(t *testing.T) *Service{
		"memstore": func(t *testing.T) *Service {
			s, err := Open(context.Background(), memstore.New(), Config{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"sqlite": func(t *testing.T) *Service { return openSQLite(t, filepath.Join(t.TempDir(), "g.db")) },
		"postgres": func(t *testing.T) *Service {
			return openPostgres(t, pgtest.NewSchema(t, pgtest.DSN(t)))
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}
}

func testBatchedWrites(t *testing.T, s *Service) {
	ctx := context.Background()
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Superusers, cfg.Agents, cfg.Tenants, cfg.Roles, cfg.Bundles, cfg.Permissions = 60, 2, 2, 10, 12, 10, 30
	gen := enginetest.Generate(cfg)
	// The kept policy is changed in place: it must not share gen's memory.
	if _, err := s.Update(ctx, "test", "policy.apply", func(p *gatehouse.Policy) error { *p = *enginetest.Generate(cfg); return nil }); err != nil {
		t.Fatal(err)
	}
	start := s.Snapshot().Version()
	user := func(i int) gatehouse.SubjectRef { return gatehouse.User(gen.Users[i].Email) }
	fresh := func(u gatehouse.SubjectRef) string {
		held := gen.User(u.ID).Roles
		for _, r := range gen.Roles {
			if !slices.ContainsFunc(held, func(a gatehouse.Assignment) bool { return a.Role == r.Name && a.Tenant == "" }) {
				return r.Name
			}
		}
		t.Fatalf("user %s holds every role", u.ID)
		return ""
	}
	type write struct {
		name string
		do   func() (Result, error)
		want error // nil: committed
	}
	var writes []write
	for i := 10; i < 30; i++ {
		u := user(i)
		writes = append(writes, write{name: "bind " + u.ID, do: func() (Result, error) {
			return s.Bind(ctx, "test", u, gatehouse.Assignment{Role: fresh(u)})
		}})
	}
	writes = append(writes,
		write{name: "unknown role", want: gatehouse.ErrInvalid, do: func() (Result, error) {
			return s.Bind(ctx, "test", user(31), gatehouse.Assignment{Role: "no such role"})
		}},
		write{name: "demote first superuser", do: func() (Result, error) { return s.Demote(ctx, "test", gen.Users[0].Email) }},
		write{name: "demote last superuser", want: gatehouse.ErrLastSuperuser, do: func() (Result, error) {
			return s.Demote(ctx, "test", gen.Users[1].Email)
		}},
		write{name: "tenants of user 40", do: func() (Result, error) {
			return s.SetUserTenants(ctx, "test", gen.Users[40].Email, []string{gen.Tenants[1].ID})
		}},
		write{name: "role of user 40", do: func() (Result, error) {
			return s.Bind(ctx, "test", user(40), gatehouse.Assignment{Role: fresh(user(40))})
		}},
		write{name: "create a user", do: func() (Result, error) {
			return s.SetUserTenants(ctx, "test", "new.user@example.com", []string{gen.Tenants[2].ID})
		}},
	)
	// Queued in order behind the writers' lock, committed together.
	results := make([]Result, len(writes))
	var do []func() error
	for i, w := range writes {
		do = append(do, func() (err error) {
			results[i], err = w.do()
			return err
		})
	}
	errs := queued(t, s, do...)
	versions := map[int64]bool{}
	changes := 0
	for i, w := range writes {
		switch {
		case w.want != nil && !errors.Is(errs[i], w.want):
			t.Errorf("%s: %v, want %v", w.name, errs[i], w.want)
		case w.want == nil && errs[i] != nil:
			t.Errorf("%s: %v", w.name, errs[i])
		case w.want == nil && len(results[i].Changes) != 1:
			t.Errorf("%s: %d changes, want 1", w.name, len(results[i].Changes))
		case w.want == nil:
			versions[results[i].Version] = true
			changes++
		}
	}
	end := s.Snapshot().Version()
	if int(end-start) != len(versions) || len(versions) >= changes {
		t.Errorf("%d changes in versions %v (from %d to %d): want fewer versions than changes, each a commit", changes, slices.Sorted(maps.Keys(versions)), start, end)
	}
	stored, v, err := s.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != end {
		t.Fatalf("store at version %d, snapshot at %d", v, end)
	}
	for i := 10; i < 30; i++ {
		if got := stored.User(gen.Users[i].Email).Roles; len(got) != len(gen.Users[i].Roles)+1 {
			t.Errorf("user %d: roles %v, want one more than %v", i, got, gen.Users[i].Roles)
		}
	}
	if u := stored.User(gen.Users[40].Email); len(u.Roles) != len(gen.Users[40].Roles)+1 || !slices.Equal(u.Tenants, []string{gen.Tenants[1].ID}) {
		t.Errorf("user 40 = %+v, was %+v: both changes must be kept", u, gen.Users[40])
	}
	if stored.User("new.user@example.com") == nil {
		t.Error("the created user is not stored")
	}
	if n := len(slices.DeleteFunc(slices.Clone(stored.Users), func(u gatehouse.UserEntry) bool { return !u.Superuser })); n != 1 {
		t.Errorf("%d superusers, want 1", n)
	}
	events, err := s.store.ListAudit(ctx, gatehouse.AuditFilter{Kind: gatehouse.AuditKindChange, TargetPrefix: "user/", Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	// The apply's events, then one per change.
	if got := len(events) - len(gen.Users); got != changes {
		t.Errorf("%d change events after the apply, want %d", got, changes)
	}
	if rep, err := s.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
	assertKeptEqualsStored(t, s, stored, v)
}

// queued runs do in order, each queued behind s.mu before the next
// starts (in the queue of single-subject writes or of section writes), so
// that they are committed in batches in this order, and returns their
// errors.
func queued(t *testing.T, s *Service, do ...func() error) []error {
	t.Helper()
	errs := make([]error, len(do))
	var wg sync.WaitGroup
	s.mu.Lock()
	for i, d := range do {
		wg.Go(func() { errs[i] = d() })
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			s.queueMu.Lock()
			n := len(s.queue) + len(s.sectionQueue)
			s.queueMu.Unlock()
			if n == i+1 {
				break
			}
			if time.Now().After(deadline) {
				s.mu.Unlock()
				t.Fatalf("%d of %d writes queued", n, len(do))
			}
		}
	}
	s.mu.Unlock()
	wg.Wait()
	return errs
}

// checkKept is assertKeptEqualsStored for the policy s's store holds.
func checkKept(t *testing.T, s *Service) {
	t.Helper()
	stored, v, err := s.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	assertKeptEqualsStored(t, s, stored, v)
}

// assertKeptEqualsStored checks that s keeps the stored policy and decides
// as a snapshot compiled from it.
func assertKeptEqualsStored(t *testing.T, s *Service, stored *gatehouse.Policy, v int64) {
	t.Helper()
	s.mu.Lock()
	kept := s.current
	s.mu.Unlock()
	if kept == nil || kept.v != v {
		t.Fatalf("kept policy %+v, store at version %d", kept, v)
	}
	keptObjs, err := kept.policy().Objects()
	if err != nil {
		t.Fatal(err)
	}
	storedObjs, err := stored.Objects()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(keptObjs, storedObjs) {
		t.Error("kept policy differs from the stored one")
	}
	snap, err := engine.Compile(stored, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range enginetest.Requests(stored, 1, 300) {
		if got, want := s.Snapshot().Check(&req), snap.Check(&req); got != want {
			t.Fatalf("Check(%+v) = %+v, fresh compile %+v", req, got, want)
		}
	}
}

// downStore is a store whose commits fail while down is set.
type downStore struct {
	gatehouse.Store
	down atomic.Bool
}

var errDown = errors.New("store down")

func (d *downStore) CommitPolicy(ctx context.Context, base int64, changes []gatehouse.Change, events []gatehouse.AuditEvent) (int64, error) {
	if d.down.Load() {
		return 0, errDown
	}
	return d.Store.CommitPolicy(ctx, base, changes, events)
}

// A batch whose commit fails fails every write in it with the store's
// error and leaves the kept policy and the snapshot as they were; the same
// writes commit once the store is back.
func TestBatchCommitFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &downStore{Store: memstore.New()}
	s, err := Open(ctx, store, Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Superusers, cfg.Agents, cfg.Tenants, cfg.Roles, cfg.Bundles, cfg.Permissions = 40, 2, 2, 10, 12, 10, 30
	if _, err := s.Update(ctx, "test", "policy.apply", func(p *gatehouse.Policy) error { *p = *enginetest.Generate(cfg); return nil }); err != nil {
		t.Fatal(err)
	}
	gen := enginetest.Generate(cfg)
	writes := func() []error {
		var do []func() error
		for i := range 12 {
			do = append(do, func() (err error) {
				switch i % 3 {
				case 0:
					_, err = s.SetUserTenants(ctx, "t", gen.Users[10+i].Email, []string{gen.Tenants[1].ID})
				case 1:
					_, _, err = s.PutObject(ctx, "t", gatehouse.KindUser, fmt.Sprintf("created%02d@example.com", i), []byte(`{"tenants": []}`))
				default:
					_, err = s.DeleteObject(ctx, "t", gatehouse.KindUser, gen.Users[10+i].Email)
				}
				return err
			})
		}
		return queued(t, s, do...)
	}
	before := s.Snapshot().Version()
	store.down.Store(true)
	for i, err := range writes() {
		if !errors.Is(err, errDown) {
			t.Errorf("write %d with the store down: %v, want %v", i, err, errDown)
		}
	}
	stored, v, err := s.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != before || s.Snapshot().Version() != before {
		t.Fatalf("store at %d, snapshot at %d, want both at %d", v, s.Snapshot().Version(), before)
	}
	assertKeptEqualsStored(t, s, stored, v)
	store.down.Store(false)
	for i, err := range writes() {
		if err != nil {
			t.Errorf("write %d with the store back: %v", i, err)
		}
	}
	stored, v, err = s.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Users) != len(gen.Users) {
		t.Errorf("%d users, want %d: four created, four deleted", len(stored.Users), len(gen.Users))
	}
	assertKeptEqualsStored(t, s, stored, v)
}

// A change function that panics in a batch breaks the batch off: every
// write of it is refused with errWriteFailed, nothing is committed, no
// panic reaches the callers, and the next write starts from the stored
// policy.
func TestBatchPanicRefusesTheBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, memstore.New(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Superusers, cfg.Agents, cfg.Tenants, cfg.Roles, cfg.Bundles, cfg.Permissions = 20, 2, 1, 5, 4, 4, 10
	gen := enginetest.Generate(cfg)
	if _, err := s.Update(ctx, "test", "policy.apply", func(p *gatehouse.Policy) error { *p = *enginetest.Generate(cfg); return nil }); err != nil {
		t.Fatal(err)
	}
	before := s.Snapshot().Version()
	var do []func() error
	for i := range 3 {
		do = append(do, func() error {
			_, err := s.updateSubject(ctx, "t", "test.write", gatehouse.User(gen.Users[5+i].Email), func(p *gatehouse.Policy) error {
				if i == 1 {
					panic("change function broke")
				}
				p.Users[0].Tenants = []string{gen.Tenants[1].ID}
				return nil
			})
			return err
		})
	}
	errs := queued(t, s, do...)
	for i, err := range errs {
		if !errors.Is(err, errWriteFailed) {
			t.Errorf("write %d: %v, want %v", i, err, errWriteFailed)
		}
	}
	stored, v, err := s.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != before {
		t.Fatalf("store at version %d, want %d: nothing committed", v, before)
	}
	if _, err := s.SetUserTenants(ctx, "t", gen.Users[5].Email, []string{gen.Tenants[2].ID}); err != nil {
		t.Fatal(err)
	}
	if stored, v, err = s.load(ctx); err != nil {
		t.Fatal(err)
	}
	assertKeptEqualsStored(t, s, stored, v)
}
