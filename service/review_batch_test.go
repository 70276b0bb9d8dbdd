package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/policy"
)

const reviewPolicy = `
settings: {default_tenants: [general], admin_permission: manage}
permissions: [{name: chat.view}, {name: chat.write}, {name: manage}]
roles:
  - {name: user, permissions: [chat.view, chat.write]}
  - {name: admin, permissions: [manage]}
tenants:
  - {id: general}
  - {id: org}
  - {id: store-a, parent: org}
users:
  - {email: root@example.com, superuser: true}
  - {email: ann@example.com, roles: [{role: user}]}
  - {email: bob@example.com, roles: [{role: user}]}
  - {email: tad@example.com, tenants: [org, store-a], roles: [{role: admin, tenant: org}]}
`

func openReview(t *testing.T) *Service {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	s, err := Open(context.Background(), st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.Parse("review.yaml", []byte(reviewPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), "test", doc, false); err != nil {
		t.Fatal(err)
	}
	return s
}

// A tenant admin whose admin role an earlier write of the same batch
// removes is refused, as it would be after that write alone.
func TestReviewBatchRevokedAdmin(t *testing.T) {
	t.Parallel()
	s := openReview(t)
	ctx := context.Background()
	tad := gatehouse.NewContext(ctx, gatehouse.Caller{Subject: gatehouse.User("tad@example.com"), Credential: gatehouse.CredentialToken})
	errs := queued(t, s,
		func() error {
			_, err := s.Unbind(ctx, "test", gatehouse.User("tad@example.com"), "admin", "org")
			return err
		},
		func() error {
			_, err := s.Bind(tad, "test", gatehouse.User("ann@example.com"), gatehouse.Assignment{Role: "user", Tenant: "store-a"})
			return err
		},
	)
	if errs[0] != nil {
		t.Fatalf("unbind: %v", errs[0])
	}
	if !errors.Is(errs[1], gatehouse.ErrForbidden) {
		t.Errorf("bind by the revoked tenant admin = %v, want ErrForbidden", errs[1])
	}
	checkKept(t, s)
}

// A tenant admin's write, then the removal of its admin role, both
// commit: in this order each is allowed.
func TestReviewBatchAdminThenRevoked(t *testing.T) {
	t.Parallel()
	s := openReview(t)
	ctx := context.Background()
	tad := gatehouse.NewContext(ctx, gatehouse.Caller{Subject: gatehouse.User("tad@example.com"), Credential: gatehouse.CredentialToken})
	errs := queued(t, s,
		func() error {
			_, err := s.Bind(tad, "test", gatehouse.User("ann@example.com"), gatehouse.Assignment{Role: "user", Tenant: "store-a"})
			return err
		},
		func() error {
			_, err := s.Unbind(ctx, "test", gatehouse.User("tad@example.com"), "admin", "org")
			return err
		},
		func() error {
			_, err := s.Bind(tad, "test", gatehouse.User("bob@example.com"), gatehouse.Assignment{Role: "user", Tenant: "store-a"})
			return err
		},
	)
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("bind, unbind: %v, %v", errs[0], errs[1])
	}
	if !errors.Is(errs[2], gatehouse.ErrForbidden) {
		t.Errorf("bind after the revocation = %v, want ErrForbidden", errs[2])
	}
	checkKept(t, s)
}

func putUser(s *Service, body string) func() error {
	return func() error {
		var u gatehouse.UserEntry
		if err := json.Unmarshal([]byte(body), &u); err != nil {
			return err
		}
		_, _, err := s.PutObject(context.Background(), "test", gatehouse.KindUser, u.Email, []byte(body))
		return err
	}
}

// Two users given aliases that differ only in case in one batch: aliases
// are exact, so both commit, as the whole-policy path allows, and each
// names its own user.
func TestReviewBatchAliasCase(t *testing.T) {
	t.Parallel()
	s := openReview(t)
	errs := queued(t, s,
		putUser(s, `{"email": "ann@example.com", "aliases": ["A@x.com"], "roles": [{"role": "user"}]}`),
		putUser(s, `{"email": "bob@example.com", "aliases": ["a@x.com"], "roles": [{"role": "user"}]}`),
		putUser(s, `{"email": "A@x.com"}`),
	)
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("aliases: %v, %v", errs[0], errs[1])
	}
	if errs[2] == nil {
		t.Error("user created with an email another user's alias normalizes to: committed")
	}
	for alias, want := range map[string]string{"A@x.com": "ann@example.com", "a@x.com": "bob@example.com"} {
		if got, _ := s.Snapshot().UserEmail(alias); got != want {
			t.Errorf("alias %s names %q, want %s", alias, got, want)
		}
	}
	checkKept(t, s)
}

// One write frees an alias, the next takes it: both commit, as in
// sequence.
func TestReviewBatchAliasMoves(t *testing.T) {
	t.Parallel()
	s := openReview(t)
	if err := putUser(s, `{"email": "ann@example.com", "aliases": ["a@x.com"], "roles": [{"role": "user"}]}`)(); err != nil {
		t.Fatal(err)
	}
	errs := queued(t, s,
		putUser(s, `{"email": "ann@example.com", "roles": [{"role": "user"}]}`),
		putUser(s, `{"email": "bob@example.com", "aliases": ["A@x.com"], "roles": [{"role": "user"}]}`),
	)
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	checkKept(t, s)
}

// A user created and deleted in one batch, then a user created with the
// email another write gives as an alias.
func TestReviewBatchCreateDelete(t *testing.T) {
	t.Parallel()
	s := openReview(t)
	errs := queued(t, s,
		putUser(s, `{"email": "new@example.com", "roles": [{"role": "user"}]}`),
		func() error {
			_, err := s.DeleteObject(context.Background(), "test", gatehouse.KindUser, "new@example.com")
			return err
		},
		putUser(s, `{"email": "ann@example.com", "aliases": ["Other@example.com"], "roles": [{"role": "user"}]}`),
		putUser(s, `{"email": "other@example.com"}`),
	)
	for i, err := range errs[:3] {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if errs[3] == nil {
		t.Errorf("user created with another's alias as email: committed")
	}
	stored, _, err := s.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stored.User("new@example.com") != nil {
		t.Error("deleted user still stored")
	}
	checkKept(t, s)
}

// A write whose context is cancelled while queued is not committed, and
// the batch goes on without it.
func TestReviewBatchCancelled(t *testing.T) {
	t.Parallel()
	s := openReview(t)
	cctx, cancel := context.WithCancel(context.Background())
	errs := queued(t, s,
		func() error {
			cancel()
			_, err := s.Bind(cctx, "test", gatehouse.User("ann@example.com"), gatehouse.Assignment{Role: "admin", Tenant: "org"})
			return err
		},
		func() error {
			_, err := s.Bind(context.Background(), "test", gatehouse.User("bob@example.com"), gatehouse.Assignment{Role: "admin", Tenant: "org"})
			return err
		},
	)
	if !errors.Is(errs[0], context.Canceled) {
		t.Errorf("cancelled write = %v, want context.Canceled", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("second write: %v", errs[1])
	}
	stored, _, err := s.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.User("ann@example.com").Roles) != 1 {
		t.Error("cancelled write committed")
	}
	checkKept(t, s)
}

// A follower catches up on a batch of creates and deletes: its next
// single-subject writes see the created users' aliases and the deleted
// user gone, and its kept policy is the stored one.
func TestReviewFollowerCatchUp(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	open := func() *Service {
		s, err := Open(context.Background(), st, Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	w := open()
	doc, err := policy.Parse("review.yaml", []byte(reviewPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Apply(context.Background(), "test", doc, false); err != nil {
		t.Fatal(err)
	}
	f := open()
	errs := queued(t, w,
		putUser(w, `{"email": "new1@example.com", "aliases": ["sub-1"]}`),
		putUser(w, `{"email": "new2@example.com", "aliases": ["sub-2"]}`),
		func() error {
			_, err := w.DeleteObject(context.Background(), "test", gatehouse.KindUser, "ann@example.com")
			return err
		},
		func() error {
			_, err := w.DeleteObject(context.Background(), "test", gatehouse.KindUser, "new1@example.com")
			return err
		},
	)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if _, err := f.Bind(context.Background(), "test", gatehouse.User("bob@example.com"), gatehouse.Assignment{Role: "admin", Tenant: "org"}); err != nil {
		t.Fatal(err)
	}
	checkKept(t, f)
	if err := putUser(f, `{"email": "carl@example.com", "aliases": ["sub-2"]}`)(); err == nil {
		t.Error("follower gave a new user another user's alias")
	}
	if err := putUser(f, `{"email": "sub-2@x.com", "aliases": ["sub-1"]}`)(); err != nil {
		t.Errorf("follower giving the deleted user's alias: %v", err)
	}
	if _, err := f.Bind(context.Background(), "test", gatehouse.User("ann@example.com"), gatehouse.Assignment{Role: "user"}); err != nil {
		t.Logf("bind of the deleted user: %v", err)
	}
	checkKept(t, f)
	// The writer, behind the follower's writes, catches up on its next.
	if _, err := w.Bind(context.Background(), "test", gatehouse.User("bob@example.com"), gatehouse.Assignment{Role: "user", Tenant: "org"}); err != nil {
		t.Fatal(err)
	}
	checkKept(t, w)
}

// Imports race with single-subject writes: every bind of a user no
// import touches is kept, every import's users hold what it set or a later
// bind added, and the kept policy is the stored one.
func TestReviewImportRace(t *testing.T) {
	t.Parallel()
	s := openReview(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 20 {
		wg.Go(func() {
			if err := createOrgAdmin(s, fmt.Sprintf("u%d@example.com", i)); err != nil {
				errs <- err
			}
		})
	}
	for i := range 5 {
		wg.Go(func() {
			records := []UserRecord{{Email: fmt.Sprintf("i%d@example.com", i), Roles: []string{"user"}}, {Email: "bob@example.com", Roles: []string{"user"}}}
			if _, err := s.ImportUsers(ctx, "test", "review", records, false); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	stored, _, err := s.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		u := stored.User(fmt.Sprintf("u%d@example.com", i))
		if u == nil || len(u.Roles) != 1 || len(u.Tenants) != 1 {
			t.Errorf("user %d: %+v", i, u)
		}
	}
	for i := range 5 {
		if stored.User(fmt.Sprintf("i%d@example.com", i)) == nil {
			t.Errorf("imported user %d missing", i)
		}
	}
	checkKept(t, s)
}

// A tenant admin acting by an alias is refused once an earlier write of
// its batch revokes its admin role; of two superusers deleted in one
// batch, the second is refused.
func TestReviewBatchAliasCallerAndSuperusers(t *testing.T) {
	t.Parallel()
	s := openReview(t)
	ctx := context.Background()
	if err := putUser(s, `{"email": "tad@example.com", "aliases": ["Sub-T"], "tenants": ["org", "store-a"], "roles": [{"role": "admin", "tenant": "org"}]}`)(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Promote(ctx, "test", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	tad := gatehouse.NewContext(ctx, gatehouse.Caller{Subject: gatehouse.User("Sub-T"), Credential: gatehouse.CredentialToken})
	del := func(email string) func() error {
		return func() error {
			_, err := s.DeleteObject(ctx, "test", gatehouse.KindUser, email)
			return err
		}
	}
	errs := queued(t, s,
		func() error {
			_, err := s.Unbind(ctx, "test", gatehouse.User("tad@example.com"), "admin", "org")
			return err
		},
		func() error {
			_, err := s.Bind(tad, "test", gatehouse.User("ann@example.com"), gatehouse.Assignment{Role: "user", Tenant: "store-a"})
			return err
		},
		del("root@example.com"),
		del("bob@example.com"),
	)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("unbind, first delete: %v, %v", errs[0], errs[2])
	}
	if !errors.Is(errs[1], gatehouse.ErrForbidden) {
		t.Errorf("bind by the revoked tenant admin named by its alias = %v, want ErrForbidden", errs[1])
	}
	if !errors.Is(errs[3], gatehouse.ErrLastSuperuser) {
		t.Errorf("deleting the last superuser = %v, want ErrLastSuperuser", errs[3])
	}
	checkKept(t, s)
}

// Two instances batch single-subject writes into one store at once: the
// losing batches are retried, no write is lost, and each instance keeps
// the stored policy once caught up.
func TestReviewTwoWriters(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	open := func() *Service {
		s, err := Open(ctx, st, Config{MaxRetries: 100})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := open()
	doc, err := policy.Parse("review.yaml", []byte(reviewPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, "test", doc, false); err != nil {
		t.Fatal(err)
	}
	b := open()
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if err := createOrgAdmin(s, fmt.Sprintf("w%d@example.com", i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	stored, _, err := a.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if u := stored.User(fmt.Sprintf("w%d@example.com", i)); u == nil || len(u.Roles) != 1 {
			t.Errorf("user %d: %+v", i, u)
		}
	}
	for _, s := range []*Service{a, b} {
		if _, err := s.Bind(ctx, "test", gatehouse.User("bob@example.com"), gatehouse.Assignment{Role: "user", Tenant: "org"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Bind(ctx, "test", gatehouse.User("ann@example.com"), gatehouse.Assignment{Role: "user", Tenant: "org"}); err != nil {
		t.Fatal(err)
	}
	checkKept(t, a)
	if _, err := b.Bind(ctx, "test", gatehouse.User("ann@example.com"), gatehouse.Assignment{Role: "admin", Tenant: "org"}); err != nil {
		t.Fatal(err)
	}
	checkKept(t, b)
}

// A write refused after claiming an alias does not keep it from the next
// write of its batch, nor from later writes.
func TestReviewBatchRefusedAlias(t *testing.T) {
	t.Parallel()
	s := openReview(t)
	errs := queued(t, s,
		putUser(s, `{"email": "ann@example.com", "aliases": ["sub-x"], "roles": [{"role": "no such role"}]}`),
		putUser(s, `{"email": "bob@example.com", "aliases": ["sub-x"], "roles": [{"role": "user"}]}`),
	)
	if !errors.Is(errs[0], gatehouse.ErrInvalid) {
		t.Errorf("unknown role = %v, want ErrInvalid", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("alias the refused write named: %v", errs[1])
	}
	if got, _ := s.Snapshot().UserEmail("sub-x"); got != "bob@example.com" {
		t.Errorf("sub-x names %q, want bob@example.com", got)
	}
	checkKept(t, s)
}

// createOrgAdmin creates the user email seeing tenant org and assigns it
// the admin role there: two single-subject writes.
func createOrgAdmin(s *Service, email string) error {
	ctx := context.Background()
	if _, err := s.SetUserTenants(ctx, "test", email, []string{"org"}); err != nil {
		return err
	}
	_, err := s.Bind(ctx, "test", gatehouse.User(email), gatehouse.Assignment{Role: "admin", Tenant: "org"})
	return err
}
