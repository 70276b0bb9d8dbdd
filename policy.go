package gatehouse

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Policy is the whole declarative state Gatehouse decides from: the RBAC
// model, tenants, plans, subjects, tools and agent action types. The policy
// document (package policy) is its YAML/JSON form; the store persists it as
// Objects; the engine compiles it into an immutable snapshot.
//
// Names and ids are case-sensitive except user emails, which are stored
// normalized (see NormalizeEmail).
type Policy struct {
	Settings    Settings     `json:"settings,omitzero"`
	Permissions []Permission `json:"permissions,omitempty"`
	Bundles     []Bundle     `json:"bundles,omitempty"`
	Categories  []Category   `json:"categories,omitempty"`
	Roles       []Role       `json:"roles,omitempty"`
	// Plans are ordered from the lowest tier to the highest; each tier
	// includes the features of every tier below it.
	Plans   []Plan       `json:"plans,omitempty"`
	Tenants []Tenant     `json:"tenants,omitempty"`
	Users   []UserEntry  `json:"users,omitempty"`
	Agents  []Agent      `json:"agents,omitempty"`
	Tools   []Tool       `json:"tools,omitempty"`
	Actions []ActionType `json:"actions,omitempty"`
	// Resources are the application's own objects Gatehouse knows by type
	// and id, so AuthZEN resource search can list them and conditions see
	// their stored attributes.
	Resources []ResourceEntry `json:"resources,omitempty"`
}

// Settings are the policy-wide options.
type Settings struct {
	// DefaultTenants are visible to users who have no tenant list of their own.
	DefaultTenants []string `json:"default_tenants,omitempty"`
	// AccessPermission is the surface permission every tool call needs
	// besides the tool's own (seed 000's access_ai_chat); empty means none.
	AccessPermission string `json:"access_permission,omitempty"`
	// AdminPermission lets a subject administer Gatehouse within the tenants
	// its grant covers (seed 000's manage_ai_tools); superusers always may.
	AdminPermission string `json:"admin_permission,omitempty"`
	// SubjectTypes maps the application's AuthZEN subject types (identity,
	// employee, service…) onto user or agent; user and agent always work.
	SubjectTypes map[string]SubjectType `json:"subject_types,omitempty"`
}

// Permission is the smallest named right, e.g. access_ai_chat or chat.view.
type Permission struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Module is set for permissions synced from a module's rbac.json; a
	// re-import replaces exactly the permissions of its module.
	Module string `json:"module,omitempty"`
	// Feature, when set, must be in the effective plan for the permission
	// to be usable (see Plan).
	Feature string `json:"feature,omitempty"`
	// Flag, when set, is a frontend capability flag (seed 000's
	// canAccessChat) that Effective reports true while the permission is
	// held and usable.
	Flag string `json:"flag,omitempty"`
}

// Bundle is a named set of permissions granted together (seed 000's action).
type Bundle struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
}

// Category groups bundles for display and admin screens; it grants nothing.
type Category struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Bundles     []string `json:"bundles,omitempty"`
}

// Role is a named set of bundles and permissions, assigned to subjects.
type Role struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Bundles     []string `json:"bundles,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
}

// Plan is one tier; Features lists what this tier adds to the tiers below.
type Plan struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Features    []string `json:"features,omitempty"`
}

// Tenant is a customer unit data belongs to (organization, client, store).
// Tenants form a forest through Parent.
type Tenant struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Parent string `json:"parent,omitempty"`
	// Plan applies to this tenant and every descendant without its own.
	Plan       string         `json:"plan,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	// Actions are the tenant's own action settings by action type; what a
	// tenant does not set it inherits (see ActionSetting).
	Actions map[string]ActionSetting `json:"actions,omitempty"`
}

// Assignment binds a role to a subject, globally or, with Tenant set, for
// that tenant and its whole subtree. A non-empty Condition is a CEL
// expression that must evaluate to true for the assignment to apply.
type Assignment struct {
	Role      string `json:"role"`
	Tenant    string `json:"tenant,omitempty"`
	Condition string `json:"condition,omitempty"`
}

// Grant gives one permission directly to a subject, scoped and conditioned
// like an Assignment.
type Grant struct {
	Permission string `json:"permission"`
	Tenant     string `json:"tenant,omitempty"`
	Condition  string `json:"condition,omitempty"`
}

// UserEntry is a human user known to Gatehouse, keyed by normalized email.
type UserEntry struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
	// Aliases are other ids the user is known by, compared exactly: an
	// identity provider's subject, an employee number, a short login. A
	// request may name the user by any of them instead of the email.
	Aliases []string `json:"aliases,omitempty"`
	// Superuser bypasses RBAC, plans and tenant visibility, never agent
	// action policies and limits.
	Superuser bool `json:"superuser,omitempty"`
	// Tenants is the exact set of tenants the user may see. Nil means the
	// policy's default tenants; an empty, non-nil list means none.
	Tenants []string     `json:"tenants,omitzero"`
	Roles   []Assignment `json:"roles,omitempty"`
	Grants  []Grant      `json:"grants,omitempty"`
	// Plan is the user's own plan (B2C); a tenant plan takes precedence.
	Plan       string         `json:"plan,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Agent is a service identity that calls tools, usually acting for a user.
type Agent struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// Tenants follows the same rule as UserEntry.Tenants.
	Tenants    []string       `json:"tenants,omitzero"`
	Roles      []Assignment   `json:"roles,omitempty"`
	Grants     []Grant        `json:"grants,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// ResourceEntry is one of the application's objects, e.g. a record or a
// document, known to Gatehouse by Type and ID. Tenant, when set, is the
// tenant the resource belongs to: a decision about it is a decision in that
// tenant unless the request names another. Attributes are what conditions
// see as resource.properties when the request does not send them.
type ResourceEntry struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Name       string         `json:"name,omitempty"`
	Tenant     string         `json:"tenant,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Key identifies a resource among all types: "type/id". Types never
// contain a slash, so the key splits back unambiguously.
func (r *ResourceEntry) Key() string { return r.Type + "/" + r.ID }

// Tool is something an AI may call. Calling it needs Permission (and the
// policy's AccessPermission); Action, when set, names the agent action type
// whose tenant policy also applies. Flag names the capability flag a
// frontend reads (seed 000's canUseLoanTool).
type Tool struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Permission  string `json:"permission"`
	Action      string `json:"action,omitempty"`
	Flag        string `json:"flag,omitempty"`
	// Amount, Percentage and Currency locate the action's figures in the
	// tool's arguments, e.g. "args.refund.amount"; without Currency the
	// amount is in the currency of the action's limits.
	Amount     string `json:"amount,omitempty"`
	Percentage string `json:"percentage,omitempty"`
	Currency   string `json:"currency,omitempty"`
	// Upstream, when set, names the MCP upstream (declared in the
	// gateway's configuration, never in the policy) whose tool UpstreamTool
	// (default: Name) this tool is: the MCP gateway shows it as Name to
	// whoever may call it and forwards allowed calls.
	Upstream     string `json:"upstream,omitempty"`
	UpstreamTool string `json:"upstream_tool,omitempty"`
}

// ActionType is a side-effecting operation an agent may perform on a
// tenant's behalf, such as process_refund. Labels and Descriptions are keyed
// by locale (de, en, es, fr, it, zh).
type ActionType struct {
	Name         string            `json:"name"`
	Labels       map[string]string `json:"labels,omitempty"`
	Descriptions map[string]string `json:"descriptions,omitempty"`
	// Default is the policy of a tenant that has none of its own.
	Default ActionPolicy `json:"default"`
	// Approver, when set, is the permission whose holders in a tenant may
	// confirm the action there besides the customer it is for.
	Approver string `json:"approver_permission,omitempty"`
}

// ActionPolicy says whether an agent may perform an action in a tenant,
// whether a human must confirm it first, and within which limits.
type ActionPolicy struct {
	Enabled              bool          `json:"enabled"`
	RequiresConfirmation bool          `json:"requires_confirmation"`
	Limits               *ActionLimits `json:"limits,omitempty"`
}

// Kind names one kind of policy object.
type Kind string

// Object kinds, in the order a policy document lists them.
const (
	KindSettings   Kind = "settings"
	KindPermission Kind = "permission"
	KindBundle     Kind = "bundle"
	KindCategory   Kind = "category"
	KindRole       Kind = "role"
	KindPlan       Kind = "plan"
	KindTenant     Kind = "tenant"
	KindUser       Kind = "user"
	KindAgent      Kind = "agent"
	KindTool       Kind = "tool"
	KindAction     Kind = "action"
	KindResource   Kind = "resource"
)

// Kinds lists every object kind in document order.
var Kinds = []Kind{KindSettings, KindPermission, KindBundle, KindCategory, KindRole,
	KindPlan, KindTenant, KindUser, KindAgent, KindTool, KindAction, KindResource}

// Rank is the kind's place in document order; unknown kinds sort last.
func (k Kind) Rank() int {
	for i, kind := range Kinds {
		if kind == k {
			return i
		}
	}
	return len(Kinds)
}

// Section is the kind's top-level key in a policy document ("roles").
func (k Kind) Section() string {
	switch k {
	case KindSettings:
		return "settings"
	case KindCategory:
		return "categories"
	}
	return string(k) + "s"
}

// settingsID is the id of the single settings object.
const settingsID = "settings"

// Object is one policy object as the store persists it: the canonical JSON
// of one permission, role, user, … keyed by kind and id. Pos orders objects
// whose order is meaningful (plans, lowest tier first) and is 0 otherwise.
type Object struct {
	Kind Kind            `json:"kind"`
	ID   string          `json:"id"`
	Pos  int             `json:"pos,omitempty"`
	Body json.RawMessage `json:"body"`
}

// Objects returns the policy as objects sorted by kind (document order) and
// then by Pos and id. The empty settings object is omitted.
func (p *Policy) Objects() ([]Object, error) {
	var out []Object
	add := func(kind Kind, id string, pos int, v any) error {
		body, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s %q: %w", kind, id, err)
		}
		out = append(out, Object{Kind: kind, ID: id, Pos: pos, Body: body})
		return nil
	}
	var err error
	if !p.Settings.isZero() {
		err = add(KindSettings, settingsID, 0, p.Settings)
	}
	for i := 0; err == nil && i < len(p.Permissions); i++ {
		err = add(KindPermission, p.Permissions[i].Name, 0, p.Permissions[i])
	}
	for i := 0; err == nil && i < len(p.Bundles); i++ {
		err = add(KindBundle, p.Bundles[i].Name, 0, p.Bundles[i])
	}
	for i := 0; err == nil && i < len(p.Categories); i++ {
		err = add(KindCategory, p.Categories[i].Name, 0, p.Categories[i])
	}
	for i := 0; err == nil && i < len(p.Roles); i++ {
		err = add(KindRole, p.Roles[i].Name, 0, p.Roles[i])
	}
	for i := 0; err == nil && i < len(p.Plans); i++ {
		err = add(KindPlan, p.Plans[i].Name, i, p.Plans[i])
	}
	for i := 0; err == nil && i < len(p.Tenants); i++ {
		err = add(KindTenant, p.Tenants[i].ID, 0, p.Tenants[i])
	}
	for i := 0; err == nil && i < len(p.Users); i++ {
		err = add(KindUser, p.Users[i].Email, 0, p.Users[i])
	}
	for i := 0; err == nil && i < len(p.Agents); i++ {
		err = add(KindAgent, p.Agents[i].ID, 0, p.Agents[i])
	}
	for i := 0; err == nil && i < len(p.Tools); i++ {
		err = add(KindTool, p.Tools[i].Name, 0, p.Tools[i])
	}
	for i := 0; err == nil && i < len(p.Actions); i++ {
		err = add(KindAction, p.Actions[i].Name, 0, p.Actions[i])
	}
	for i := 0; err == nil && i < len(p.Resources); i++ {
		err = add(KindResource, p.Resources[i].Key(), 0, p.Resources[i])
	}
	if err != nil {
		return nil, err
	}
	SortObjects(out)
	return out, nil
}

// SortObjects sorts objects by kind in document order, then Pos, then id.
func SortObjects(objs []Object) {
	sort.SliceStable(objs, func(i, j int) bool {
		return objectLess(objs[i].Kind, objs[i].Pos, objs[i].ID, objs[j].Kind, objs[j].Pos, objs[j].ID)
	})
}

// SortChanges sorts changes in the order SortObjects gives their objects.
func SortChanges(changes []Change) {
	sort.SliceStable(changes, func(i, j int) bool {
		return objectLess(changes[i].Kind, changes[i].Pos, changes[i].ID, changes[j].Kind, changes[j].Pos, changes[j].ID)
	})
}

func objectLess(ak Kind, apos int, aid string, bk Kind, bpos int, bid string) bool {
	if ar, br := ak.Rank(), bk.Rank(); ar != br {
		return ar < br
	}
	if apos != bpos {
		return apos < bpos
	}
	return aid < bid
}

// PolicyFromObjects rebuilds a policy from stored objects in any order. An
// object of an unknown kind or with an undecodable body is ErrCorrupt.
func PolicyFromObjects(objs []Object) (*Policy, error) {
	b := NewPolicyBuilder()
	for _, o := range objs {
		if err := b.Add(o); err != nil {
			return nil, err
		}
	}
	return b.Policy(), nil
}

// A PolicyBuilder decodes a policy's objects one at a time, in any order,
// into the policy PolicyFromObjects gives for all of them, so that a
// loader need not hold every object's body at once (PolicyScanner). The ids
// objects repeat are kept once each (see interner).
type PolicyBuilder struct {
	p  Policy
	in interner
	// keys are the place of each decoded entry, per kind, in the order
	// added; sorted is false for a kind whose objects came out of order.
	keys   map[Kind][]objectKey
	sorted map[Kind]bool
}

type objectKey struct {
	pos int
	id  string
}

func (k objectKey) compare(o objectKey) int {
	if k.pos != o.pos {
		return cmp.Compare(k.pos, o.pos)
	}
	return strings.Compare(k.id, o.id)
}

// NewPolicyBuilder returns an empty builder.
func NewPolicyBuilder() *PolicyBuilder {
	return &PolicyBuilder{in: interner{}, keys: map[Kind][]objectKey{}, sorted: map[Kind]bool{}}
}

// Add decodes o into its section; a body that does not decode is
// ErrCorrupt. Nothing keeps o.Body.
func (b *PolicyBuilder) Add(o Object) error {
	p, in := &b.p, b.in
	var err error
	switch o.Kind {
	case KindSettings:
		if err = json.Unmarshal(o.Body, &p.Settings); err == nil {
			in.object(&p.Settings)
		}
	case KindPermission:
		err = appendDecoded(o.Body, &p.Permissions, in)
	case KindBundle:
		err = appendDecoded(o.Body, &p.Bundles, in)
	case KindCategory:
		err = appendDecoded(o.Body, &p.Categories, in)
	case KindRole:
		err = appendDecoded(o.Body, &p.Roles, in)
	case KindPlan:
		err = appendDecoded(o.Body, &p.Plans, in)
	case KindTenant:
		err = appendDecoded(o.Body, &p.Tenants, in)
	case KindUser:
		err = appendDecoded(o.Body, &p.Users, in)
	case KindAgent:
		err = appendDecoded(o.Body, &p.Agents, in)
	case KindTool:
		err = appendDecoded(o.Body, &p.Tools, in)
	case KindAction:
		err = appendDecoded(o.Body, &p.Actions, in)
	case KindResource:
		err = appendDecoded(o.Body, &p.Resources, in)
	default:
		err = fmt.Errorf("unknown kind")
	}
	if err != nil {
		return fmt.Errorf("decode %s %q: %v: %w", o.Kind, o.ID, err, ErrCorrupt)
	}
	if o.Kind == KindSettings {
		return nil
	}
	key, keys := objectKey{o.Pos, o.ID}, b.keys[o.Kind]
	if len(keys) == 0 {
		b.sorted[o.Kind] = true
	} else if keys[len(keys)-1].compare(key) > 0 {
		b.sorted[o.Kind] = false
	}
	b.keys[o.Kind] = append(keys, key)
	return nil
}

// Policy returns the policy of the objects added, each section in the
// order SortObjects gives its objects. The builder must not be used after.
func (b *PolicyBuilder) Policy() *Policy {
	p := &b.p
	for kind, sorted := range b.sorted {
		if sorted {
			continue
		}
		keys := b.keys[kind]
		switch kind {
		case KindPermission:
			sortByKeys(p.Permissions, keys)
		case KindBundle:
			sortByKeys(p.Bundles, keys)
		case KindCategory:
			sortByKeys(p.Categories, keys)
		case KindRole:
			sortByKeys(p.Roles, keys)
		case KindPlan:
			sortByKeys(p.Plans, keys)
		case KindTenant:
			sortByKeys(p.Tenants, keys)
		case KindUser:
			sortByKeys(p.Users, keys)
		case KindAgent:
			sortByKeys(p.Agents, keys)
		case KindTool:
			sortByKeys(p.Tools, keys)
		case KindAction:
			sortByKeys(p.Actions, keys)
		case KindResource:
			sortByKeys(p.Resources, keys)
		}
	}
	return p
}

// sortByKeys sorts s, whose entry i is at keys[i], by key, stably.
func sortByKeys[T any](s []T, keys []objectKey) {
	order := make([]int, len(s))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return keys[i].compare(keys[j]) })
	sorted := make([]T, len(s))
	for i, j := range order {
		sorted[i] = s[j]
	}
	copy(s, sorted)
}

func appendDecoded[T any](body []byte, dst *[]T, in interner) error {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	*dst = append(*dst, v)
	in.object(&(*dst)[len(*dst)-1])
	return nil
}

// Clone returns a deep copy of p, made through its canonical encoding.
func (p *Policy) Clone() (*Policy, error) {
	objs, err := p.Objects()
	if err != nil {
		return nil, err
	}
	return PolicyFromObjects(objs)
}

func (s Settings) isZero() bool {
	return len(s.DefaultTenants) == 0 && s.AccessPermission == "" && s.AdminPermission == ""
}

// User returns the user with the normalized email, or nil.
func (p *Policy) User(email string) *UserEntry {
	email = NormalizeEmail(email)
	for i := range p.Users {
		if p.Users[i].Email == email {
			return &p.Users[i]
		}
	}
	return nil
}

// Tenant returns the tenant with id, or nil.
func (p *Policy) Tenant(id string) *Tenant {
	for i := range p.Tenants {
		if p.Tenants[i].ID == id {
			return &p.Tenants[i]
		}
	}
	return nil
}

// Superusers returns the emails of all superusers.
func (p *Policy) Superusers() []string {
	var out []string
	for _, u := range p.Users {
		if u.Superuser {
			out = append(out, u.Email)
		}
	}
	return out
}
