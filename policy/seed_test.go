package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/google/go-cmp/cmp"
)

func readTestdata(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// seedFiles returns the seed 000 fixtures.
func seedFiles(t testing.TB) (permissions, actions, categories []byte) {
	return readTestdata(t, "seed000/permissions.json"), readTestdata(t, "seed000/actions.json"), readTestdata(t, "seed000/category.json")
}

func objects(t testing.TB, p *gatehouse.Policy) []gatehouse.Object {
	t.Helper()
	objs, err := p.Objects()
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// diffObjects reports how two object lists differ, "" if they are equal; it
// checks equality first because cmp is slow on raw JSON bodies.
func diffObjects(a, b []gatehouse.Object) string {
	if slices.EqualFunc(a, b, func(x, y gatehouse.Object) bool {
		return x.Kind == y.Kind && x.ID == y.ID && x.Pos == y.Pos && bytes.Equal(x.Body, y.Body)
	}) {
		return ""
	}
	return cmp.Diff(a, b, cmp.Transformer("body", func(body json.RawMessage) string { return string(body) }))
}

func importSeed(t testing.TB, p *gatehouse.Policy) {
	t.Helper()
	perms, acts, cats := seedFiles(t)
	if err := ImportSeed000(p, perms, acts, cats); err != nil {
		t.Fatalf("ImportSeed000(fixtures) = %v", err)
	}
}

func importRBAC(t testing.TB, p *gatehouse.Policy, module, path string) {
	t.Helper()
	if err := ImportModuleRBAC(p, module, readTestdata(t, path)); err != nil {
		t.Fatalf("ImportModuleRBAC(%q, %s) = %v", module, path, err)
	}
}

func findBundle(p *gatehouse.Policy, name string) *gatehouse.Bundle {
	for i := range p.Bundles {
		if p.Bundles[i].Name == name {
			return &p.Bundles[i]
		}
	}
	return nil
}

func findRole(p *gatehouse.Policy, name string) *gatehouse.Role {
	if i := roleIndex(p, name); i >= 0 {
		return &p.Roles[i]
	}
	return nil
}

func findPermission(p *gatehouse.Policy, name string) *gatehouse.Permission {
	for i := range p.Permissions {
		if p.Permissions[i].Name == name {
			return &p.Permissions[i]
		}
	}
	return nil
}

func modulePermissions(p *gatehouse.Policy, module string) []string {
	var out []string
	for _, x := range p.Permissions {
		if x.Module == module {
			out = append(out, x.Name)
		}
	}
	return out
}

func TestImportSeed000Fresh(t *testing.T) {
	p := &gatehouse.Policy{}
	importSeed(t, p)
	if len(p.Permissions) != 21 || len(p.Bundles) != 7 || len(p.Categories) != 1 {
		t.Fatalf("imported %d permissions, %d bundles, %d categories; want 21, 7, 1", len(p.Permissions), len(p.Bundles), len(p.Categories))
	}
	wantBundles := map[string][]string{
		"Access AI Chat":             {"access_ai_chat", "fetch_conversation"},
		"Use Loan Analysis Tool":     {"access_ai_chat", "use_ai_analysis", "use_ai_loan_tool", "fetch_loan", "fetch_loan_product"},
		"Use Fraud Detection Tool":   {"access_ai_chat", "use_ai_analysis", "use_ai_fraud_detection", "fetch_transaction", "fetch_customer"},
		"Use Customer Insights Tool": {"access_ai_chat", "use_ai_analysis", "use_ai_customer_insights", "fetch_customer", "fetch_account"},
		"Use AI Report Generation":   {"access_ai_chat", "use_ai_analysis", "use_ai_report_generation", "fetch_report"},
		"Use Advanced AI Tools":      {"access_ai_chat", "use_ai_analysis", "use_ai_advanced_tools", "fetch_account", "fetch_transaction", "fetch_customer"},
		"Manage AI Tools":            {"manage_ai_tools", "fetch_permission", "fetch_action"},
	}
	for name, want := range wantBundles {
		b := findBundle(p, name)
		if b == nil {
			t.Errorf("bundle %q missing", name)
			continue
		}
		if diff := cmp.Diff(want, b.Permissions); diff != "" {
			t.Errorf("bundle %q permissions (-want +got):\n%s", name, diff)
		}
	}
	if got, want := p.Bundles[1].Description, "Use AI to analyze loans and generate scores"; got != want {
		t.Errorf("bundle %q description = %q, want %q", p.Bundles[1].Name, got, want)
	}
	wantCategory := gatehouse.Category{
		Name:        "Manage AI Assistant",
		Description: "Permissions for using and managing the AI assistant",
		Bundles: []string{"Access AI Chat", "Use Loan Analysis Tool", "Use Fraud Detection Tool",
			"Use Customer Insights Tool", "Use AI Report Generation", "Use Advanced AI Tools", "Manage AI Tools"},
	}
	if diff := cmp.Diff(wantCategory, p.Categories[0]); diff != "" {
		t.Errorf("category (-want +got):\n%s", diff)
	}
	wantPerm := gatehouse.Permission{Name: "use_ai_loan_tool", Title: "Use AI Loan Analysis", Description: "Permission to use AI loan analysis and scoring tools"}
	if diff := cmp.Diff(&wantPerm, findPermission(p, "use_ai_loan_tool")); diff != "" {
		t.Errorf("permission use_ai_loan_tool (-want +got):\n%s", diff)
	}
	if problems := Validate(p); len(problems) > 0 {
		t.Errorf("Validate(imported seed) = %v", problems)
	}
}

func TestImportSeed000Idempotent(t *testing.T) {
	p := &gatehouse.Policy{}
	importSeed(t, p)
	first := objects(t, p)
	importSeed(t, p)
	if diff := diffObjects(first, objects(t, p)); diff != "" {
		t.Errorf("re-import changed the policy (-first +second):\n%s", diff)
	}
}

func TestImportSeed000Upsert(t *testing.T) {
	p := &gatehouse.Policy{
		Permissions: []gatehouse.Permission{
			{Name: "legacy", Title: "Legacy"},
			{Name: "fetch_loan", Title: "Old title", Feature: "loans"},
			{Name: "chat.view", Module: "chat"},
		},
		Bundles: []gatehouse.Bundle{
			{Name: "Legacy", Permissions: []string{"legacy"}},
			{Name: "Access AI Chat", Description: "old", Permissions: []string{"legacy"}},
		},
		Categories: []gatehouse.Category{{Name: "Other", Bundles: []string{"Legacy"}}},
		Roles:      []gatehouse.Role{{Name: "clerk", Bundles: []string{"Access AI Chat"}, Permissions: []string{"legacy"}}},
	}
	importSeed(t, p)

	wantHead := []gatehouse.Permission{
		{Name: "legacy", Title: "Legacy"},
		{Name: "fetch_loan", Title: "Fetch Loan", Description: "Permission to read loans", Feature: "loans"},
		{Name: "chat.view", Module: "chat"},
		{Name: "add_role", Title: "Add Role", Description: "Permission to create a new role"},
	}
	if diff := cmp.Diff(wantHead, p.Permissions[:4]); diff != "" {
		t.Errorf("permissions kept in place and replaced (-want +got):\n%s", diff)
	}
	if got := len(p.Permissions); got != 3+20 {
		t.Errorf("len(permissions) = %d, want 23 (3 before, 21 imported, 1 replaced)", got)
	}
	wantBundles := []gatehouse.Bundle{
		{Name: "Legacy", Permissions: []string{"legacy"}},
		{Name: "Access AI Chat", Description: "Basic access to AI chat interface", Permissions: []string{"access_ai_chat", "fetch_conversation"}},
	}
	if diff := cmp.Diff(wantBundles, p.Bundles[:2]); diff != "" {
		t.Errorf("bundles (-want +got):\n%s", diff)
	}
	if got := p.Bundles[2].Name; got != "Use Loan Analysis Tool" {
		t.Errorf("first appended bundle = %q, want %q", got, "Use Loan Analysis Tool")
	}
	if got := []string{p.Categories[0].Name, p.Categories[1].Name}; !cmp.Equal(got, []string{"Other", "Manage AI Assistant"}) {
		t.Errorf("categories = %q, want Other kept and Manage AI Assistant appended", got)
	}
	if diff := cmp.Diff([]gatehouse.Role{{Name: "clerk", Bundles: []string{"Access AI Chat"}, Permissions: []string{"legacy"}}}, p.Roles); diff != "" {
		t.Errorf("roles touched (-want +got):\n%s", diff)
	}
}

// Actions and categories may be imported alone; their references resolve
// against what the policy already holds.
func TestImportSeed000Partial(t *testing.T) {
	perms, acts, cats := seedFiles(t)
	p := &gatehouse.Policy{}
	if err := ImportSeed000(p, perms, nil, nil); err != nil {
		t.Fatalf("ImportSeed000(permissions only) = %v", err)
	}
	if err := ImportSeed000(p, nil, acts, nil); err != nil {
		t.Fatalf("ImportSeed000(actions only) = %v", err)
	}
	if err := ImportSeed000(p, nil, nil, cats); err != nil {
		t.Fatalf("ImportSeed000(categories only) = %v", err)
	}
	whole := &gatehouse.Policy{}
	importSeed(t, whole)
	if diff := diffObjects(objects(t, whole), objects(t, p)); diff != "" {
		t.Errorf("file by file differs from all at once (-all +each):\n%s", diff)
	}
	if err := ImportSeed000(&gatehouse.Policy{}, nil, acts, nil); err == nil {
		t.Errorf("ImportSeed000(actions into an empty policy) = nil, want unknown permissions")
	}
}

func TestImportSeed000Errors(t *testing.T) {
	perms, acts, _ := seedFiles(t)
	tests := []struct {
		name                 string
		perms, acts, cats    string
		wantFile             string
		wantLine             int
		wantPath, wantSubstr string
	}{
		{
			name:     "malformed JSON",
			perms:    "[\n  {\"api\": \"a\",\n  \"title\": }\n]",
			wantFile: "permissions.json", wantLine: 3, wantSubstr: "invalid character",
		},
		{
			name:     "unknown key",
			perms:    "[\n  {\"api\": \"a\",\n   \"titel\": \"A\"}\n]",
			wantFile: "permissions.json", wantLine: 3, wantPath: "[0].titel", wantSubstr: `unknown key "titel"`,
		},
		{
			name:     "wrong type",
			acts:     "[\n  {\"name\": \"A\",\n   \"permissions\": \"fetch_loan\"}\n]",
			wantFile: "actions.json", wantLine: 3, wantPath: "[0].permissions", wantSubstr: "want a list",
		},
		{
			name:     "top level not a list",
			cats:     `{"name": "C"}`,
			wantFile: "category.json", wantLine: 1, wantSubstr: "want a list",
		},
		{
			name:     "empty api",
			perms:    "[\n  {\"api\": \"a\"},\n  {\"api\": \" \", \"title\": \"Blank\"}\n]",
			wantFile: "permissions.json", wantLine: 3, wantPath: "[1].api", wantSubstr: "empty api",
		},
		{
			name:     "duplicate api",
			perms:    "[\n  {\"api\": \"a\"},\n  {\"api\": \"a\"}\n]",
			wantFile: "permissions.json", wantLine: 3, wantPath: "[1].api", wantSubstr: `duplicate api "a" (first at line 2)`,
		},
		{
			name:     "duplicate action",
			acts:     "[\n  {\"name\": \"A\"},\n  {\"name\": \"B\"},\n  {\"name\": \"A\"}\n]",
			wantFile: "actions.json", wantLine: 4, wantPath: "[2].name", wantSubstr: `duplicate action "A"`,
		},
		{
			name:     "unknown permission in an action",
			perms:    "[{\"api\": \"a\"}]",
			acts:     "[\n  {\"name\": \"A\",\n   \"permissions\": [\"a\",\n     \"nope\"]}\n]",
			wantFile: "actions.json", wantLine: 4, wantPath: "[0].permissions[1]", wantSubstr: `unknown permission "nope"`,
		},
		{
			name:     "permission listed twice in an action",
			acts:     "[{\"name\": \"A\", \"permissions\": [\"fetch_loan\", \"fetch_loan\"]}]",
			wantFile: "actions.json", wantLine: 1, wantPath: "[0].permissions[1]", wantSubstr: "listed twice",
		},
		{
			name:  "unknown action in a category",
			perms: string(perms), acts: string(acts),
			cats:     "[\n  {\"name\": \"C\",\n   \"actions\": [\"Access AI Chat\", \"Nope\"]}\n]",
			wantFile: "category.json", wantLine: 3, wantPath: "[0].actions[1]", wantSubstr: `unknown action "Nope"`,
		},
		{
			name:     "permission owned by a module",
			perms:    "[\n  {\"api\": \"chat.view\"}\n]",
			wantFile: "permissions.json", wantLine: 2, wantPath: "[0].api", wantSubstr: `belongs to module "chat"`,
		},
		{
			name:     "not UTF-8",
			perms:    "[{\"api\": \"\xff\"}]",
			wantFile: "permissions.json", wantSubstr: "UTF-8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &gatehouse.Policy{}
			importSeed(t, p)
			importRBAC(t, p, "chat", "modules/chat/rbac.json")
			before := objects(t, p)

			err := ImportSeed000(p, bytesOrNil(tt.perms), bytesOrNil(tt.acts), bytesOrNil(tt.cats))
			checkError(t, err, tt.wantFile, tt.wantLine, tt.wantPath, tt.wantSubstr)
			if diff := diffObjects(before, objects(t, p)); diff != "" {
				t.Errorf("failed import changed the policy (-before +after):\n%s", diff)
			}
		})
	}
}

// Every file's problems are reported at once; references into a file that
// does not decode are not reported as unknown.
func TestImportSeed000AllProblems(t *testing.T) {
	perms := "[\n  {\"api\": \"a\"},\n  {\"api\": \"a\"}\n]"
	acts := "[\n  {\"name\": \"A\", \"permissions\": [\"zzz\"], \"descripton\": \"\"}\n]"
	cats := "[\n  {\"name\": \"C\", \"actions\": [\"A\"]},\n  {\"name\": \"\", \"actions\": [\"Nope\"]}\n]"
	err := ImportSeed000(&gatehouse.Policy{}, []byte(perms), []byte(acts), []byte(cats))
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("ImportSeed000 = %v, want *Error", err)
	}
	var got []string
	for _, p := range perr.Problems {
		got = append(got, p.String())
	}
	want := []string{
		`permissions.json:3:11: [1].api: duplicate api "a" (first at line 2)`,
		`actions.json:2:41: [0].descripton: unknown key "descripton" (did you mean "description"?)`,
		`category.json:3:12: [1].name: empty name`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// checkError checks that err is an *Error wrapping ErrInvalid whose first
// problem is the wanted one; a zero line or an empty path is not checked.
func checkError(t *testing.T, err error, file string, line int, path, substr string) {
	t.Helper()
	if !errors.Is(err, gatehouse.ErrInvalid) {
		t.Fatalf("err = %v, want one wrapping ErrInvalid", err)
	}
	var perr *Error
	if !errors.As(err, &perr) || len(perr.Problems) == 0 {
		t.Fatalf("err = %#v, want *Error with problems", err)
	}
	got := perr.Problems[0]
	if got.File != file || (line != 0 && got.Line != line) || (path != "" && got.Path != path) || !strings.Contains(got.Message, substr) {
		t.Errorf("problem = %q, want file %s, line %d, path %q, message containing %q", got.String(), file, line, path, substr)
	}
}

func TestImportModuleRBACSync(t *testing.T) {
	p := &gatehouse.Policy{}
	importSeed(t, p)
	p.Roles = append(p.Roles, gatehouse.Role{Name: "user", Bundles: []string{"Access AI Chat"}, Permissions: []string{"fetch_loan"}})

	importRBAC(t, p, "chat", "modules/chat/rbac.json")
	importRBAC(t, p, "reports", "modules/reports/rbac.json")
	importRBAC(t, p, "chat", "modules/chat/rbac.v2.json")

	if got, want := modulePermissions(p, "chat"), []string{"chat.view", "chat.write", "chat.export"}; !cmp.Equal(got, want) {
		t.Errorf("chat permissions = %q, want %q", got, want)
	}
	if got, want := modulePermissions(p, "reports"), []string{"reports.view", "reports.export"}; !cmp.Equal(got, want) {
		t.Errorf("reports permissions = %q, want %q", got, want)
	}
	if got := len(p.Permissions); got != 21+3+2 {
		t.Errorf("len(permissions) = %d, want 26", got)
	}
	wantRoles := []gatehouse.Role{
		// The role that existed keeps its bundles and non-module permissions;
		// permissions a role keeps keep their place, new ones come last.
		{Name: "user", Bundles: []string{"Access AI Chat"}, Permissions: []string{"fetch_loan", "chat.view", "reports.view"}},
		{Name: "guest"},
		{Name: "organization", Permissions: []string{"chat.view", "chat.write", "reports.view", "reports.export", "chat.export"}},
		{Name: "super", Permissions: []string{"chat.view", "chat.write", "reports.view", "reports.export", "chat.export"}},
	}
	if diff := cmp.Diff(wantRoles, p.Roles); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
	if problems := Validate(p); len(problems) > 0 {
		t.Errorf("Validate(after imports) = %v", problems)
	}

	before := objects(t, p)
	importRBAC(t, p, "chat", "modules/chat/rbac.v2.json")
	if diff := diffObjects(before, objects(t, p)); diff != "" {
		t.Errorf("re-import of chat v2 changed the policy (-before +after):\n%s", diff)
	}
}

// A permission the module no longer lists disappears from every bundle,
// role and grant; permissions of other modules and without one stay.
func TestImportModuleRBACRemove(t *testing.T) {
	p := &gatehouse.Policy{}
	importSeed(t, p)
	importRBAC(t, p, "chat", "modules/chat/rbac.json")
	importRBAC(t, p, "reports", "modules/reports/rbac.json")
	p.Bundles = append(p.Bundles, gatehouse.Bundle{Name: "Chat", Permissions: []string{"chat.view", "chat.write", "access_ai_chat"}})
	p.Roles = append(p.Roles, gatehouse.Role{Name: "auditor", Permissions: []string{"chat.write", "reports.view"}})
	p.Users = []gatehouse.UserEntry{{Email: "ann@example.com", Grants: []gatehouse.Grant{
		{Permission: "chat.write", Tenant: "acme"},
		{Permission: "chat.view"},
	}}}
	p.Agents = []gatehouse.Agent{{ID: "bot", Grants: []gatehouse.Grant{{Permission: "chat.write"}}}}
	p.Tools = []gatehouse.Tool{{Name: "summarize", Permission: "chat.view"}}

	err := ImportModuleRBAC(p, "chat", []byte(`{"permissions": ["chat.view"], "assignments": {"user": ["chat.view"]}}`))
	if err != nil {
		t.Fatalf("ImportModuleRBAC(chat without chat.write) = %v", err)
	}
	if got, want := modulePermissions(p, "chat"), []string{"chat.view"}; !cmp.Equal(got, want) {
		t.Errorf("chat permissions = %q, want %q", got, want)
	}
	if got, want := findBundle(p, "Chat").Permissions, []string{"chat.view", "access_ai_chat"}; !cmp.Equal(got, want) {
		t.Errorf("bundle Chat = %q, want %q", got, want)
	}
	wantRoles := map[string][]string{
		"super":        {"chat.view", "reports.view", "reports.export"},
		"organization": {"chat.view", "reports.view", "reports.export"},
		"user":         {"chat.view", "reports.view"},
		"guest":        nil,
		"auditor":      {"reports.view"},
	}
	for name, want := range wantRoles {
		if got := findRole(p, name).Permissions; !cmp.Equal(got, want) {
			t.Errorf("role %q permissions = %q, want %q", name, got, want)
		}
	}
	if diff := cmp.Diff([]gatehouse.Grant{{Permission: "chat.view"}}, p.Users[0].Grants); diff != "" {
		t.Errorf("user grants (-want +got):\n%s", diff)
	}
	if got := p.Agents[0].Grants; len(got) != 0 {
		t.Errorf("agent grants = %v, want none", got)
	}
	if problems := Validate(p); len(problems) > 0 {
		t.Errorf("Validate(after removal) = %v", problems)
	}
}

func TestImportModuleRBACErrors(t *testing.T) {
	tests := []struct {
		name                 string
		setup                func(p *gatehouse.Policy)
		module, data         string
		wantLine             int
		wantPath, wantSubstr string
	}{
		{
			name:  "tool needs a removed permission",
			setup: func(p *gatehouse.Policy) { p.Tools = []gatehouse.Tool{{Name: "composer", Permission: "chat.write"}} },
			data:  "{\n  \"permissions\": [\"chat.view\"],\n  \"assignments\": {}\n}", wantLine: 2,
			wantPath: "permissions", wantSubstr: `permission "chat.write" is no longer listed but tool "composer" requires it`,
		},
		{
			name:  "settings need a removed permission",
			setup: func(p *gatehouse.Policy) { p.Settings.AccessPermission = "chat.view" },
			data:  `{"permissions": ["chat.write"]}`, wantLine: 1,
			wantPath: "permissions", wantSubstr: `permission "chat.view" is no longer listed but the settings name it`,
		},
		{
			name:     "collision with a permission without module",
			data:     "{\n  \"permissions\": [\"chat.view\",\n    \"fetch_loan\"]\n}",
			wantLine: 3, wantPath: "permissions[1]", wantSubstr: `permission "fetch_loan" already exists outside any module`,
		},
		{
			name:     "collision with another module",
			data:     `{"permissions": ["chat.view", "reports.view"]}`,
			wantLine: 1, wantPath: "permissions[1]", wantSubstr: `permission "reports.view" already belongs to module "reports"`,
		},
		{
			name:     "assignment not in the list",
			data:     "{\n  \"permissions\": [\"chat.view\"],\n  \"assignments\": {\n    \"user\": [\"chat.view\", \"chat.delete\"]\n  }\n}",
			wantLine: 4, wantPath: "assignments.user[1]", wantSubstr: `permission "chat.delete" is not in the module's permissions list`,
		},
		{
			name:     "empty module",
			module:   " ",
			data:     `{"permissions": ["chat.view"]}`,
			wantLine: 1, wantSubstr: "empty module name",
		},
		{
			name:     "module not UTF-8",
			module:   "r\x8eports",
			data:     `{"permissions": ["chat.view"]}`,
			wantLine: 1, wantSubstr: "not valid UTF-8",
		},
		{
			name:     "module with control characters",
			module:   "chat\nx",
			data:     `{"permissions": ["chat.view"]}`,
			wantLine: 1, wantSubstr: "control characters",
		},
		{
			name:     "malformed JSON",
			data:     "{\n  \"permissions\": [\"chat.view\",]\n}",
			wantLine: 2, wantSubstr: "invalid character",
		},
		{
			name:     "unknown key",
			data:     "{\n  \"permissions\": [],\n  \"assigments\": {}\n}",
			wantLine: 3, wantPath: "assigments", wantSubstr: `unknown key "assigments" (did you mean "assignments"?)`,
		},
		{
			name:     "wrong type",
			data:     `{"permissions": ["chat.view"], "assignments": ["chat.view"]}`,
			wantLine: 1, wantPath: "assignments", wantSubstr: "want a mapping",
		},
		{
			name:     "missing permissions",
			data:     `{"assignments": {"user": []}}`,
			wantLine: 1, wantSubstr: `missing key "permissions"`,
		},
		{
			name:       "empty document",
			data:       "",
			wantSubstr: `missing key "permissions"`,
		},
		{
			name:     "duplicate permission",
			data:     `{"permissions": ["chat.view", "chat.view"]}`,
			wantLine: 1, wantPath: "permissions[1]", wantSubstr: "listed twice",
		},
		{
			name:     "empty permission",
			data:     `{"permissions": ["chat.view", ""]}`,
			wantLine: 1, wantPath: "permissions[1]", wantSubstr: "empty permission name",
		},
		{
			name:     "empty role",
			data:     `{"permissions": [], "assignments": {"": []}}`,
			wantLine: 1, wantPath: "assignments", wantSubstr: "empty role name",
		},
		{
			name:     "role assigned twice after trimming",
			data:     `{"permissions": [], "assignments": {"user": [], " user": []}}`,
			wantLine: 1, wantSubstr: `role "user" is assigned twice`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &gatehouse.Policy{}
			importSeed(t, p)
			importRBAC(t, p, "chat", "modules/chat/rbac.json")
			importRBAC(t, p, "reports", "modules/reports/rbac.json")
			if tt.setup != nil {
				tt.setup(p)
			}
			before := objects(t, p)
			module := tt.module
			if module == "" {
				module = "chat"
			}

			err := ImportModuleRBAC(p, module, []byte(tt.data))
			checkError(t, err, "rbac.json", tt.wantLine, tt.wantPath, tt.wantSubstr)
			if diff := diffObjects(before, objects(t, p)); diff != "" {
				t.Errorf("failed import changed the policy (-before +after):\n%s", diff)
			}
		})
	}
}

// fuzzBase is a policy with every kind of reference an import can touch.
func fuzzBase(t testing.TB) *gatehouse.Policy {
	p := &gatehouse.Policy{}
	importSeed(t, p)
	importRBAC(t, p, "chat", "modules/chat/rbac.json")
	p.Settings.AccessPermission = "access_ai_chat"
	p.Users = []gatehouse.UserEntry{{Email: "ann@example.com", Grants: []gatehouse.Grant{{Permission: "chat.write"}, {Permission: "fetch_loan"}}}}
	p.Agents = []gatehouse.Agent{{ID: "bot", Grants: []gatehouse.Grant{{Permission: "chat.view"}}}}
	p.Tools = []gatehouse.Tool{{Name: "analyze_loan", Permission: "use_ai_loan_tool"}}
	return p
}

// checkImport checks what every import must guarantee: an *Error and an
// unchanged policy on failure; on success a policy that survives the store's
// encoding and does not change when imported again.
func checkImport(t *testing.T, base *gatehouse.Policy, importFn func(p *gatehouse.Policy) error) {
	t.Helper()
	p, err := base.Clone()
	if err != nil {
		t.Fatal(err)
	}
	before := objects(t, p)
	if err := importFn(p); err != nil {
		var perr *Error
		if !errors.As(err, &perr) || len(perr.Problems) == 0 {
			t.Fatalf("import error = %#v, want *Error with problems", err)
		}
		if diff := diffObjects(before, objects(t, p)); diff != "" {
			t.Fatalf("failed import changed the policy (-before +after):\n%s", diff)
		}
		return
	}
	if problems := Validate(p); len(problems) > 0 {
		t.Fatalf("imported policy does not validate: %v", problems)
	}
	after := objects(t, p)
	back, err := gatehouse.PolicyFromObjects(after)
	if err != nil {
		t.Fatalf("PolicyFromObjects(imported) = %v", err)
	}
	if diff := diffObjects(after, objects(t, back)); diff != "" {
		t.Fatalf("imported policy does not round-trip (-imported +decoded):\n%s", diff)
	}
	if err := importFn(p); err != nil {
		t.Fatalf("second import = %v, want success like the first", err)
	}
	if diff := diffObjects(after, objects(t, p)); diff != "" {
		t.Fatalf("second import changed the policy (-first +second):\n%s", diff)
	}
}

func FuzzImportSeed000(f *testing.F) {
	base := fuzzBase(f)
	f.Fuzz(func(t *testing.T, permissions, actions, categories []byte) {
		checkImport(t, base, func(p *gatehouse.Policy) error {
			return ImportSeed000(p, permissions, actions, categories)
		})
	})
}

func FuzzImportModuleRBAC(f *testing.F) {
	base := fuzzBase(f)
	f.Fuzz(func(t *testing.T, module string, data []byte) {
		checkImport(t, base, func(p *gatehouse.Policy) error {
			return ImportModuleRBAC(p, module, data)
		})
	})
}
