package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mailaddr"
	"github.com/gatehouse/gatehouse/money"
)

// maxName bounds names and ids.
const maxName = 256

// locales are the languages action labels and descriptions may use.
var locales = map[string]bool{"de": true, "en": true, "es": true, "fr": true, "it": true, "zh": true}

// Normalize trims names and ids and normalizes emails in place, so that
// " Alice@X.com" and "alice@x.com" are one user everywhere.
func Normalize(p *gatehouse.Policy) {
	trim := func(ss []string) {
		for i := range ss {
			ss[i] = strings.TrimSpace(ss[i])
		}
	}
	trim(p.Settings.DefaultTenants)
	p.Settings.AccessPermission = strings.TrimSpace(p.Settings.AccessPermission)
	p.Settings.AdminPermission = strings.TrimSpace(p.Settings.AdminPermission)
	for i := range p.Permissions {
		x := &p.Permissions[i]
		x.Name, x.Module, x.Feature = strings.TrimSpace(x.Name), strings.TrimSpace(x.Module), strings.TrimSpace(x.Feature)
	}
	for i := range p.Bundles {
		p.Bundles[i].Name = strings.TrimSpace(p.Bundles[i].Name)
		trim(p.Bundles[i].Permissions)
	}
	for i := range p.Categories {
		p.Categories[i].Name = strings.TrimSpace(p.Categories[i].Name)
		trim(p.Categories[i].Bundles)
	}
	for i := range p.Roles {
		p.Roles[i].Name = strings.TrimSpace(p.Roles[i].Name)
		trim(p.Roles[i].Bundles)
		trim(p.Roles[i].Permissions)
	}
	for i := range p.Plans {
		p.Plans[i].Name = strings.TrimSpace(p.Plans[i].Name)
		trim(p.Plans[i].Features)
	}
	for i := range p.Tenants {
		x := &p.Tenants[i]
		x.ID, x.Parent, x.Plan = strings.TrimSpace(x.ID), strings.TrimSpace(x.Parent), strings.TrimSpace(x.Plan)
	}
	subject := func(tenants []string, roles []gatehouse.Assignment, grants []gatehouse.Grant) {
		trim(tenants)
		for i := range roles {
			roles[i].Role, roles[i].Tenant = strings.TrimSpace(roles[i].Role), strings.TrimSpace(roles[i].Tenant)
			roles[i].Condition = strings.TrimSpace(roles[i].Condition)
		}
		for i := range grants {
			grants[i].Permission, grants[i].Tenant = strings.TrimSpace(grants[i].Permission), strings.TrimSpace(grants[i].Tenant)
			grants[i].Condition = strings.TrimSpace(grants[i].Condition)
		}
	}
	var emails mailaddr.Cache
	for i := range p.Users {
		x := &p.Users[i]
		x.Email, x.Plan = canonicalEmail(&emails, x.Email), strings.TrimSpace(x.Plan)
		trim(x.Aliases)
		subject(x.Tenants, x.Roles, x.Grants)
	}
	for i := range p.Agents {
		x := &p.Agents[i]
		x.ID = strings.TrimSpace(x.ID)
		subject(x.Tenants, x.Roles, x.Grants)
	}
	for i := range p.Tools {
		x := &p.Tools[i]
		x.Name, x.Permission, x.Action, x.Flag = strings.TrimSpace(x.Name), strings.TrimSpace(x.Permission), strings.TrimSpace(x.Action), strings.TrimSpace(x.Flag)
	}
	for i := range p.Actions {
		p.Actions[i].Name = strings.TrimSpace(p.Actions[i].Name)
		p.Actions[i].Approver = strings.TrimSpace(p.Actions[i].Approver)
		normalizeLimits(p.Actions[i].Default.Limits)
	}
	for i := range p.Tools {
		x := &p.Tools[i]
		x.Amount, x.Percentage, x.Currency = strings.TrimSpace(x.Amount), strings.TrimSpace(x.Percentage), strings.TrimSpace(x.Currency)
		x.Upstream, x.UpstreamTool = strings.TrimSpace(x.Upstream), strings.TrimSpace(x.UpstreamTool)
	}
	for i := range p.Tenants {
		normalizeActions(&p.Tenants[i])
	}
	for i := range p.Resources {
		x := &p.Resources[i]
		x.Type, x.ID, x.Tenant = strings.TrimSpace(x.Type), strings.TrimSpace(x.ID), strings.TrimSpace(x.Tenant)
	}
}

// canonicalEmail is email in canonical form (package mailaddr), or, for an
// address that has none, normalized for validate to report.
func canonicalEmail(cache *mailaddr.Cache, email string) string {
	if c, err := cache.Canonical(email); err == nil {
		return c
	}
	return gatehouse.NormalizeEmail(email)
}

// normalizeActions trims a tenant's action names and its limits' text.
func normalizeActions(t *gatehouse.Tenant) {
	if t.Actions == nil {
		return
	}
	out := make(map[string]gatehouse.ActionSetting, len(t.Actions))
	for name, set := range t.Actions {
		normalizeLimits(set.Limits)
		out[strings.TrimSpace(name)] = set
	}
	t.Actions = out
}

func normalizeLimits(l *gatehouse.ActionLimits) {
	if l == nil {
		return
	}
	l.Currency, l.Window = strings.TrimSpace(l.Currency), strings.TrimSpace(l.Window)
	trim := func(d *gatehouse.Decimal) { *d = gatehouse.Decimal(strings.TrimSpace(string(*d))) }
	trim(&l.MaxAmount)
	trim(&l.MaxPercentage)
	trim(&l.MaxTotalAmount)
}

// Validate reports every problem of a complete policy, each with its path
// and without a line; it is for policies built in code, such as a CLI
// mutation or an import, after Normalize.
func Validate(p *gatehouse.Policy) []Problem { return validate(p, nil, nil) }

type validator struct {
	absent   map[gatehouse.Kind]bool
	pos      locator
	problems []Problem
	names    map[gatehouse.Kind]map[string]bool
	features map[string]string // feature → plan
	emails   mailaddr.Cache
}

// where names the place of path in messages: its line when the policy came
// from a document, else the path itself.
func (v *validator) where(path string) string {
	if v.pos != nil {
		return fmt.Sprintf("line %d", v.pos.locate(path).line)
	}
	return path
}

// flag checks the frontend flag of owner (a permission or a tool) at
// path: a valid name no other permission or tool uses (flags records them).
func (v *validator) flag(path, flag, owner string, flags map[string]string) {
	if flag == "" {
		return
	}
	if msg := badName("flag", flag); msg != "" {
		v.addf(path, "%s", msg)
	} else if other, dup := flags[flag]; dup {
		v.addf(path, "flag %q is already used by %s", flag, other)
	} else {
		flags[flag] = owner
	}
}

func (v *validator) addf(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// validate checks p; references into kinds marked absent are not checked
// (a partial document is checked again after Merge). pos, when not nil,
// locates the values of the document p was decoded from.
func validate(p *gatehouse.Policy, absent map[gatehouse.Kind]bool, pos locator) []Problem {
	v := &validator{absent: absent, pos: pos, names: map[gatehouse.Kind]map[string]bool{}, features: map[string]string{}}
	v.declareAll(p)

	for i, pl := range p.Plans {
		for j, f := range pl.Features {
			path := fmt.Sprintf("plans[%d].features[%d]", i, j)
			switch other, dup := v.features[f]; {
			case f == "":
				v.addf(path, "empty feature name")
			case badName("feature", f) != "":
				v.addf(path, "%s", badName("feature", f))
			case dup:
				v.addf(path, "feature %q is already offered by plan %q; plans are cumulative, list it once", f, other)
			default:
				v.features[f] = pl.Name
			}
		}
	}
	s := p.Settings
	v.refs("settings.default_tenants", gatehouse.KindTenant, s.DefaultTenants)
	v.ref("settings.access_permission", gatehouse.KindPermission, s.AccessPermission, true)
	v.ref("settings.admin_permission", gatehouse.KindPermission, s.AdminPermission, true)
	for _, name := range slices.Sorted(maps.Keys(s.SubjectTypes)) {
		path := "settings.subject_types." + name
		switch kind := s.SubjectTypes[name]; {
		case strings.TrimSpace(name) == "":
			v.addf(path, "empty subject type")
		case name == string(gatehouse.SubjectUser) || name == string(gatehouse.SubjectAgent):
			v.addf(path, "subject type %q is built in; declare only the application's own types", name)
		case kind != gatehouse.SubjectUser && kind != gatehouse.SubjectAgent:
			v.addf(path, "subject type %q maps to %q: want user or agent", name, kind)
		}
	}
	for i, x := range p.Permissions {
		if x.Feature != "" && !v.absent[gatehouse.KindPlan] && v.features[x.Feature] == "" {
			v.addf(fmt.Sprintf("permissions[%d].feature", i), "feature %q is not offered by any plan", x.Feature)
		}
	}
	for i, x := range p.Bundles {
		v.refs(fmt.Sprintf("bundles[%d].permissions", i), gatehouse.KindPermission, x.Permissions)
	}
	for i, x := range p.Categories {
		v.refs(fmt.Sprintf("categories[%d].bundles", i), gatehouse.KindBundle, x.Bundles)
	}
	for i, x := range p.Roles {
		v.refs(fmt.Sprintf("roles[%d].bundles", i), gatehouse.KindBundle, x.Bundles)
		v.refs(fmt.Sprintf("roles[%d].permissions", i), gatehouse.KindPermission, x.Permissions)
	}
	for i, x := range p.Tenants {
		v.ref(fmt.Sprintf("tenants[%d].parent", i), gatehouse.KindTenant, x.Parent, true)
		v.ref(fmt.Sprintf("tenants[%d].plan", i), gatehouse.KindPlan, x.Plan, true)
		if x.Parent != "" && x.Parent == x.ID {
			v.addf(fmt.Sprintf("tenants[%d].parent", i), "tenant %q is its own parent", x.ID)
		}
	}
	v.tenantCycles(p.Tenants)
	v.subjects(p.Users, p.Agents)
	v.resources(p.Resources)
	flags := map[string]string{}
	for i, x := range p.Permissions {
		v.flag(fmt.Sprintf("permissions[%d].flag", i), x.Flag, "permission "+strconv.Quote(x.Name), flags)
	}
	for i, x := range p.Tools {
		path := fmt.Sprintf("tools[%d]", i)
		v.ref(path+".permission", gatehouse.KindPermission, x.Permission, false)
		v.ref(path+".action", gatehouse.KindAction, x.Action, true)
		v.flag(path+".flag", x.Flag, "tool "+strconv.Quote(x.Name), flags)
	}
	for i, x := range p.Tenants {
		for _, name := range sortedKeys(x.Actions) {
			path := fmt.Sprintf("tenants[%d].actions.%s", i, name)
			v.ref(path, gatehouse.KindAction, name, false)
			v.limits(path+".limits", x.Actions[name].Limits)
		}
	}
	v.ceilings(p.Tenants)
	for i, x := range p.Tools {
		path := fmt.Sprintf("tools[%d]", i)
		for _, arg := range []struct{ key, val string }{{"amount", x.Amount}, {"percentage", x.Percentage}, {"currency", x.Currency}} {
			switch {
			case arg.val == "":
			case x.Action == "":
				v.addf(path+"."+arg.key, "%s maps an argument of an agent action; the tool has no action", arg.key)
			case !validArgPath(arg.val):
				v.addf(path+"."+arg.key, "%q is not an argument path such as args.refund.amount", arg.val)
			}
		}
		switch {
		case x.Upstream != "":
			if msg := badName("upstream", x.Upstream); msg != "" {
				v.addf(path+".upstream", "%s", msg)
			}
		case x.UpstreamTool != "":
			v.addf(path+".upstream_tool", "upstream_tool names a tool of an MCP upstream; the tool names no upstream")
		}
	}
	for i, x := range p.Actions {
		if x.Name == reservedActionName {
			v.addf(fmt.Sprintf("actions[%d].name", i), "%q is reserved: /api/v1/permissions/%s lists the limits", x.Name, x.Name)
		}
		v.ref(fmt.Sprintf("actions[%d].approver_permission", i), gatehouse.KindPermission, x.Approver, true)
		v.limits(fmt.Sprintf("actions[%d].default.limits", i), x.Default.Limits)
		for _, m := range []struct {
			key string
			val map[string]string
		}{{"labels", x.Labels}, {"descriptions", x.Descriptions}} {
			for _, lang := range sortedKeys(m.val) {
				if !locales[lang] {
					v.addf(fmt.Sprintf("actions[%d].%s.%s", i, m.key, lang), "unknown locale %q; use de, en, es, fr, it or zh", lang)
				}
			}
		}
	}
	return v.problems
}

// reservedActionName cannot name an action type: the REST path of an
// action type's policy, /api/v1/permissions/{action_type}, would be that of
// the limits.
const reservedActionName = "limits"

// limits reports the problems of an action policy's limits.
func (v *validator) limits(path string, l *gatehouse.ActionLimits) {
	if l == nil {
		return
	}
	_, problems := money.Limits(*l)
	for _, p := range problems {
		v.addf(path+"."+p.Field, "%s", p.Message)
	}
}

// validArgPath reports whether s is "args" followed by one or more
// non-empty dot-separated keys.
func validArgPath(s string) bool {
	rest, ok := strings.CutPrefix(s, "args.")
	if !ok {
		return false
	}
	for _, key := range strings.Split(rest, ".") {
		if key == "" || strings.TrimSpace(key) != key {
			return false
		}
	}
	return true
}

// declareAll records the names of every kind p declares.
func (v *validator) declareAll(p *gatehouse.Policy) {
	v.declare(gatehouse.KindPermission, "permissions", len(p.Permissions), func(i int) string { return p.Permissions[i].Name }, "name")
	v.declare(gatehouse.KindBundle, "bundles", len(p.Bundles), func(i int) string { return p.Bundles[i].Name }, "name")
	v.declare(gatehouse.KindCategory, "categories", len(p.Categories), func(i int) string { return p.Categories[i].Name }, "name")
	v.declare(gatehouse.KindRole, "roles", len(p.Roles), func(i int) string { return p.Roles[i].Name }, "name")
	v.declare(gatehouse.KindPlan, "plans", len(p.Plans), func(i int) string { return p.Plans[i].Name }, "name")
	v.declare(gatehouse.KindTenant, "tenants", len(p.Tenants), func(i int) string { return p.Tenants[i].ID }, "id")
	v.declare(gatehouse.KindUser, "users", len(p.Users), func(i int) string { return gatehouse.NormalizeEmail(p.Users[i].Email) }, "email")
	v.declare(gatehouse.KindAgent, "agents", len(p.Agents), func(i int) string { return p.Agents[i].ID }, "id")
	v.declare(gatehouse.KindTool, "tools", len(p.Tools), func(i int) string { return p.Tools[i].Name }, "name")
	v.declare(gatehouse.KindAction, "actions", len(p.Actions), func(i int) string { return p.Actions[i].Name }, "name")
}

// declare records the names of one kind, reporting empty, malformed and
// duplicate ones.
func (v *validator) declare(kind gatehouse.Kind, section string, n int, name func(int) string, field string) {
	seen := make(map[string]bool, n)
	first := make(map[string]string, n)
	for i := range n {
		path := fmt.Sprintf("%s[%d].%s", section, i, field)
		id := name(i)
		seen[id] = true
		check := badID
		if kind == gatehouse.KindUser {
			check = badName
		}
		if msg := check(field, id); msg != "" {
			v.addf(path, "%s", msg)
		} else if f, dup := first[id]; dup {
			v.addf(path, "duplicate %s %q (first at %s)", kind, id, v.where(f))
		} else {
			first[id] = path
		}
	}
	v.names[kind] = seen
}

// badName says what is wrong with a name or id, or returns "". Names are
// compared exactly, so surrounding spaces would make a name unreachable.
func badName(field, name string) string {
	switch {
	case name == "":
		return field + " is required"
	case len(name) > maxName:
		return fmt.Sprintf("%s is longer than %d bytes", field, maxName)
	case !utf8.ValidString(name):
		return fmt.Sprintf("%s %q is not valid UTF-8", field, name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Sprintf("%s %q contains control characters", field, name)
	case strings.TrimSpace(name) != name:
		return fmt.Sprintf("%s %q has surrounding spaces", field, name)
	}
	return ""
}

// badID is badName for the ids and names of objects, which also appear in
// paths, logs and admin screens: it also refuses invisible formatting
// characters (bidi overrides such as U+202E, zero-width spaces), which
// make one id look like another, and '/' and "..", which would make an id
// read as a path.
func badID(field, id string) string {
	if msg := badName(field, id); msg != "" {
		return msg
	}
	if i := strings.IndexFunc(id, func(r rune) bool { return unicode.Is(unicode.Cf, r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(id[i:])
		return fmt.Sprintf("%s %q contains the invisible formatting character %U", field, id, r)
	}
	switch {
	case strings.Contains(id, "/"):
		return fmt.Sprintf("%s %q contains a slash", field, id)
	case strings.Contains(id, ".."):
		return fmt.Sprintf("%s %q contains \"..\"", field, id)
	}
	return ""
}

// ref checks that name refers to a declared object of kind.
func (v *validator) ref(path string, kind gatehouse.Kind, name string, optional bool) {
	if msg := v.refProblem(kind, name, optional); msg != "" {
		v.addf(path, "%s", msg)
	}
}

// refProblem says what is wrong with a reference to kind's name, "" if
// nothing: large policies hold millions of references, so their paths are
// built only for a problem.
func (v *validator) refProblem(kind gatehouse.Kind, name string, optional bool) string {
	switch {
	case name == "" && optional:
	case name == "":
		return fmt.Sprintf("%s is required", kind)
	case v.absent[kind]:
	case !v.names[kind][name]:
		return fmt.Sprintf("unknown %s %q", kind, name)
	}
	return ""
}

func (v *validator) refs(path string, kind gatehouse.Kind, names []string) {
	for i, n := range names {
		if msg := v.refProblem(kind, n, false); msg != "" {
			v.addf(path+"["+strconv.Itoa(i)+"]", "%s", msg)
		}
	}
}

// subjects checks users and agents: their emails, plans, references and
// aliases.
func (v *validator) subjects(users []gatehouse.UserEntry, agents []gatehouse.Agent) {
	for i := range users {
		x := &users[i]
		path := "users[" + strconv.Itoa(i) + "]"
		if email := gatehouse.NormalizeEmail(x.Email); email != "" && badName("email", email) == "" {
			if !looksLikeEmail(email) {
				v.addf(path+".email", "%q is not an email address", email)
			} else if c, err := v.emails.Canonical(email); err != nil {
				v.addf(path+".email", "%v", err)
			} else if c != email {
				v.addf(path+".email", "email %q is not in canonical form; write %q", email, c)
			}
		}
		if msg := v.refProblem(gatehouse.KindPlan, x.Plan, true); msg != "" {
			v.addf(path+".plan", "%s", msg)
		}
		v.subject(path, x.Tenants, x.Roles, x.Grants)
	}
	v.aliases(users)
	for i := range agents {
		x := &agents[i]
		v.subject("agents["+strconv.Itoa(i)+"]", x.Tenants, x.Roles, x.Grants)
	}
}

// subject checks one user's or agent's references. A path is formatted
// only for a reference that has a problem: a policy holds millions.
func (v *validator) subject(path string, tenants []string, roles []gatehouse.Assignment, grants []gatehouse.Grant) {
	for i, t := range tenants {
		if msg := v.refProblem(gatehouse.KindTenant, t, false); msg != "" {
			v.addf(path+".tenants["+strconv.Itoa(i)+"]", "%s", msg)
		}
	}
	at := func(list string, i int, field string) string {
		return path + "." + list + "[" + strconv.Itoa(i) + "]." + field
	}
	for i, a := range roles {
		if msg := v.refProblem(gatehouse.KindRole, a.Role, false); msg != "" {
			v.addf(at("roles", i, "role"), "%s", msg)
		}
		if msg := v.refProblem(gatehouse.KindTenant, a.Tenant, true); msg != "" {
			v.addf(at("roles", i, "tenant"), "%s", msg)
		}
	}
	for i, g := range grants {
		if msg := v.refProblem(gatehouse.KindPermission, g.Permission, false); msg != "" {
			v.addf(at("grants", i, "permission"), "%s", msg)
		}
		if msg := v.refProblem(gatehouse.KindTenant, g.Tenant, true); msg != "" {
			v.addf(at("grants", i, "tenant"), "%s", msg)
		}
	}
}

// aliases reports malformed aliases and any id that would name two users:
// an alias repeated, or equal to a user's email.
func (v *validator) aliases(users []gatehouse.UserEntry) {
	owner := make(map[string]string, len(users))
	for _, u := range users {
		owner[gatehouse.NormalizeEmail(u.Email)] = u.Email
	}
	for i, u := range users {
		for j, a := range u.Aliases {
			path := fmt.Sprintf("users[%d].aliases[%d]", i, j)
			if msg := badName("alias", a); msg != "" {
				v.addf(path, "%s", msg)
				continue
			}
			if other, taken := owner[gatehouse.NormalizeEmail(a)]; taken && other != u.Email {
				v.addf(path, "alias %q is the email of user %q", a, other)
				continue
			}
			if other, taken := owner[a]; taken {
				v.addf(path, "alias %q is already an id of user %q", a, other)
				continue
			}
			owner[a] = u.Email
		}
	}
}

// resources checks each resource's type, id and tenant, and that no type
// and id pair repeats. The types Gatehouse itself defines are not
// declared here: tenants and tools have sections of their own.
func (v *validator) resources(rs []gatehouse.ResourceEntry) {
	first := make(map[string]string, len(rs))
	for i, r := range rs {
		path := fmt.Sprintf("resources[%d]", i)
		bad := false
		for _, f := range []struct{ field, val string }{{"type", r.Type}, {"id", r.ID}} {
			if msg := badID(f.field, f.val); msg != "" {
				v.addf(path+"."+f.field, "%s", msg)
				bad = true
			}
		}
		switch {
		case bad:
		case reservedResourceTypes[r.Type]:
			v.addf(path+".type", "resource type %q is Gatehouse's own; declare %ss in their own section", r.Type, r.Type)
		default:
			if f, dup := first[r.Key()]; dup {
				v.addf(path+".id", "duplicate resource %q of type %q (first at %s)", r.ID, r.Type, v.where(f))
			} else {
				first[r.Key()] = path + ".id"
			}
		}
		v.ref(path+".tenant", gatehouse.KindTenant, r.Tenant, true)
	}
}

// reservedResourceTypes are the resource types whose objects the policy
// declares elsewhere.
var reservedResourceTypes = map[string]bool{gatehouse.ResourceTypeTenant: true, gatehouse.ResourceTypeTool: true}

// tenantCycles reports each cycle in the tenant tree once, naming it.
func (v *validator) tenantCycles(tenants []gatehouse.Tenant) {
	index := make(map[string]int, len(tenants))
	for i, t := range tenants {
		if _, dup := index[t.ID]; !dup {
			index[t.ID] = i
		}
	}
	const (
		unvisited = iota
		active
		done
	)
	state := make([]int, len(tenants))
	for start := range tenants {
		var chain []int
		i := start
		for i >= 0 && state[i] == unvisited {
			state[i] = active
			chain = append(chain, i)
			next, ok := index[tenants[i].Parent]
			if !ok || tenants[i].Parent == tenants[i].ID {
				next = -1
			}
			i = next
		}
		if i >= 0 && state[i] == active {
			// The cycle is the chain from i's first appearance on.
			k := 0
			for chain[k] != i {
				k++
			}
			names := make([]string, 0, len(chain)-k+1)
			for _, c := range chain[k:] {
				names = append(names, tenants[c].ID)
			}
			names = append(names, tenants[i].ID)
			v.addf(fmt.Sprintf("tenants[%d].parent", i), "cycle in the tenant tree: %s", strings.Join(names, " → "))
		}
		for _, c := range chain {
			state[c] = done
		}
	}
}

// looksLikeEmail reports whether s has one @ between a non-empty local part
// and domain, and no spaces.
func looksLikeEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") &&
		strings.IndexFunc(s, unicode.IsSpace) < 0
}
