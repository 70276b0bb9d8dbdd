package engine

import (
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/gatehouse/gatehouse"
)

// Snapshot is a compiled, immutable policy. Every id of the policy is
// interned to an int32 index at Compile; permission sets are bitsets shared
// between subjects that hold the same set. A Snapshot is safe for
// concurrent use and never changes after Compile.
type Snapshot struct {
	version int64
	sets    *setTable

	perms   []permInfo
	permIdx map[string]int32
	// permsByName lists permission indices sorted by name.
	permsByName []int32

	bundles []bundleInfo
	roles   []roleInfo

	plans    []string
	features []featureInfo
	// featuresByName lists feature indices sorted by name.
	featuresByName []int32

	tenants   []tenantInfo
	tenantIdx map[string]int32
	// tenantNames lists every tenant id, sorted.
	tenantNames []string
	// defaultVisible spans settings.default_tenants in visPool, shared by
	// every subject without a tenant list of its own.
	defaultVisible span

	// hot and subjects are indexed alike: users first, then agents.
	hot        paged[subjectHot]
	subjects   paged[subject]
	visPool    []int32
	scopedPool []scopedSet
	userIdx    map[string]int32
	agentIdx   map[string]int32
	// aliasIdx finds users by their other ids, compared exactly.
	aliasIdx map[string]int32

	// resources are the application's resources, found by type, then id.
	resources   []resourceInfo
	resourceIdx map[string]map[string]int32

	// tools are sorted by name.
	tools   []toolInfo
	toolIdx map[string]int32
	// access is settings.access_permission, or -1.
	access int32
	// admin is settings.admin_permission, or "".
	admin string
	// subjectTypes maps settings.subject_types onto user or agent.
	subjectTypes map[string]gatehouse.SubjectType

	conds []condition

	// actions are the agent action types and their policies per tenant.
	actions actionTable

	// lineage is shared by a compiled snapshot and those derived from it;
	// derived counts the subject records derived since the Compile.
	lineage *lineage
	derived int
	// over is what derivations changed in the ids since the Compile; nil
	// while they changed none. The subjects they added are indexed after
	// the compiled ones, users and agents in the order they came.
	over *overlay
}

type permInfo struct {
	name  string
	title string
	// feature is the index of the required feature, or -1.
	feature int32
	// flag is the frontend flag Effective reports for the permission.
	flag string
}

type bundleInfo struct {
	name  string
	perms []int32
}

type roleInfo struct {
	name string
	// set holds the role's permissions and those of its bundles.
	set     int32
	bundles []int32
	perms   []int32
}

type featureInfo struct {
	name string
	// minPlan is the lowest plan that includes the feature; plans are
	// cumulative, so plan p includes it iff minPlan <= p.
	minPlan int32
}

type tenantInfo struct {
	id, name string
	// parent is the parent tenant's index, -1 for a root.
	parent int32
	// in and out number the tenant in a depth-first walk of the tenant
	// forest: t is in the subtree of a iff a.in <= t.in && t.in <= a.out.
	in, out int32
	// plan is the plan of the nearest ancestor-or-self with one, or -1;
	// planFrom is that tenant's index.
	plan, planFrom int32
	attrs          map[string]any
}

type resourceInfo struct {
	typ, id string
	// tenant is the tenant index the resource belongs to, or -1.
	tenant int32
	attrs  map[string]any
}

type toolInfo struct {
	name string
	flag string
	perm int32
}

// subjectHot is what Check reads about a subject for every request, kept
// apart from the rest (subject) so that a check touches one small record.
type subjectHot struct {
	superuser bool
	// state is live, or what a derivation did to the subject's ids.
	state uint8
	// hasConds reports whether the subject has conditional sources.
	hasConds bool
	// plan is a user's own plan, or -1.
	plan int32
	// global is the set of permissions held everywhere without condition.
	global int32
	// visible spans the sorted tenant indices the subject may see in
	// Snapshot.visPool; subjects with equal lists share one span.
	visible span
	// scoped spans the subject's unconditional scoped sets in
	// Snapshot.scopedPool.
	scoped span
}

// span is a slice of a pool: pool[off : off+n].
type span struct{ off, n int32 }

// subject is the rest of a compiled user or agent: what explanations,
// conditions and Effective need.
type subject struct {
	ref gatehouse.SubjectRef
	// sources are the subject's assignments and grants, unconditional ones
	// first, each group in policy order; conds is the conditional tail.
	sources []source
	conds   []source
	attrs   map[string]any
	// alias is a user's first alias, "" without one.
	alias string
	// aliases counts the distinct aliases that name this user in aliasIdx.
	aliases int32
}

// scopedSet is a permission set that applies in the subtree whose Euler
// numbers span [lo, hi].
type scopedSet struct {
	lo, hi int32
	set    int32
}

type sourceKind uint8

const (
	sourceRole sourceKind = iota
	sourceGrant
)

// source is one role assignment or direct grant.
type source struct {
	kind sourceKind
	// ref is a role index or, for a grant, a permission index.
	ref int32
	// tenant is the scope tenant, or -1 for global.
	tenant int32
	// cond is a condition index, or -1.
	cond int32
}

type condition struct {
	expr string
	prg  cel.Program
}

// AdminPermission returns settings.admin_permission: its holders
// administer Gatehouse (globally, or in the tenants of a scoped binding).
// "" when the policy names none.
func (s *Snapshot) AdminPermission() string {
	if s == nil {
		return ""
	}
	return s.admin
}

// SubjectType is the kind (user or agent) of an AuthZEN subject type:
// user and agent themselves, or what settings.subject_types maps the type
// to; "" for an unknown type.
func (s *Snapshot) SubjectType(name string) gatehouse.SubjectType {
	switch t := gatehouse.SubjectType(name); {
	case t == gatehouse.SubjectUser || t == gatehouse.SubjectAgent:
		return t
	case s == nil:
		return ""
	default:
		return s.subjectTypes[name]
	}
}

// AccessPermission returns settings.access_permission, the permission
// every tool call and the chat itself need; "" when there is none.
func (s *Snapshot) AccessPermission() string {
	if s == nil || s.access < 0 {
		return ""
	}
	return s.perms[s.access].name
}

// Version returns the policy version the snapshot was compiled from; 0 for
// a nil snapshot.
func (s *Snapshot) Version() int64 {
	if s == nil {
		return 0
	}
	return s.version
}

// Holder holds the current snapshot of an instance. Readers Load without
// locking; a rebuild Stores a new snapshot. The zero value holds nil.
type Holder struct {
	p atomic.Pointer[Snapshot]
	// at is when the current snapshot was stored, in Unix nanoseconds.
	at atomic.Int64
}

// Load returns the current snapshot, or nil if none was stored.
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// Store makes s the current snapshot.
func (h *Holder) Store(s *Snapshot) {
	h.p.Store(s)
	h.at.Store(time.Now().UnixNano())
}

// StoredAt is when the current snapshot was stored; zero before any.
func (h *Holder) StoredAt() time.Time {
	if at := h.at.Load(); at != 0 {
		return time.Unix(0, at)
	}
	return time.Time{}
}

// applies reports whether a source scoped to tenant index scope covers the
// tenant with Euler number pos (-1 for a tenant-less request).
func (s *Snapshot) applies(scope, pos int32) bool {
	if scope < 0 {
		return true
	}
	if pos < 0 {
		return false
	}
	t := &s.tenants[scope]
	return t.in <= pos && pos <= t.out
}

// gives reports whether src gives permission p.
func (s *Snapshot) gives(src source, p int32) bool {
	if src.kind == sourceGrant {
		return src.ref == p
	}
	return s.sets.has(s.roles[src.ref].set, p)
}

// holds reports whether h holds p unconditionally in the tenant with Euler
// number pos (-1 for a tenant-less request).
func (s *Snapshot) holds(h *subjectHot, p, pos int32) bool {
	if s.sets.has(h.global, p) {
		return true
	}
	if pos < 0 {
		return false
	}
	for _, e := range s.scopedPool[h.scoped.off : h.scoped.off+h.scoped.n] {
		if e.lo <= pos && pos <= e.hi && s.sets.has(e.set, p) {
			return true
		}
	}
	return false
}

// visible returns the sorted tenant indices of a visibility span.
func (s *Snapshot) visible(v span) []int32 { return s.visPool[v.off : v.off+v.n] }

// sees reports whether h may see tenant t. The search is branch-free (the
// compiler emits conditional moves): visibility lists are short, and a
// mispredicted branch costs more than the comparisons.
func (s *Snapshot) sees(h *subjectHot, t int32) bool {
	a := s.visible(h.visible)
	if len(a) == 0 {
		return false
	}
	base, n := 0, len(a)
	for n > 1 {
		half := n / 2
		if a[base+half] <= t {
			base += half
		}
		n -= half
	}
	return a[base] == t
}
