package policy

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// Marshal's output for testdata/sample.yaml is pinned, stable under any
// order of the input's objects, and parses back to the same policy.
func TestMarshalSample(t *testing.T) {
	doc, err := ParseFile(filepath.Join("testdata", "sample.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"yaml", "json"} {
		out, err := Marshal(doc.Policy, format)
		if err != nil {
			t.Fatalf("Marshal(sample, %s) = %v", format, err)
		}
		checkGolden(t, "sample."+format, string(out))

		shuffled := deepCopy(doc.Policy)
		r := rand.New(rand.NewPCG(1, 2))
		shuffle(r, shuffled.Permissions)
		shuffle(r, shuffled.Roles)
		shuffle(r, shuffled.Tenants)
		shuffle(r, shuffled.Users)
		shuffle(r, shuffled.Tools)
		if again, err := Marshal(shuffled, format); err != nil || string(again) != string(out) {
			t.Errorf("Marshal(shuffled sample, %s) differs from Marshal(sample, %s): %v", format, format, err)
		}

		back, err := Parse("sample."+format, out)
		if err != nil {
			t.Fatalf("Parse(Marshal(sample, %s)) = %v", format, err)
		}
		if changes, err := Diff(doc.Policy, back.Policy); err != nil || len(changes) != 0 {
			t.Errorf("%s round trip changed the sample (%v):\n%s", format, err, FormatDiff(changes))
		}
		bob := back.Policy.User("bob@acme.com")
		if bob == nil || bob.Tenants == nil || back.Policy.User("root@example.com").Tenants != nil {
			t.Errorf("%s round trip lost nil versus empty tenants", format)
		}
	}
}

func shuffle[T any](r *rand.Rand, s []T) {
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

// An empty policy exports as an empty document that parses back.
func TestMarshalEmpty(t *testing.T) {
	for _, format := range []string{"yaml", "json"} {
		out, err := Marshal(&gatehouse.Policy{}, format)
		if err != nil {
			t.Fatalf("Marshal(empty, %s) = %v", format, err)
		}
		if _, err := Parse("empty."+format, out); err != nil {
			t.Errorf("Parse(Marshal(empty, %s) = %q) = %v", format, out, err)
		}
	}
}

// An export is a complete document: applied over any stored policy it
// reproduces the exported one, empty sections included.
func TestMarshalIsComplete(t *testing.T) {
	stored := &gatehouse.Policy{
		Permissions: []gatehouse.Permission{{Name: "p"}},
		Users:       []gatehouse.UserEntry{{Email: "a@x.io"}},
	}
	exported := &gatehouse.Policy{Permissions: []gatehouse.Permission{{Name: "q"}}}
	for _, format := range []string{"yaml", "json"} {
		out, err := Marshal(exported, format)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := Parse("export."+format, out)
		if err != nil {
			t.Fatalf("%s: %v\n%s", format, err, out)
		}
		changes, err := Diff(exported, Merge(stored, doc))
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != 0 {
			t.Errorf("%s export applied over another policy left:\n%s", format, FormatDiff(changes))
		}
	}
}
