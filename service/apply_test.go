package service

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// takenUsers is a users: section for reviewPolicy's store.
const takenUsers = `
users:
  - {email: root@example.com, superuser: true}
  - {email: ann@example.com, roles: [{role: admin}]}
  - {email: cy@example.com, roles: [{role: user, tenant: store-a}], attributes: {level: {n: 1}}}
`

func parseDoc(t *testing.T, src string) *policy.Document {
	t.Helper()
	doc, err := policy.Parse("doc.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// ApplyTaking commits what Apply commits; a dry run and an unchanged
// policy leave the document to the caller, a commit takes it, and a taken
// document is refused, by ApplyTaking and Apply alike.
func TestApplyTaking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, twin := openReview(t), openReview(t)

	doc := parseDoc(t, takenUsers)
	if res, err := s.ApplyTaking(ctx, "test", doc, true); err != nil || len(res.Changes) == 0 || !res.DryRun {
		t.Fatalf("dry run = %+v, %v; want changes", res, err)
	}
	if doc.Policy == nil {
		t.Fatal("a dry run took the document")
	}
	res, err := s.ApplyTaking(ctx, "test", doc, false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := twin.Apply(ctx, "test", parseDoc(t, takenUsers), false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(res.Changes, want.Changes, func(a, b gatehouse.Change) bool {
		return a.Kind == b.Kind && a.ID == b.ID && string(a.Before) == string(b.Before) && string(a.After) == string(b.After)
	}) {
		t.Errorf("ApplyTaking changes %+v, Apply %+v", res.Changes, want.Changes)
	}
	if doc.Policy != nil {
		t.Error("a commit left the document its policy")
	}
	for name, apply := range map[string]func(context.Context, string, *policy.Document, bool) (Result, error){
		"ApplyTaking": s.ApplyTaking, "Apply": s.Apply,
	} {
		if _, err := apply(ctx, "test", doc, false); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("%s of a taken document = %v, want ErrInvalid", name, err)
		}
	}
	again := parseDoc(t, takenUsers)
	if res, err := s.ApplyTaking(ctx, "test", again, false); err != nil || len(res.Changes) != 0 {
		t.Errorf("applying it again = %+v, %v; want no changes", res, err)
	}
	if again.Policy == nil {
		t.Error("an unchanged policy took the document")
	}
	checkKept(t, s)
	stored, _, err := s.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	twinStored, _, err := twin.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := stored.Objects()
	wantObjs, _ := twinStored.Objects()
	if g, w := objectLines(got), objectLines(wantObjs); !slices.Equal(g, w) {
		t.Errorf("stored after ApplyTaking %q, after Apply %q", g, w)
	}
}

// A document ApplyTaking took loses its commit to another writer: it is
// merged again with what that writer committed, and a problem only the
// other commit made is refused with its path, without the document's
// lines, which the first attempt's sorting no longer matches.
func TestApplyTakingRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		other func(other *Service) error
		want  error
	}{
		{"merged with the other commit", func(other *Service) error {
			_, _, err := other.PutObject(ctx, "other", gatehouse.KindRole, "extra", []byte(`{"permissions": ["chat.view"]}`))
			return err
		}, nil},
		{"refused for the other commit", func(other *Service) error {
			_, err := other.DeleteObject(ctx, "other", gatehouse.KindRole, "spare")
			return err
		}, gatehouse.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem, other := openReviewStore(t)
			if _, _, err := other.PutObject(ctx, "test", gatehouse.KindRole, "spare", []byte(`{"permissions": ["chat.view"]}`)); err != nil {
				t.Fatal(err)
			}
			s, armed := openInterposed(t, mem, func() {
				if err := tc.other(other); err != nil {
					t.Errorf("the other writer: %v", err)
				}
			})
			armed.armed.Store(true)
			doc := parseDoc(t, takenUsers+"  - {email: dee@example.com, roles: [{role: spare}]}\n  - {email: al@example.com}\n")
			_, err := s.ApplyTaking(ctx, "test", doc, false)
			stored, _, lerr := s.load(ctx)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if stored.User("dee@example.com") == nil || !slices.ContainsFunc(stored.Roles, func(r gatehouse.Role) bool { return r.Name == "extra" }) {
					t.Errorf("stored users %v, roles %v: want the document's users and the other writer's role", stored.Users, stored.Roles)
				}
				checkKept(t, s)
				return
			}
			var perr *policy.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &perr) {
				t.Fatalf("ApplyTaking = %v, want %v as a *policy.Error", err, tc.want)
			}
			for _, p := range perr.Problems {
				if p.Line != 0 {
					t.Errorf("problem %+v: a line the sorted document no longer has", p)
				}
			}
			if !slices.ContainsFunc(perr.Problems, func(p policy.Problem) bool { return p.Path != "" }) {
				t.Errorf("problems %+v: want their paths", perr.Problems)
			}
			if stored.User("dee@example.com") != nil {
				t.Error("the refused document's users were stored")
			}
		})
	}
}
