package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// File names the importers locate their problems in.
const (
	seedPermissionsFile = "permissions.json"
	seedActionsFile     = "actions.json"
	seedCategoriesFile  = "category.json"
	rbacFile            = "rbac.json"
)

// seedPermission is one entry of seed 000's permissions.json.
type seedPermission struct {
	API         string `json:"api"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

// seedAction is one entry of seed 000's actions.json; Gatehouse calls it a
// bundle.
type seedAction struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Permissions []string `json:"permissions"`
}

// seedCategory is one entry of seed 000's category.json.
type seedCategory struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Actions     []string `json:"actions"`
}

// rbacDocument is a module's rbac.json (seed 002).
type rbacDocument struct {
	Permissions []string            `json:"permissions"`
	Assignments map[string][]string `json:"assignments"`
}

// ImportSeed000 upserts seed 000's files into dst: permissions.json becomes
// permissions, actions.json bundles and category.json categories. Any of the
// three may be nil and is then skipped. An object named like one in dst
// replaces it (a permission keeps its Feature, which the seed cannot
// express); other objects of dst are untouched and new ones are appended in
// file order. An action's permissions and a category's actions must name
// objects of dst after the upsert.
//
// Every problem is reported at once as an *Error (wrapping
// gatehouse.ErrInvalid) located in its file: malformed JSON, unknown keys,
// wrong types, empty or duplicate names, unknown references, and a seed
// permission named like a module's permission (modules own theirs, see
// ImportModuleRBAC). On error dst is unchanged.
func ImportSeed000(dst *gatehouse.Policy, permissions, actions, categories []byte) error {
	var (
		perms []seedPermission
		acts  []seedAction
		cats  []seedCategory
	)
	permPos, permProblems := decodeSeed(seedPermissionsFile, permissions, &perms)
	actPos, actProblems := decodeSeed(seedActionsFile, actions, &acts)
	catPos, catProblems := decodeSeed(seedCategoriesFile, categories, &cats)
	trimSeed(perms, acts, cats)

	// A file that failed to decode is not checked further, nor are the
	// references into it: they would all be reported as unknown.
	permsDecoded, actsDecoded := len(permProblems) == 0, len(actProblems) == 0
	if permsDecoded {
		permProblems = checkSeedPermissions(dst, perms, permPos)
		permPos.locateAll(seedPermissionsFile, permProblems)
	}
	if actsDecoded {
		var known map[string]bool
		if permsDecoded {
			known = nameSet(dst.Permissions, func(p gatehouse.Permission) string { return p.Name })
			for _, p := range perms {
				known[p.API] = true
			}
		}
		actProblems = checkSeedActions(acts, known, actPos)
		actPos.locateAll(seedActionsFile, actProblems)
	}
	if len(catProblems) == 0 {
		var known map[string]bool
		if actsDecoded {
			known = nameSet(dst.Bundles, func(b gatehouse.Bundle) string { return b.Name })
			for _, a := range acts {
				known[a.Name] = true
			}
		}
		catProblems = checkSeedCategories(cats, known, catPos)
		catPos.locateAll(seedCategoriesFile, catProblems)
	}
	if problems := slices.Concat(permProblems, actProblems, catProblems); len(problems) > 0 {
		return &Error{Problems: problems}
	}

	features := make(map[string]string, len(dst.Permissions))
	for _, p := range dst.Permissions {
		features[p.Name] = p.Feature
	}
	newPerms := make([]gatehouse.Permission, len(perms))
	for i, p := range perms {
		newPerms[i] = gatehouse.Permission{Name: p.API, Title: p.Title, Description: p.Description, Feature: features[p.API]}
	}
	newBundles := make([]gatehouse.Bundle, len(acts))
	for i, a := range acts {
		newBundles[i] = gatehouse.Bundle{Name: a.Name, Description: a.Description, Permissions: a.Permissions}
	}
	newCategories := make([]gatehouse.Category, len(cats))
	for i, c := range cats {
		newCategories[i] = gatehouse.Category{Name: c.Name, Description: c.Description, Bundles: c.Actions}
	}
	dst.Permissions = upsert(dst.Permissions, newPerms, func(p gatehouse.Permission) string { return p.Name })
	dst.Bundles = upsert(dst.Bundles, newBundles, func(b gatehouse.Bundle) string { return b.Name })
	dst.Categories = upsert(dst.Categories, newCategories, func(c gatehouse.Category) string { return c.Name })
	return nil
}

// decodeSeed decodes one seed file; nil data decodes to nothing.
func decodeSeed[T any](file string, data []byte, v *[]T) (positions, []Problem) {
	if data == nil {
		return positions{}, nil
	}
	if len(data) > maxDocument {
		return nil, []Problem{{File: file, Message: fmt.Sprintf("document larger than %d bytes", maxDocument)}}
	}
	return decodeDocument(file, data, v)
}

// trimSeed trims names and references the way Normalize will, so that the
// checks see the names the policy will hold.
func trimSeed(perms []seedPermission, acts []seedAction, cats []seedCategory) {
	for i := range perms {
		perms[i].API = strings.TrimSpace(perms[i].API)
	}
	for i := range acts {
		acts[i].Name = strings.TrimSpace(acts[i].Name)
		trimAll(acts[i].Permissions)
	}
	for i := range cats {
		cats[i].Name = strings.TrimSpace(cats[i].Name)
		trimAll(cats[i].Actions)
	}
}

func checkSeedPermissions(dst *gatehouse.Policy, perms []seedPermission, pos positions) []Problem {
	modules := make(map[string]string, len(dst.Permissions))
	for _, p := range dst.Permissions {
		if p.Module != "" {
			modules[p.Name] = p.Module
		}
	}
	var problems []Problem
	seen := make(map[string]string, len(perms))
	for i, p := range perms {
		path := fmt.Sprintf("[%d].api", i)
		switch first, dup := seen[p.API]; {
		case p.API == "":
			problems = append(problems, Problem{Path: path, Message: "empty api"})
		case badName("api", p.API) != "":
			problems = append(problems, Problem{Path: path, Message: badName("api", p.API)})
		case dup:
			problems = append(problems, Problem{Path: path, Message: fmt.Sprintf("duplicate api %q%s", p.API, firstAt(pos, first))})
		case modules[p.API] != "":
			problems = append(problems, Problem{Path: path, Message: fmt.Sprintf("permission %q belongs to module %q; change it in that module's rbac.json", p.API, modules[p.API])})
		default:
			seen[p.API] = path
		}
	}
	return problems
}

// checkSeedActions checks actions.json; known, when not nil, holds the
// permissions the actions may name.
func checkSeedActions(acts []seedAction, known map[string]bool, pos positions) []Problem {
	var problems []Problem
	seen := make(map[string]string, len(acts))
	for i, a := range acts {
		path := fmt.Sprintf("[%d].name", i)
		switch first, dup := seen[a.Name]; {
		case a.Name == "":
			problems = append(problems, Problem{Path: path, Message: "empty name"})
		case badName("name", a.Name) != "":
			problems = append(problems, Problem{Path: path, Message: badName("name", a.Name)})
		case dup:
			problems = append(problems, Problem{Path: path, Message: fmt.Sprintf("duplicate action %q%s", a.Name, firstAt(pos, first))})
		default:
			seen[a.Name] = path
		}
		problems = append(problems, checkRefs(fmt.Sprintf("[%d].permissions", i), "permission", a.Permissions, known)...)
	}
	return problems
}

// checkSeedCategories checks category.json; known, when not nil, holds the
// actions the categories may name.
func checkSeedCategories(cats []seedCategory, known map[string]bool, pos positions) []Problem {
	var problems []Problem
	seen := make(map[string]string, len(cats))
	for i, c := range cats {
		path := fmt.Sprintf("[%d].name", i)
		switch first, dup := seen[c.Name]; {
		case c.Name == "":
			problems = append(problems, Problem{Path: path, Message: "empty name"})
		case badName("name", c.Name) != "":
			problems = append(problems, Problem{Path: path, Message: badName("name", c.Name)})
		case dup:
			problems = append(problems, Problem{Path: path, Message: fmt.Sprintf("duplicate category %q%s", c.Name, firstAt(pos, first))})
		default:
			seen[c.Name] = path
		}
		problems = append(problems, checkRefs(fmt.Sprintf("[%d].actions", i), "action", c.Actions, known)...)
	}
	return problems
}

// checkRefs reports empty, repeated and, when known is not nil, unknown
// names in the list at path.
func checkRefs(path, what string, names []string, known map[string]bool) []Problem {
	var problems []Problem
	seen := make(map[string]bool, len(names))
	for j, n := range names {
		p := Problem{Path: fmt.Sprintf("%s[%d]", path, j)}
		switch {
		case n == "":
			p.Message = "empty " + what + " name"
		case seen[n]:
			p.Message = fmt.Sprintf("%s %q is listed twice", what, n)
		case known != nil && !known[n]:
			p.Message = fmt.Sprintf("unknown %s %q", what, n)
		default:
			seen[n] = true
			continue
		}
		problems = append(problems, p)
	}
	return problems
}

// ImportModuleRBAC syncs a module's rbac.json (seed 002) into dst the way
// the module runtime does when it loads the module:
//
//   - the permissions of module become exactly the file's list: new ones are
//     created with Module set, ones no longer listed are deleted and removed
//     from every bundle, role and user or agent grant;
//   - every role named in assignments (created if missing) holds exactly the
//     assigned permissions of the module: those it held keep their place,
//     the others are appended in file order, so a re-import reorders
//     nothing; roles not named only lose the deleted permissions.
//
// Permissions of other modules and without a module are never changed.
// Every problem is reported at once as an *Error located in "rbac.json":
// malformed JSON, unknown keys, wrong types, a missing permissions list,
// empty or duplicate names, a listed permission that exists outside the
// module, an assignment of a permission the file does not list, and a
// deletion that would break a tool or a setting naming the permission. An
// empty module name is a problem too. On error dst is unchanged.
func ImportModuleRBAC(dst *gatehouse.Policy, module string, data []byte) error {
	var problems []Problem
	module = strings.TrimSpace(module)
	if module == "" {
		problems = append(problems, Problem{File: rbacFile, Line: 1, Column: 1, Message: "empty module name"})
	} else if msg := badName("module", module); msg != "" {
		problems = append(problems, Problem{File: rbacFile, Line: 1, Column: 1, Message: msg})
	}
	if len(data) > maxDocument {
		problems = append(problems, Problem{File: rbacFile, Message: fmt.Sprintf("document larger than %d bytes", maxDocument)})
		return &Error{Problems: problems}
	}
	var doc rbacDocument
	pos, decodeProblems := decodeDocument(rbacFile, data, &doc)
	if len(decodeProblems) > 0 {
		return &Error{Problems: append(problems, decodeProblems...)}
	}
	// Trim names the way Normalize will; roles that differ only in spaces
	// would otherwise overwrite each other in an unpredictable order.
	var checked []Problem
	trimAll(doc.Permissions)
	assignments := make(map[string][]string, len(doc.Assignments))
	for _, raw := range sortedKeys(doc.Assignments) {
		role := strings.TrimSpace(raw)
		if _, dup := assignments[role]; dup {
			checked = append(checked, Problem{Path: "assignments." + raw, Message: fmt.Sprintf("role %q is assigned twice", role)})
			continue
		}
		trimAll(doc.Assignments[raw])
		assignments[role] = doc.Assignments[raw]
	}
	doc.Assignments = assignments

	checked = append(checked, checkRBAC(dst, module, doc, pos)...)
	pos.locateAll(rbacFile, checked)
	if problems = append(problems, checked...); len(problems) > 0 {
		return &Error{Problems: problems}
	}
	syncModule(dst, module, doc)
	return nil
}

func checkRBAC(dst *gatehouse.Policy, module string, doc rbacDocument, pos positions) []Problem {
	var problems []Problem
	addf := func(path, format string, args ...any) {
		problems = append(problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if _, ok := pos["permissions"]; !ok {
		addf("", `missing key "permissions"; list the module's permissions, [] for none`)
	}
	existing := make(map[string]gatehouse.Permission, len(dst.Permissions))
	for _, p := range dst.Permissions {
		existing[p.Name] = p
	}
	listed := make(map[string]bool, len(doc.Permissions))
	for i, name := range doc.Permissions {
		path := fmt.Sprintf("permissions[%d]", i)
		p, exists := existing[name]
		switch {
		case name == "":
			addf(path, "empty permission name")
		case badName("permission", name) != "":
			addf(path, "%s", badName("permission", name))
		case listed[name]:
			addf(path, "permission %q is listed twice", name)
		case exists && p.Module == "":
			addf(path, "permission %q already exists outside any module", name)
		case exists && p.Module != module:
			addf(path, "permission %q already belongs to module %q", name, p.Module)
		}
		listed[name] = true
	}

	for _, role := range sortedKeys(doc.Assignments) {
		if role == "" {
			addf("assignments", "empty role name")
			continue
		}
		if msg := badName("role", role); msg != "" {
			addf("assignments."+role, "%s", msg)
			continue
		}
		seen := make(map[string]bool)
		for j, name := range doc.Assignments[role] {
			path := fmt.Sprintf("assignments.%s[%d]", role, j)
			switch {
			case name == "":
				addf(path, "empty permission name")
			case seen[name]:
				addf(path, "permission %q is listed twice", name)
			case !listed[name]:
				addf(path, "permission %q is not in the module's permissions list", name)
			}
			seen[name] = true
		}
	}

	// Deleting a permission a tool or a setting needs would silently break
	// them; the operator has to change those first.
	for _, p := range dst.Permissions {
		if p.Module != module || listed[p.Name] {
			continue
		}
		for _, t := range dst.Tools {
			if t.Permission == p.Name {
				addf("permissions", "permission %q is no longer listed but tool %q requires it; change the tool first", p.Name, t.Name)
			}
		}
		if s := dst.Settings; s.AccessPermission == p.Name || s.AdminPermission == p.Name {
			addf("permissions", "permission %q is no longer listed but the settings name it; change the settings first", p.Name)
		}
	}
	return problems
}

// syncModule applies a checked rbac.json of module to dst.
func syncModule(dst *gatehouse.Policy, module string, doc rbacDocument) {
	listed := make(map[string]bool, len(doc.Permissions))
	for _, name := range doc.Permissions {
		listed[name] = true
	}
	// owned holds the module's permissions before and after the sync; a
	// named role's permissions among them become its assignment.
	owned := make(map[string]bool, len(doc.Permissions))
	removed := make(map[string]bool)
	present := make(map[string]bool, len(dst.Permissions))
	perms := make([]gatehouse.Permission, 0, len(dst.Permissions)+len(doc.Permissions))
	for _, p := range dst.Permissions {
		if p.Module == module {
			owned[p.Name] = true
			if !listed[p.Name] {
				removed[p.Name] = true
				continue
			}
		}
		present[p.Name] = true
		perms = append(perms, p)
	}
	for _, name := range doc.Permissions {
		owned[name] = true
		if !present[name] {
			perms = append(perms, gatehouse.Permission{Name: name, Module: module})
		}
	}
	dst.Permissions = perms

	for i := range dst.Bundles {
		dst.Bundles[i].Permissions = without(dst.Bundles[i].Permissions, removed)
	}
	for i := range dst.Roles {
		dst.Roles[i].Permissions = without(dst.Roles[i].Permissions, removed)
	}
	for i := range dst.Users {
		dst.Users[i].Grants = withoutGrants(dst.Users[i].Grants, removed)
	}
	for i := range dst.Agents {
		dst.Agents[i].Grants = withoutGrants(dst.Agents[i].Grants, removed)
	}

	for _, name := range sortedKeys(doc.Assignments) {
		i := roleIndex(dst, name)
		if i < 0 {
			dst.Roles = append(dst.Roles, gatehouse.Role{Name: name})
			i = len(dst.Roles) - 1
		}
		r := &dst.Roles[i]
		r.Permissions = assign(r.Permissions, owned, doc.Assignments[name])
	}
}

func roleIndex(p *gatehouse.Policy, name string) int {
	for i := range p.Roles {
		if p.Roles[i].Name == name {
			return i
		}
	}
	return -1
}

// assign returns names holding, of the owned names, exactly assigned: the
// ones names holds keep their place, the others are appended in order.
func assign(names []string, owned map[string]bool, assigned []string) []string {
	want := make(map[string]bool, len(assigned))
	for _, n := range assigned {
		want[n] = true
	}
	var out []string
	held := make(map[string]bool, len(assigned))
	for _, n := range names {
		if owned[n] {
			if !want[n] || held[n] {
				continue
			}
			held[n] = true
		}
		out = append(out, n)
	}
	for _, n := range assigned {
		if !held[n] {
			out = append(out, n)
		}
	}
	return out
}

// without returns a new list of the names not in drop; nil if none remain.
func without(names []string, drop map[string]bool) []string {
	var out []string
	for _, n := range names {
		if !drop[n] {
			out = append(out, n)
		}
	}
	return out
}

func withoutGrants(grants []gatehouse.Grant, drop map[string]bool) []gatehouse.Grant {
	var out []gatehouse.Grant
	for _, g := range grants {
		if !drop[g.Permission] {
			out = append(out, g)
		}
	}
	return out
}

// upsert replaces the items of dst named like an item of src and appends
// the others in src order.
func upsert[T any](dst, src []T, name func(T) string) []T {
	index := make(map[string]int, len(dst))
	for i, v := range dst {
		if _, dup := index[name(v)]; !dup {
			index[name(v)] = i
		}
	}
	for _, v := range src {
		if i, ok := index[name(v)]; ok {
			dst[i] = v
			continue
		}
		index[name(v)] = len(dst)
		dst = append(dst, v)
	}
	return dst
}

func nameSet[T any](items []T, name func(T) string) map[string]bool {
	set := make(map[string]bool, len(items))
	for _, v := range items {
		set[name(v)] = true
	}
	return set
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func trimAll(names []string) {
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
}

// firstAt formats where the first of two duplicates is.
func firstAt(pos positions, path string) string {
	if p, ok := pos[path]; ok {
		return fmt.Sprintf(" (first at line %d)", p.line)
	}
	return ""
}
