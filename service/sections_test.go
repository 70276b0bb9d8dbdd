package service

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/policy"
)

// sectionWrite is a PutObject (body set) or DeleteObject of an object of
// a section other than users and agents, by the caller of ctx.
type sectionWrite struct {
	ctx  context.Context
	kind gatehouse.Kind
	id   string
	body string
}

// batched runs w through PutObject or DeleteObject, which batch it.
func (w sectionWrite) batched(s *Service) (Result, error) {
	if w.body == "" {
		return s.DeleteObject(w.ctx, "test", w.kind, w.id)
	}
	res, _, err := s.PutObject(w.ctx, "test", w.kind, w.id, []byte(w.body))
	return res, err
}

// whole runs w's change function through Update, on a clone of the whole
// policy, as every write did before section batches.
func (w sectionWrite) whole(s *Service) (Result, error) {
	if w.body == "" {
		return s.Update(w.ctx, "test", string(w.kind)+".delete", deleteFn(w.kind, w.id))
	}
	obj, err := decodeObject(w.kind, w.id, []byte(w.body))
	if err != nil {
		return Result{}, err
	}
	var created bool
	return s.Update(w.ctx, "test", string(w.kind)+".put", s.putFn(w.ctx, obj, &created))
}

// applyReview applies reviewPolicy to s.
func applyReview(t *testing.T, s *Service) {
	t.Helper()
	doc, err := policy.Parse("review.yaml", []byte(reviewPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), "test", doc, false); err != nil {
		t.Fatal(err)
	}
}

// Writes of roles, tenants, permissions and bundles queued behind the
// writers' lock commit in as few versions as they allow, each with its
// own result, and end where the same writes, one by one on a clone of the
// whole policy, end: a refused write (an unknown permission, a role still
// held, a missing bundle) leaves the others committed, and is decided at
// the start of the next batch when writes were staged before it; a second
// write of an object already in the batch, and a tenant admin's write,
// start a new one; a role may use a permission created earlier in its
// batch — on every store, audited, the chain verifying.
func TestBatchedSectionWrites(t *testing.T) {
	t.Parallel()
	onEveryStore(t, testBatchedSectionWrites)
}

func testBatchedSectionWrites(t *testing.T, s *Service) {
	ctx := context.Background()
	tad := gatehouse.NewContext(ctx, gatehouse.Caller{Subject: gatehouse.User("tad@example.com"), Credential: gatehouse.CredentialToken})
	root := gatehouse.NewContext(ctx, gatehouse.Caller{Subject: gatehouse.User("root@example.com"), Credential: gatehouse.CredentialToken})
	writes := []struct {
		name string
		w    sectionWrite
		want error // nil: committed
	}{
		{"role r0", sectionWrite{ctx, gatehouse.KindRole, "r0", `{"permissions": ["chat.view"]}`}, nil},
		{"role r1 by a superuser", sectionWrite{root, gatehouse.KindRole, "r1", `{"permissions": ["chat.write"]}`}, nil},
		{"unknown permission", sectionWrite{ctx, gatehouse.KindRole, "bad", `{"permissions": ["no.such"]}`}, gatehouse.ErrInvalid},
		{"role still held", sectionWrite{ctx, gatehouse.KindRole, "user", ""}, gatehouse.ErrInvalid},
		{"tenant store-b", sectionWrite{ctx, gatehouse.KindTenant, "store-b", `{"parent": "org"}`}, nil},
		{"role r0 again", sectionWrite{ctx, gatehouse.KindRole, "r0", `{"permissions": ["chat.view", "chat.write"]}`}, nil},
		{"missing bundle", sectionWrite{ctx, gatehouse.KindBundle, "none", ""}, gatehouse.ErrNotFound},
		{"permission report.view", sectionWrite{root, gatehouse.KindPermission, "report.view", `{}`}, nil},
		{"role r2 with it", sectionWrite{ctx, gatehouse.KindRole, "r2", `{"permissions": [" report.view "]}`}, nil},
		{"tenant store-c by a tenant admin", sectionWrite{tad, gatehouse.KindTenant, "store-c", `{"parent": "org"}`}, nil},
		{"role by a tenant admin", sectionWrite{tad, gatehouse.KindRole, "r3", `{"permissions": ["chat.view"]}`}, gatehouse.ErrForbidden},
		{"tenant store-d", sectionWrite{ctx, gatehouse.KindTenant, "store-d", `{"parent": "store-c"}`}, nil},
	}
	ref, err := Open(ctx, memstore.New(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	// A user's change first, which keeps the users in chunks: the
	// refused delete of a role still held must see them.
	for _, svc := range []*Service{s, ref} {
		applyReview(t, svc)
		if _, err := svc.SetUserTenants(ctx, "test", "bob@example.com", []string{"org"}); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	chunked := s.current.users != nil
	s.mu.Unlock()
	if !chunked {
		t.Fatal("the kept users are not in chunks after a user's change")
	}
	start := s.Snapshot().Version()

	results := make([]Result, len(writes))
	var do []func() error
	for i, w := range writes {
		do = append(do, func() (err error) {
			results[i], err = w.w.batched(s)
			return err
		})
	}
	errs := queued(t, s, do...)
	committed := 0
	for i, w := range writes {
		want, wantErr := w.w.whole(ref)
		switch {
		case w.want == nil && errs[i] != nil, w.want != nil && !errors.Is(errs[i], w.want):
			t.Errorf("%s: %v, want %v", w.name, errs[i], w.want)
		case (wantErr == nil) != (errs[i] == nil):
			t.Errorf("%s: %v, one by one on the whole policy %v", w.name, errs[i], wantErr)
		case !reflect.DeepEqual(results[i].Changes, want.Changes):
			t.Errorf("%s: changes %+v, one by one on the whole policy %+v", w.name, results[i].Changes, want.Changes)
		case errs[i] == nil:
			committed++
		}
	}
	version := func(i int) int64 { return results[i].Version }
	// A refused write after a staged one ends its batch and is decided
	// alone at the start of the next; so do the second write of r0 and the
	// tenant admin's writes.
	for _, b := range []struct {
		writes  []int
		version int64
	}{
		{[]int{0, 1}, start + 1},
		{[]int{4, 5}, start + 2},
		{[]int{7, 8}, start + 3},
		{[]int{9}, start + 4},
		{[]int{11}, start + 5},
	} {
		for _, i := range b.writes {
			if version(i) != b.version {
				t.Errorf("%s: version %d, want %d", writes[i].name, version(i), b.version)
			}
		}
	}
	if end := s.Snapshot().Version(); end != start+5 {
		t.Errorf("%d committed writes ended at version %d, want %d", committed, end, start+5)
	}

	stored, v, err := s.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := ref.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gotObjs, err := stored.Objects()
	if err != nil {
		t.Fatal(err)
	}
	wantObjs, err := want.Objects()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := objectLines(gotObjs), objectLines(wantObjs); !slices.Equal(got, want) {
		t.Errorf("stored policy differs from the one the writes make one by one:\n got %q\nwant %q", got, want)
	}
	events, err := s.store.ListAudit(ctx, gatehouse.AuditFilter{Kind: gatehouse.AuditKindChange, Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	refEvents, err := ref.store.ListAudit(ctx, gatehouse.AuditFilter{Kind: gatehouse.AuditKindChange, Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(refEvents) {
		t.Errorf("%d change events, want %d: one per change", len(events), len(refEvents))
	}
	if rep, err := s.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
	assertKeptEqualsStored(t, s, stored, v)
}

// A section write whose change function panics breaks its batch off:
// every write of it is refused with errWriteFailed, nothing is committed,
// and the next write starts from the stored policy.
func TestSectionPanicRefusesTheBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openReview(t)
	before := s.Snapshot().Version()
	var do []func() error
	for i := range 3 {
		obj, err := decodeObject(gatehouse.KindTenant, fmt.Sprintf("t%d", i), []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		var created bool
		put := s.putFn(ctx, obj, &created)
		do = append(do, func() error {
			_, err := s.updateSection(ctx, "t", "test.write", gatehouse.KindTenant, func(p *gatehouse.Policy) error {
				if i == 1 {
					panic("change function broke")
				}
				return put(p)
			})
			return err
		})
	}
	for i, err := range queued(t, s, do...) {
		if !errors.Is(err, errWriteFailed) {
			t.Errorf("write %d: %v, want %v", i, err, errWriteFailed)
		}
	}
	if _, v, err := s.load(ctx); err != nil || v != before {
		t.Fatalf("store at version %d (%v), want %d: nothing committed", v, err, before)
	}
	if _, _, err := s.PutObject(ctx, "t", gatehouse.KindTenant, "t0", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	checkKept(t, s)
}

// A batch of section writes whose commit fails fails each write with the
// store's error and leaves the kept policy and the snapshot as they were;
// the same writes commit once the store is back.
func TestSectionCommitFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &downStore{Store: memstore.New()}
	s, err := Open(ctx, store, Config{})
	if err != nil {
		t.Fatal(err)
	}
	applyReview(t, s)
	writes := func() []error {
		var do []func() error
		for _, id := range []string{"r0", "r1", "r2"} {
			do = append(do, func() error {
				_, _, err := s.PutObject(ctx, "t", gatehouse.KindRole, id, []byte(`{"permissions": ["chat.view"]}`))
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
	if v != before || s.Snapshot().Version() != before || len(stored.Roles) != 2 {
		t.Fatalf("store at %d with %d roles, snapshot at %d, want both at %d with 2", v, len(stored.Roles), s.Snapshot().Version(), before)
	}
	assertKeptEqualsStored(t, s, stored, v)
	store.down.Store(false)
	for i, err := range writes() {
		if err != nil {
			t.Errorf("write %d with the store back: %v", i, err)
		}
	}
	if stored, v, err = s.load(ctx); err != nil {
		t.Fatal(err)
	}
	if v != before+1 || len(stored.Roles) != 5 {
		t.Errorf("store at %d with %d roles, want %d with 5: three roles in one batch", v, len(stored.Roles), before+1)
	}
	assertKeptEqualsStored(t, s, stored, v)
}

// objectLines returns objs as "kind/id body" lines, for a readable diff.
func objectLines(objs []gatehouse.Object) []string {
	lines := make([]string, len(objs))
	for i, o := range objs {
		lines[i] = fmt.Sprintf("%s/%s %s", o.Kind, o.ID, o.Body)
	}
	return lines
}

// A change of an existing role takes effect at once for its holders, and
// the snapshot, derived rather than compiled, decides as a fresh compile
// of the stored policy does.
func TestRoleChangeDecidesAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openReview(t)
	write := gatehouse.Request{Subject: gatehouse.User("ann@example.com"), Permission: "chat.write", Tenant: "general"}
	if d := s.Snapshot().Check(&write); d.Reason != gatehouse.ReasonGranted {
		t.Fatalf("before: %s", d.Reason)
	}
	for i, body := range []string{`{"permissions": ["chat.view"]}`, `{"permissions": ["chat.view", "chat.write"]}`, `{"permissions": []}`} {
		if _, _, err := s.PutObject(ctx, "test", gatehouse.KindRole, "user", []byte(body)); err != nil {
			t.Fatal(err)
		}
		want := gatehouse.ReasonGranted
		if i != 1 {
			want = gatehouse.ReasonPermissionMissing
		}
		if d := s.Snapshot().Check(&write); d.Reason != want {
			t.Errorf("after role user = %s: %s, want %s", body, d.Reason, want)
		}
		checkKept(t, s)
	}
}
