package policy

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// Marshal's output for testdata/sample.yaml is pinned, stable under any
// order of the input's objects, and parses back to the same policy.
func TestMarshalSample(t *testing.T) {
	doc, err := ParseFile(filepath.Join("testdata", "sample.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"yaml", "json", "jsonl"} {
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
	for _, format := range []string{"yaml", "json", "jsonl"} {
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
	for _, format := range []string{"yaml", "json", "jsonl"} {
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

// marshalWhole encodes the document in one piece, as Marshal did before it
// streamed: Encode must write exactly these bytes.
func marshalWhole(t *testing.T, p *gatehouse.Policy, format string) []byte {
	t.Helper()
	objs, err := p.Objects()
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := gatehouse.PolicyFromObjects(objs)
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(full(canonical)); err != nil {
		t.Fatal(err)
	}
	if format == "json" {
		return js.Bytes()
	}
	root, problem := jsonTree("", js.Bytes())
	if problem != nil {
		t.Fatal(problem)
	}
	quoteYAML11(root)
	var buf bytes.Buffer
	ye := yaml.NewEncoder(&buf)
	ye.SetIndent(2)
	if err := ye.Encode(root); err != nil {
		t.Fatal(err)
	}
	ye.Close()
	return buf.Bytes()
}

// Encode writes one object at a time and still writes the bytes the whole
// document encoded at once gives, for awkward strings too.
func TestEncodeStreamsTheSameDocument(t *testing.T) {
	doc, err := ParseFile(filepath.Join("testdata", "sample.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	awkward := deepCopy(doc.Policy)
	awkward.Permissions = append(awkward.Permissions,
		gatehouse.Permission{Name: "multi", Title: "line one\nline two\n\n  indented\n"},
		gatehouse.Permission{Name: "lead", Title: "  leading spaces\nand more"},
		gatehouse.Permission{Name: "yes", Title: "no"},
		gatehouse.Permission{Name: "html", Title: "a < b && c > d", Description: "tab\there: colon #hash"})
	for name, p := range map[string]*gatehouse.Policy{"sample": doc.Policy, "awkward": awkward, "empty": {}, "generated": enginetest.Generate(smallGenerated())} {
		for _, format := range []string{"yaml", "json"} {
			var got bytes.Buffer
			if err := Encode(&got, p, format); err != nil {
				t.Fatalf("Encode(%s, %s) = %v", name, format, err)
			}
			if want := marshalWhole(t, p, format); !bytes.Equal(got.Bytes(), want) {
				t.Errorf("Encode(%s, %s) differs from the document encoded whole:\n%s", name, format, cmp.Diff(string(want), got.String()))
			}
		}
	}
}
