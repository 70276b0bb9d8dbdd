package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// problems returns Parse's problems as "line:col: path: message" lines.
func problems(t *testing.T, file, src string) []string {
	t.Helper()
	_, err := Parse(file, []byte(src))
	if err == nil {
		return nil
	}
	var perr *Error
	if !errors.As(err, &perr) || !errors.Is(err, gatehouse.ErrInvalid) {
		t.Fatalf("Parse(%q) = %v, want *Error wrapping ErrInvalid", src, err)
	}
	out := make([]string, len(perr.Problems))
	for i, p := range perr.Problems {
		p.File = ""
		out[i] = fmt.Sprintf("%d:%d: %s", p.Line, p.Column, strings.TrimPrefix(p.String(), fmt.Sprintf("line %d: ", p.Line)))
	}
	return out
}

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name, file, src string
		want            []string
	}{
		{"number for a string", "p.yaml", "tenants: [{id: 2024}]\n",
			[]string{`1:16: tenants[0].id: want a string, got number 2024 (quote it: "2024")`}},
		{"list for a string", "p.yaml", "tenants:\n  - id: [a]\n",
			[]string{`2:9: tenants[0].id: want a string, got a list`}},
		{"string for a bool", "p.json", `{"users": [{"email": "a@b.io", "superuser": "true"}]}`,
			[]string{`1:45: users[0].superuser: want true or false, got "true"`}},
		{"duplicate key names the first", "p.yaml", "tenants:\n  - id: a\n    id: b\n",
			[]string{`3:5: tenants[0].id: duplicate key "id" (first at line 2)`}},
		{"duplicate key in JSON", "p.json", "{\"tenants\": [],\n \"tenants\": []}",
			[]string{`2:2: tenants: duplicate key "tenants" (first at line 1)`}},
		{"merge key", "p.yaml", "base: &b {id: a}\ntenants: [{<<: *b}]\n",
			[]string{`1:1: base: unknown key "base"`, `2:12: tenants[0]: merge keys (<<) are not supported`}},
		{"second document", "p.yaml", "tenants: [{id: a}]\n---\ntenants: [{id: b}]\n",
			[]string{`3:0: more than one YAML document; a policy is one document`}},
		{"JSON syntax", "p.json", "{\n  \"tenants\": [{\"id\": \"a\"},]\n}\n",
			[]string{`2:27: invalid character ']' looking for beginning of value`}},
		{"JSON cut short", "p.json", "{\"tenants\": [",
			[]string{`1:14: unexpected end of JSON input`}},
		{"JSON trailing value", "p.json", "{}\n{}\n",
			[]string{`2:1: unexpected data after the top-level value`}},
		{"not UTF-8", "p.yaml", "tenants:\n  - id: a\xffb\n",
			[]string{`2:10: not valid UTF-8`}},
		{"infinite attribute", "p.yaml", "tenants: [{id: a, attributes: {x: .inf}}]\n",
			[]string{`1:35: tenants[0].attributes.x: number .inf cannot be represented in JSON`}},
		// A value that failed to decode is reported once, not again as missing.
		{"no echo of decoding problems", "p.yaml", "tenants: [{id: {x: 1}}]\n",
			[]string{`1:16: tenants[0].id: want a string, got a mapping`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, problems(t, tt.file, tt.src)); diff != "" {
				t.Errorf("Parse(%s, %q) problems (-want +got):\n%s", tt.file, tt.src, diff)
			}
		})
	}
}

// JSON documents decode exactly as encoding/json reads them, including what
// YAML would refuse or read differently.
func TestParseJSON(t *testing.T) {
	d := mustParse(t, "p.json", `{"users": [{"email": "a@b.io", "name": "\ud83d\ude00 \u00e9",
		"attributes": {"big": 123456789012345678901234567890, "neg": -0.0, "ok": true, "none": null, "list": [1, "x"]}}]}`)
	u := d.Policy.Users[0]
	if u.Name != "😀 é" {
		t.Errorf("name = %q, want the decoded escapes", u.Name)
	}
	want := map[string]any{"big": 1.2345678901234568e+29, "neg": 0.0, "ok": true, "none": nil, "list": []any{1.0, "x"}}
	if diff := cmp.Diff(want, u.Attributes); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
}

// YAML numbers in attributes become the float64 a JSON decoder would give,
// so a policy read from a file equals the same policy read from the store.
func TestParseYAMLAttributes(t *testing.T) {
	d := mustParse(t, "p.yaml", "tenants: [{id: a, attributes: {hex: 0x1F, under: 1_000, neg: -0.0, date: 2024-01-01, f: 1.5}}]\n")
	want := map[string]any{"hex": 31.0, "under": 1000.0, "neg": 0.0, "date": "2024-01-01", "f": 1.5}
	if diff := cmp.Diff(want, d.Policy.Tenants[0].Attributes); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
}

// Aliases that expand a small document into a huge one are stopped early.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("users:\n- email: a@b.io\n  attributes:\n    a0: &a0 [1,2,3,4,5,6,7,8,9]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "    a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 9), ","))
	}
	start := time.Now()
	got := problems(t, "bomb.yaml", b.String())
	if len(got) != 1 || !strings.Contains(got[0], "too many values") {
		t.Errorf("Parse(alias bomb) = %q, want one problem about too many values", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse(alias bomb) took %v", d)
	}
	// Aliases within the budget are fine.
	d := mustParse(t, "p.yaml", "tenants: [{id: a}, {id: b}]\nsettings: {default_tenants: &d [a, b]}\nusers: [{email: x@y.io, tenants: *d}]\n")
	if got := d.Policy.Users[0].Tenants; len(got) != 2 {
		t.Errorf("aliased tenants = %q, want [a b]", got)
	}
}

func TestParseEmptyDocuments(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "~\n", "{}", "  \n"} {
		d, err := Parse("p.yaml", []byte(src))
		if err != nil {
			t.Errorf("Parse(%q) = %v, want an empty document", src, err)
			continue
		}
		for _, k := range gatehouse.Kinds {
			if d.Has(k) {
				t.Errorf("Parse(%q).Has(%s) = true", src, k)
			}
		}
	}
	d := mustParse(t, "p.yaml", "users:\nroles: []\n")
	if !d.Has(gatehouse.KindUser) || !d.Has(gatehouse.KindRole) || d.Has(gatehouse.KindTenant) {
		t.Errorf("Has: users %v roles %v tenants %v, want true true false", d.Has(gatehouse.KindUser), d.Has(gatehouse.KindRole), d.Has(gatehouse.KindTenant))
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    gatehouse.Policy
		want []string
	}{
		{"emails compare normalized", gatehouse.Policy{Users: []gatehouse.UserEntry{{Email: "Ann@X.io"}, {Email: " ann@x.io"}}},
			[]string{`users[1].email: duplicate user "ann@x.io" (first at users[0].email)`}},
		{"email shape", gatehouse.Policy{Users: []gatehouse.UserEntry{{Email: "a@b@c"}, {Email: "@x.io"}, {Email: "a b@x.io"}}},
			[]string{`users[0].email: "a@b@c" is not an email address`, `users[1].email: "@x.io" is not an email address`, `users[2].email: "a b@x.io" is not an email address`}},
		{"names the engine could not reach", gatehouse.Policy{Permissions: []gatehouse.Permission{{Name: " p"}, {Name: "a\tb"}, {Name: "\xff"}}},
			[]string{`permissions[0].name: name " p" has surrounding spaces`, `permissions[1].name: name "a\tb" contains control characters`, `permissions[2].name: name "\xff" is not valid UTF-8`}},
		{"required references", gatehouse.Policy{Tools: []gatehouse.Tool{{Name: "t"}}, Agents: []gatehouse.Agent{{ID: "a", Roles: []gatehouse.Assignment{{}}, Grants: []gatehouse.Grant{{}}}}},
			[]string{`agents[0].roles[0].role: role is required`, `agents[0].grants[0].permission: permission is required`, `tools[0].permission: permission is required`}},
		{"locales in order", gatehouse.Policy{Actions: []gatehouse.ActionType{{Name: "x", Labels: map[string]string{"pt": "", "en": "", "nl": ""}}}},
			[]string{`actions[0].labels.nl: unknown locale "nl"; use de, en, es, fr, it or zh`, `actions[0].labels.pt: unknown locale "pt"; use de, en, es, fr, it or zh`}},
		{"look-alike and mixed-script emails", gatehouse.Policy{Users: []gatehouse.UserEntry{{Email: "admin@example.com"}, {Email: "аdmin@example.com"}, {Email: "admİn@example.com"}, {Email: "admin@exаmple.com"}}},
			[]string{`users[1].email: email "аdmin@example.com": the part before @ must be printable ASCII without spaces`,
				`users[2].email: email "admİn@example.com": the part before @ must be printable ASCII without spaces`,
				`users[3].email: email "admin@exаmple.com": domain label "exаmple" mixes the Latin and Cyrillic scripts`}},
		{"ids that read as paths or hide characters", gatehouse.Policy{Tenants: []gatehouse.Tenant{{ID: "acme\u202e"}, {ID: "a/b"}, {ID: "a..b"}, {ID: "x\u200by"}},
			Roles: []gatehouse.Role{{Name: "r/access/v1/x"}}, Resources: []gatehouse.ResourceEntry{{Type: "doc", ID: "../etc"}}},
			[]string{`roles[0].name: name "r/access/v1/x" contains a slash`,
				`tenants[0].id: id "acme\u202e" contains the invisible formatting character U+202E`, `tenants[1].id: id "a/b" contains a slash`,
				`tenants[2].id: id "a..b" contains ".."`, `tenants[3].id: id "x\u200by" contains the invisible formatting character U+200B`,
				`resources[0].id: id "../etc" contains a slash`}},
		{"flag with a control character", gatehouse.Policy{Permissions: []gatehouse.Permission{{Name: "p"}}, Tools: []gatehouse.Tool{{Name: "t", Permission: "p", Flag: "can\x00"}}},
			[]string{`tools[0].flag: flag "can\x00" contains control characters`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range Validate(&tt.p) {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate(%+v) (-want +got):\n%s", tt.p, diff)
			}
		})
	}
}

// Merge's result shares nothing with its inputs, so normalizing or
// importing into it (as the service does) cannot change the document.
func TestMergeCopies(t *testing.T) {
	doc := mustParse(t, "d.yaml", "roles: [{name: r, permissions: [p]}]\n")
	current := &gatehouse.Policy{Users: []gatehouse.UserEntry{{Email: "a@b.io", Tenants: []string{}}}}
	merged := Merge(nil, doc)
	if len(merged.Roles) != 1 || merged.Users != nil {
		t.Fatalf("Merge(nil, doc) = %+v", merged)
	}
	merged = Merge(current, doc)
	merged.Roles[0].Permissions[0] = "changed"
	merged.Users[0].Tenants = append(merged.Users[0].Tenants, "x")
	if doc.Policy.Roles[0].Permissions[0] != "p" || len(current.Users[0].Tenants) != 0 {
		t.Errorf("Merge's result shares memory with its inputs")
	}
	if merged := Merge(current, doc); merged.Users[0].Tenants == nil {
		t.Errorf("Merge turned tenants: [] into nil")
	}
}

func TestDiffEdgeCases(t *testing.T) {
	p := &gatehouse.Policy{Settings: gatehouse.Settings{AccessPermission: "a"}, Permissions: []gatehouse.Permission{{Name: "a"}}}
	changes, err := Diff(nil, p)
	if err != nil || len(changes) != 2 {
		t.Fatalf("Diff(nil, p) = %v, %v; want two creates", changes, err)
	}
	if got, want := FormatDiff(changes), "+ settings\n+ permission a\n"; got != want {
		t.Errorf("FormatDiff = %q, want %q", got, want)
	}
	if changes, err := Diff(p, nil); err != nil || len(changes) != 2 || changes[0].Op() != gatehouse.OpDelete {
		t.Errorf("Diff(p, nil) = %v, %v; want two deletes", changes, err)
	}
	dup := &gatehouse.Policy{Plans: []gatehouse.Plan{{Name: "free"}, {Name: "pro"}, {Name: "free"}}}
	if _, err := Diff(nil, dup); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Diff(nil, duplicate plans) = %v, want ErrInvalid", err)
	}
}

// at is the 1-based line and column, in runes, of the n-th (from 1)
// occurrence of sub in src: an independent count to check positions by.
func at(src, sub string, n int) string {
	off := -1
	for range n {
		i := strings.Index(src[off+1:], sub)
		if i < 0 {
			panic(sub)
		}
		off += 1 + i
	}
	before := src[:off]
	line := strings.Count(before, "\n") + 1
	col := len([]rune(before[strings.LastIndex(before, "\n")+1:])) + 1
	return fmt.Sprintf("%d:%d", line, col)
}

// JSON positions are right on later lines and after non-ASCII text, in
// minified and indented documents alike (they are counted in one pass).
func TestJSONPositions(t *testing.T) {
	for _, src := range []string{
		`{"permissions": [{"name": "ä.view", "title": "Ansicht für Öffentlichkeit"}, {"name": "ä.view"}], "roles": [{"name": "r", "permisions": []}]}`,
		"{\n  \"permissions\": [\n    {\"name\": \"ä.view\", \"title\": \"Ansicht für Öffentlichkeit\"},\n    {\"name\": \"ä.view\"}\n  ],\n" +
			"  \"roles\": [{\"name\": \"r\", \"permisions\": []}]\n}\n",
	} {
		got := problems(t, "p.json", src)
		want := []string{
			at(src, `"ä.view"`, 2) + `: permissions[1].name: duplicate permission "ä.view" (first at line ` + strings.Split(at(src, `"ä.view"`, 1), ":")[0] + ")",
			at(src, `"permisions"`, 1) + `: roles[0].permisions: unknown key "permisions" (did you mean "permissions"?)`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	}
}

// BenchmarkParse parses generated documents of 10,000 and 100,000 users
// (see generatedDocument) in minified JSON, the form programs write,
// indented JSON and YAML. Parsing must be linear in the document's size
// whatever its formatting: compare ns/op of users=100k with users=10k.
// cpu-ns/op is the process's CPU time per parse (GC included), which a
// busy machine does not inflate as it does ns/op.
func BenchmarkParse(b *testing.B) {
	for _, format := range benchFormats {
		for _, users := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/users=%dk", format, users/1000), func(b *testing.B) {
				data := generatedDocument(b, users, format)
				// Generating leaves garbage whose collection would
				// otherwise run, and count, during the parses.
				runtime.GC()
				file := "users.yaml"
				if strings.HasPrefix(format, "json") {
					file = "users.json"
				}
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				var cpu time.Duration
				for b.Loop() {
					start := processCPU()
					if _, err := ParseMax(file, data, int64(len(data))); err != nil {
						b.Fatal(err)
					}
					cpu += processCPU() - start
				}
				if cpu > 0 {
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}

// Positions in generated documents, after non-ASCII text and at their end,
// are those an independent count gives, in minified and indented JSON and
// in YAML alike.
func TestGeneratedDocumentPositions(t *testing.T) {
	p := enginetest.Generate(smallGenerated())
	p.Permissions[0].Title = "Ansicht für Öffentlichkeit – 日本語"
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
	for _, tt := range []struct {
		name, file, src, key, typo string
	}{
		{formatJSONMinified, "p.json", minified.String(), `"email"`, `"emial"`},
		{formatJSONIndented, "p.json", string(indented), `"email"`, `"emial"`},
		{formatYAML, "p.yaml", string(yamlDoc), "email:", "emial:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Misspell the last user's email key.
			i := strings.LastIndex(tt.src, tt.key)
			src := tt.src[:i] + tt.typo + tt.src[i+len(tt.key):]
			want := at(src, tt.typo, 1) + fmt.Sprintf(`: users[%d].emial: unknown key "emial" (did you mean "email"?)`, len(p.Users)-1)
			got := problems(t, tt.file, src)
			if !slices.Contains(got, want) {
				t.Errorf("problems = %q, want them to include %q", got, want)
			}
		})
	}
}

// tokenWalk is the node tree the token walk builds, which invalid
// documents still take: the scanner must build the same for valid ones.
func tokenWalk(data []byte) (*yaml.Node, error) {
	b := &jsonBuilder{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	b.dec.UseNumber()
	return b.value()
}

// sameTree reports where two node trees first differ, "" if nowhere.
func sameTree(a, b *yaml.Node, path string) string {
	if a.Kind != b.Kind || a.Tag != b.Tag || a.Value != b.Value || a.Line != b.Line || a.Column != b.Column || len(a.Content) != len(b.Content) {
		return fmt.Sprintf("%s: scanner %d %s %q at %d:%d (%d children), tokens %d %s %q at %d:%d (%d children)", path,
			a.Kind, a.Tag, a.Value, a.Line, a.Column, len(a.Content), b.Kind, b.Tag, b.Value, b.Line, b.Column, len(b.Content))
	}
	for i := range a.Content {
		if d := sameTree(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", path, i)); d != "" {
			return d
		}
	}
	return ""
}

func checkScanner(t *testing.T, src []byte) {
	t.Helper()
	sc := &jsonScanner{data: src, line: 1, col: 1}
	got, ok := sc.document()
	if valid := json.Valid(src); ok != valid {
		t.Fatalf("jsonScanner(%q) ok = %v, json.Valid = %v", src, ok, valid)
	}
	if !ok || !utf8.Valid(src) {
		return
	}
	want, err := tokenWalk(src)
	if err != nil {
		t.Fatalf("token walk of valid %q: %v", src, err)
	}
	if d := sameTree(got, want, ""); d != "" {
		t.Errorf("jsonScanner(%q) differs from the token walk at %s", src, d)
	}
}

// The one-pass scanner builds the tree, positions included, that walking
// encoding/json's tokens builds.
func TestJSONScannerMatchesTokens(t *testing.T) {
	indented := generatedDocument(t, 200, formatJSONIndented)
	for _, src := range []string{
		`{}`, `[]`, ` [ ] `, `"x"`, `12`, `-1.5e+3`, `true`, `null`,
		"{\"a\":\"\\u00e4\\n\\\"q\\\"\",\n\r\n\t\"b\" : [1, 2.0, -3e2, true, false, null, {}, []],\"ä日本\":\"ü\"}",
		`{"esc":"\ud83d\ude00 \ud800 tail","after":"x"}`,
		// Invalid: the scanner must refuse what json.Valid refuses.
		`{"a":1,}`, `[1,]`, `{"a" 1}`, `{1:2}`, `01`, `-`, `1.`, `1e`, `.5`, `+1`, `tru`, `nul`, `"\x"`, `"\u12g4"`,
		"\"tab\there\"", `[1 2]`, `{"a":1}{}`, `[`, `"`, `{"a":`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		"[\n  {\"k\": \"v\"},\n  {\"k\": [\n    \"w\"\n  ]}\n]\n",
		string(indented),
	} {
		checkScanner(t, []byte(src))
	}
}

func FuzzJSONScanner(f *testing.F) {
	for _, s := range []string{`{"a":[1,"b\n",{"c":null}]}`, "[\n\"ä\", 1e5]", `"\u00e4"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) { checkScanner(t, src) })
}
