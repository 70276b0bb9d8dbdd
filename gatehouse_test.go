package gatehouse_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/google/go-cmp/cmp"
)

func TestParseSubject(t *testing.T) {
	tests := []struct {
		in      string
		want    gatehouse.SubjectRef
		wantErr bool
	}{
		{"user:Alice@Example.com", gatehouse.User("alice@example.com"), false},
		{" bob@example.com ", gatehouse.User("bob@example.com"), false},
		{"agent:support-bot", gatehouse.AgentRef("support-bot"), false},
		{"agent:Bot", gatehouse.AgentRef("Bot"), false},
		{"user:", gatehouse.SubjectRef{}, true},
		{"user:   ", gatehouse.SubjectRef{}, true},
		{"agent:", gatehouse.SubjectRef{}, true},
		{"robot:x", gatehouse.SubjectRef{}, true},
		{"alice", gatehouse.SubjectRef{}, true},
		{"", gatehouse.SubjectRef{}, true},
	}
	for _, tt := range tests {
		got, err := gatehouse.ParseSubject(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSubject(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("ParseSubject(%q) error %v does not wrap ErrInvalid", tt.in, err)
		}
	}
	if s := gatehouse.User("a@b.c").String(); s != "user:a@b.c" {
		t.Errorf("String() = %q", s)
	}
	if s := (gatehouse.SubjectRef{}).String(); s != "" {
		t.Errorf("zero String() = %q, want empty", s)
	}
}

func TestErrorCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("x: %w", gatehouse.ErrInvalid), gatehouse.CodeInvalid},
		{gatehouse.NotFoundf("user %q", "a"), gatehouse.CodeNotFound},
		{fmt.Errorf("commit: %w", gatehouse.ErrConflict), gatehouse.CodeConflict},
		{gatehouse.ErrLastSuperuser, gatehouse.CodeLastSuperuser},
		{gatehouse.ErrUnavailable, gatehouse.CodeUnavailable},
		{gatehouse.ErrCorrupt, gatehouse.CodeCorrupt},
		{gatehouse.ErrSchemaTooNew, gatehouse.CodeSchemaTooNew},
		{fmt.Errorf("restore: %w", gatehouse.ErrNotEmpty), gatehouse.CodeNotEmpty},
		{errors.New("boom"), gatehouse.CodeInternal},
	}
	for _, tt := range tests {
		if got := gatehouse.ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// Objects and PolicyFromObjects are inverse, keep plan order and keep nil
// (default) tenant lists apart from empty ones.
func TestObjectsRoundTrip(t *testing.T) {
	p := &gatehouse.Policy{
		Settings:    gatehouse.Settings{DefaultTenants: []string{"general"}},
		Permissions: []gatehouse.Permission{{Name: "b"}, {Name: "a", Feature: "f"}},
		Plans:       []gatehouse.Plan{{Name: "free"}, {Name: "pro", Features: []string{"f"}}, {Name: "basic"}},
		Tenants:     []gatehouse.Tenant{{ID: "general"}, {ID: "org", Attributes: map[string]any{"tier": "gold"}}},
		Users: []gatehouse.UserEntry{
			{Email: "none@x.io", Tenants: []string{}},
			{Email: "default@x.io"},
		},
	}
	objs, err := p.Objects()
	if err != nil {
		t.Fatal(err)
	}
	back, err := gatehouse.PolicyFromObjects(objs)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{back.Plans[0].Name, back.Plans[1].Name, back.Plans[2].Name}; !cmp.Equal(got, []string{"free", "pro", "basic"}) {
		t.Errorf("plan order = %v, want tier order", got)
	}
	if back.Permissions[0].Name != "a" {
		t.Errorf("permissions not sorted by name: %+v", back.Permissions)
	}
	if u := back.User("NONE@x.io"); u == nil || u.Tenants == nil || len(u.Tenants) != 0 {
		t.Errorf("explicit empty tenant list lost: %+v", u)
	}
	if u := back.User("default@x.io"); u == nil || u.Tenants != nil {
		t.Errorf("default tenant list became explicit: %+v", u)
	}
	if _, err := gatehouse.PolicyFromObjects([]gatehouse.Object{{Kind: "widget", ID: "x", Body: []byte("{}")}}); !errors.Is(err, gatehouse.ErrCorrupt) {
		t.Errorf("unknown kind: %v, want ErrCorrupt", err)
	}
	if _, err := gatehouse.PolicyFromObjects([]gatehouse.Object{{Kind: gatehouse.KindRole, ID: "x", Body: []byte("{")}}); !errors.Is(err, gatehouse.ErrCorrupt) {
		t.Errorf("bad body: %v, want ErrCorrupt", err)
	}
	clone, err := p.Clone()
	if err != nil {
		t.Fatal(err)
	}
	clone.Tenants[1].Attributes["tier"] = "lead"
	if p.Tenants[1].Attributes["tier"] != "gold" {
		t.Error("Clone shares attribute maps with the original")
	}
}

// A PolicyBuilder given the objects in any order builds the policy it
// builds from them in SortObjects' order: sections by id, plans by tier.
func TestPolicyBuilderAnyOrder(t *testing.T) {
	p := &gatehouse.Policy{
		Permissions: []gatehouse.Permission{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Plans:       []gatehouse.Plan{{Name: "free"}, {Name: "pro"}, {Name: "basic"}},
		Tenants:     []gatehouse.Tenant{{ID: "t1"}, {ID: "t2", Parent: "t1"}},
		Users:       []gatehouse.UserEntry{{Email: "a@x.io"}, {Email: "b@x.io"}, {Email: "c@x.io", Superuser: true}},
	}
	objs, err := p.Objects()
	if err != nil {
		t.Fatal(err)
	}
	sorted := gatehouse.NewPolicyBuilder()
	for _, o := range objs {
		if err := sorted.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	want := sorted.Policy()
	for seed := range uint64(20) {
		shuffled := slices.Clone(objs)
		rand.New(rand.NewPCG(seed, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b := gatehouse.NewPolicyBuilder()
		for _, o := range shuffled {
			if err := b.Add(o); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(want, b.Policy()); diff != "" {
			t.Fatalf("seed %d: policy from shuffled objects (-sorted +shuffled):\n%s", seed, diff)
		}
	}
	if got := []string{want.Plans[0].Name, want.Plans[1].Name, want.Plans[2].Name}; !slices.Equal(got, []string{"free", "pro", "basic"}) {
		t.Errorf("plans %v, want tier order", got)
	}
}

func TestChangeOp(t *testing.T) {
	for _, tt := range []struct {
		c    gatehouse.Change
		want gatehouse.Op
	}{
		{gatehouse.Change{After: []byte("{}")}, gatehouse.OpCreate},
		{gatehouse.Change{Before: []byte("{}")}, gatehouse.OpDelete},
		{gatehouse.Change{Before: []byte("{}"), After: []byte("{}")}, gatehouse.OpUpdate},
	} {
		if got := tt.c.Op(); got != tt.want {
			t.Errorf("Op(%+v) = %s, want %s", tt.c, got, tt.want)
		}
	}
}

// Every kind's Section is a top-level key of the document, in Kinds order.
func TestKindSectionsMatchPolicyFields(t *testing.T) {
	typ := reflect.TypeOf(gatehouse.Policy{})
	if typ.NumField() != len(gatehouse.Kinds) {
		t.Fatalf("Policy has %d sections, Kinds %d", typ.NumField(), len(gatehouse.Kinds))
	}
	for i, k := range gatehouse.Kinds {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if k.Section() != tag || k.Rank() != i {
			t.Errorf("kind %s: section %q rank %d, want %q rank %d", k, k.Section(), k.Rank(), tag, i)
		}
	}
	if gatehouse.Kind("widget").Rank() != len(gatehouse.Kinds) {
		t.Error("unknown kind does not sort last")
	}
}

func TestChangeValidate(t *testing.T) {
	body := []byte(`{"name":"x"}`)
	tests := []struct {
		c  gatehouse.Change
		ok bool
	}{
		{gatehouse.Change{Kind: gatehouse.KindRole, ID: "x", After: body}, true},
		{gatehouse.Change{Kind: gatehouse.KindRole, ID: "x", Before: body}, true},
		{gatehouse.Change{Kind: "widget", ID: "x", After: body}, false},
		{gatehouse.Change{Kind: gatehouse.KindRole, After: body}, false},
		{gatehouse.Change{Kind: gatehouse.KindRole, ID: "a\x00b", After: body}, false},
		{gatehouse.Change{Kind: gatehouse.KindRole, ID: "x"}, false},
		{gatehouse.Change{Kind: gatehouse.KindRole, ID: "x", After: []byte("{")}, false},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, gatehouse.ErrInvalid)) {
			t.Errorf("Validate(%+v) = %v, want ok %v", tt.c, err, tt.ok)
		}
	}
}
