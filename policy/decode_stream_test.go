package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// streamed reports whether decodeInto decodes src as it reads it rather
// than from its whole tree.
func streamed(file string, src []byte) bool {
	d := &decoder{file: file, budget: 16*len(src) + 1024, strs: map[string]string{}}
	target := reflect.ValueOf(&gatehouse.Policy{}).Elem()
	begin := func(root *yaml.Node) *rootStream { return d.begin(root, target) }
	if strings.HasSuffix(file, ".json") {
		return (&jsonScanner{data: src, line: 1, col: 1, strs: d.strs}).stream(begin)
	}
	entries, starts, ok := yamlPlan(src)
	return ok && streamYAML(src, entries, starts, begin)
}

// checkStream checks that decodeInto decodes src exactly as decoding its
// whole tree does: the policy, the problems, the sections and every
// value's position; and that it streamed src when stream is true.
func checkStream(t *testing.T, file, src string, stream bool) {
	t.Helper()
	sameAsWhole(t, file, src)
	if s := streamed(file, []byte(src)); s != stream {
		t.Errorf("%s: streamed = %v, want %v", file, s, stream)
	}
}

// sameAsWhole checks that decodeInto decodes src exactly as decoding its
// whole tree does.
func sameAsWhole(t *testing.T, file, src string) {
	t.Helper()
	data := []byte(src)
	got, want := &gatehouse.Policy{}, &gatehouse.Policy{}
	gotPos, wantPos := positions{"": {1, 1}}, positions{"": {1, 1}}
	gotRes := decodeInto(file, data, got, gotPos)
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	isJSON := strings.HasSuffix(file, ".json") || len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
	wantRes := decodeWhole(file, data, want, isJSON,
		&decoder{file: file, pos: wantPos, budget: 16*len(data) + 1024, strs: map[string]string{}})
	if !wantRes.ok {
		gotPos, wantPos = nil, nil
	}
	opt := cmp.AllowUnexported(decoded{}, position{})
	if diff := cmp.Diff(wantRes, gotRes, opt); diff != "" {
		t.Errorf("%s: decodeInto result differs from the whole tree's (-tree +stream):\n%s", file, diff)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: decodeInto policy differs from the whole tree's (-tree +stream):\n%s", file, diff)
	}
	if diff := cmp.Diff(wantPos, gotPos, opt); diff != "" {
		t.Errorf("%s: decodeInto positions differ from the whole tree's (-tree +stream):\n%s", file, diff)
	}
}

// FuzzStreamEqualsWhole: whatever the document, hostile or broken, decoding
// it as it is read gives what decoding its whole tree gives. The seeds are
// TestStreamShapes' documents in both forms.
func FuzzStreamEqualsWhole(f *testing.F) {
	for _, src := range []string{
		"users:\n  - email: a@b.io\n  - email: c@d.io\n    tenants: 5\nusers:\n  - email: x@y.io\n",
		"# a policy\n\nusers:   # the users\n- email: a@b.io\n  attributes: {x: &a [1, 2], y: *a}\n- email: b@b.io\n  name: |\n    two\n    lines\n",
		"tenants: [{id: a}, {id: b}]\nsettings: {default_tenants: &d [a, b]}\nusers:\n  - {email: x@y.io, tenants: *d}\n",
		"users:\n  - email: \"a@b.io\n  - x\"\n",
		"<<: {users: []}\n",
	} {
		f.Add(false, src)
	}
	for _, src := range []string{
		`{"users": [{"email": "a@b.io"}, {"email": "c@d.io", "tenants": 5}], "users": [{"email": "x@y.io"}]}`,
		"{\n\"users\": [\n{\"email\": \"a@b.io\", \"email\": \"b@b.io\"}\n]\n}\n",
		`{"users": [{"email": "a@b.io"},]}`,
	} {
		f.Add(true, src)
	}
	f.Fuzz(func(t *testing.T, isJSON bool, src string) {
		if !utf8.ValidString(src) {
			t.Skip("decodeInto refuses invalid UTF-8 before decoding either way")
		}
		file := "p.yaml"
		if isJSON {
			file = "p.json"
		}
		sameAsWhole(t, file, src)
	})
}

// generatedForms is a small generated policy as minified and indented
// JSON and as YAML, by file name.
func generatedForms(t *testing.T) map[string]string {
	p := enginetest.Generate(smallGenerated())
	indented, err := Marshal(p, "json")
	if err != nil {
		t.Fatal(err)
	}
	var minified bytes.Buffer
	if err := json.Compact(&minified, indented); err != nil {
		t.Fatal(err)
	}
	yamlDoc, err := Marshal(p, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"min.json": minified.String(), "ind.json": string(indented), "p.yaml": string(yamlDoc)}
}

// Generated documents, and the same with a problem deep inside the users
// list, decode alike streamed and whole, in every form.
func TestStreamGenerated(t *testing.T) {
	// replace changes the last occurrence of old in a document.
	replace := func(src, old, new string) string {
		i := strings.LastIndex(src, old)
		if i < 0 {
			t.Fatalf("no %q in the document", old)
		}
		return src[:i] + new + src[i+len(old):]
	}
	for file, src := range generatedForms(t) {
		yamlDoc := strings.HasSuffix(file, ".yaml")
		key := func(k string) string {
			if yamlDoc {
				return k + ":"
			}
			return `"` + k + `"`
		}
		t.Run(file, func(t *testing.T) {
			checkStream(t, file, src, true)
			// A misspelled key, a duplicate key and a wrong type in the
			// last user.
			checkStream(t, file, replace(src, key("email"), key("emial")), true)
			checkStream(t, file, replace(src, key("superuser"), key("email")), true)
			if yamlDoc {
				checkStream(t, file, replace(src, "email: user000150@example.com", "email: [user000150@example.com]"), true)
				// A syntax error deep in the list: the whole tree's message.
				checkStream(t, file, replace(src, "email: user000150@example.com", "email: \"user000150@example.com"), false)
				// Comments and blank lines between items, CRLF lines.
				checkStream(t, file, strings.ReplaceAll(src, "\n  - email:", "\n\n  # a user\n  - email:"), true)
				checkStream(t, file, strings.ReplaceAll(src, "\n", "\r\n"), true)
			} else {
				checkStream(t, file, replace(src, `"user000150@example.com"`, `["user000150@example.com"]`), true)
				checkStream(t, file, replace(src, `"user000150@example.com"`, `"user000150@example.com",`), false)
			}
		})
	}
}

// Problems found while streaming — in a list's items, at the top level —
// are those of the whole tree, at the same lines and columns, in JSON and
// in YAML, and documents the streaming does not split decode whole.
func TestStreamShapes(t *testing.T) {
	for _, tt := range []struct {
		file, src string
		stream    bool
	}{
		{"p.json", `{"users": [{"email": "a@b.io"}, {"email": "c@d.io", "tenants": 5}], "users": [{"email": "x@y.io"}]}`, true},
		{"p.json", `{"userz": [{"email": "a@b.io"}], "settings": [1, 2], "roles": {"name": "r"}, "tenants": null, "agents": []}`, true},
		{"p.json", "{\n\"users\": [\n{\"email\": \"a@b.io\", \"email\": \"b@b.io\"}\n]\n}\n", true},
		{"p.json", `{"users": [{"email": "a@b.io"}]} {}`, false},
		{"p.json", `{"users": [{"email": "a@b.io"},]}`, false},
		{"p.json", `[{"email": "a@b.io"}]`, false},
		{"p.json", `{}`, true},
		{"p.yaml", "users:\n  - email: a@b.io\n  - email: c@d.io\n    tenants: 5\nusers:\n  - email: x@y.io\n", true},
		{"p.yaml", "userz:\n  - email: a@b.io\nsettings:\n  - 1\nroles:\n  name: r\ntenants: ~\nagents: []\n", true},
		{"p.yaml", "# a policy\n\nusers:   # the users\n- email: a@b.io\n  attributes: {x: &a [1, 2], y: *a}\n- email: b@b.io\n  name: |\n    two\n    lines\n", true},
		{"p.yaml", "users:\n  - email: a@b.io\n    email: b@b.io\n", true},
		{"p.yaml", "users:\n  - email: a@b.io\n  -\n  - email: c@d.io\n", true},
		// An alias to an anchor in another section: decoded whole.
		{"p.yaml", "tenants: [{id: a}, {id: b}]\nsettings: {default_tenants: &d [a, b]}\nusers:\n  - {email: x@y.io, tenants: *d}\n", false},
		// A quoted string across what looks like items, and a chunk's
		// end (see TestStreamYAMLChunks).
		{"p.yaml", "users:\n  - email: \"a@b.io\n  - x\"\n", true},
		{"p.yaml", "users:\n  - email: \"a@b.io\n" + strings.Repeat("  - x\n", 2*yamlChunk/6) + "  - y\"\n", false},
		{"p.yaml", "users: !!seq\n  - email: a@b.io\n", false},
		{"p.yaml", "users: &u\n  - email: a@b.io\n", false},
		{"p.yaml", "users:\n  - email: a@b.io\n - email: b@b.io\n", false},
		{"p.yaml", "users:\n  - email: a@b.io\n\t- email: b@b.io\n", false},
		{"p.yaml", "users:\n  - email: a@b.io\n---\nusers: []\n", false},
		{"p.yaml", "--- \nusers:\n  - email: a@b.io\n", false},
		{"p.yaml", "users:\r  - email: a@b.io\r", false},
		{"p.yaml", "? users\n: - email: a@b.io\n", false},
		{"p.yaml", "users:\n  - email: a@b.io\n  tenants: [a]\n", false},
		{"p.yaml", "<<: {users: []}\n", true},
		{"p.yaml", "", false},
	} {
		t.Run(fmt.Sprintf("%s %q", tt.file, tt.src), func(t *testing.T) { checkStream(t, tt.file, tt.src, tt.stream) })
	}
}

// A list of many items is parsed a chunk at a time (see yamlChunk): a
// problem in any chunk is where the whole tree puts it.
func TestStreamYAMLChunks(t *testing.T) {
	var b strings.Builder
	b.WriteString("users:\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "  - email: u%d@example.com\n    tenants: [t]\n", i)
	}
	b.WriteString("tenants:\n  - id: t\n")
	src := b.String()
	if entries, _, ok := yamlPlan([]byte(src)); !ok || len(entries[0].chunks) < 3 {
		t.Fatalf("yamlPlan split the users into %v, want at least three chunks", entries)
	}
	checkStream(t, "p.yaml", src, true)
	for _, user := range []string{"u0@", "u1500@", "u2999@"} {
		typo := strings.Replace(src, "email: "+user, "emial: "+user, 1)
		checkStream(t, "p.yaml", typo, true)
		got := problems(t, "p.yaml", typo)
		if want := at(typo, "emial: "+user, 1) + ":"; len(got) == 0 || !strings.HasPrefix(got[0], want) {
			t.Errorf("problems = %q, want the first at %s", got, want)
		}
	}
}

// The repository's documents, valid and invalid, decode alike streamed
// and whole.
func TestStreamRepositoryDocuments(t *testing.T) {
	var files []string
	for _, pattern := range []string{"testdata/*.yaml", "testdata/*/*.yaml", "testdata/*/*.json", "../examples/*/policy.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no documents found")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(file, func(t *testing.T) { checkStream(t, file, string(data), streamed(file, data)) })
	}
}
