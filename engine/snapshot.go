package engine

import (
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/gatehouse/gatehouse"
)

// Snapshot is a compiled, immutable policy. Every id of the policy is
// interned to an int32 index at Compile; roles' permission sets are bitsets
// stored once. A Snapshot is safe for
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
	// roleSets is each role's permission set, roles[i].set, kept apart so
	// that Check reads a small array.
	roleSets []int32

	plans    []string
	features []featureInfo
	// featuresByName lists feature indices sorted by name.
	featuresByName []int32

	tenants []tenantInfo
	// subtrees is each tenant's [in, out], tenants[i].in and .out, kept
	// apart so that Check reads a small array.
	subtrees  []subtree
	tenantIdx map[string]int32
	// tenantNames lists every tenant id, sorted.
	tenantNames []string
	// defaultVisible spans settings.default_tenants in visPool, shared by
	// every subject without a tenant list of its own.
	defaultVisible span

	// recOff and subjects are indexed alike: users first, then agents.
	// recOff is the offset of each subject's record in records, which
	// holds what Check reads about the subject (see recFlags).
	recOff   paged[int32]
	records  []entry
	subjects paged[subject]
	visPool  []int32
	// sourcePool holds the unconditional sources of subjects whose entries
	// are merged sets (subject.sources), condPool the conditional sources
	// (subject.conds).
	sourcePool []entry
	condPool   []source
	// emails finds users by email; places finds most of them at once.
	emails   emailTable
	places   userPlaces
	agentIdx map[string]int32
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

// A subject's record in Snapshot.records is what Check reads about it,
// in consecutive 8-byte units, so that a cold check reads one run of
// memory, where userPlaces puts it (or after the email table's slot):
//
//	recFlags    ref: recSuperuser, recHasConds | state<<recStateShift | email length<<recLenShift; tenant: the user's own plan, or -1
//	recVisible  the visible span (subjectHot.visible)
//	recSubject  ref: the subject's index; tenant: the number of entries
//	recEmail    a user's canonical email, eight bytes a unit, little-endian and zero-padded
//	then        the entries (subjectHot.held)
const (
	recFlags = iota
	recVisible
	recSubject
	recEmail

	recSuperuser = 1
	recHasConds  = 2
	// The subject's state (live, renamed, removed) is two bits.
	recStateShift = 2
	recStateMask  = 3
	recLenShift   = 8
	// maxEmail is the longest email a record holds.
	maxEmail = 1<<(31-recLenShift) - 1
)

// subjectHot is a subject's record, decoded.
type subjectHot struct {
	superuser bool
	// state is live, or what a derivation did to the subject's ids, as
	// putRecord writes it. hot does not decode it, so that Check's decode
	// stays small enough to inline: stateAt reads it.
	state uint8
	// hasConds reports whether the subject has conditional sources.
	hasConds bool
	// plan is a user's own plan, or -1.
	plan int32
	// visible spans the sorted tenant indices the subject may see in
	// Snapshot.visPool; subjects with equal lists share one span.
	visible span
	// held are the subject's entries: an unconditional permission is held
	// where one of them gives it.
	held []entry
}

// hot decodes the record at off.
func (s *Snapshot) hot(off int32) subjectHot {
	r := s.records[off:]
	flags, n := r[recFlags].ref, r[recSubject].tenant
	first := recEmail + (flags>>recLenShift+7)/8
	return subjectHot{
		superuser: flags&recSuperuser != 0,
		hasConds:  flags&recHasConds != 0,
		plan:      r[recFlags].tenant,
		visible:   span{off: r[recVisible].ref, n: r[recVisible].tenant},
		held:      r[first : first+n : first+n],
	}
}

// hotAt decodes the record of subject i.
func (s *Snapshot) hotAt(i int32) subjectHot { return s.hot(*s.recOff.at(i)) }

// stateAt is the state of subject i, read from its record.
func (s *Snapshot) stateAt(i int32) uint8 { return s.recState(*s.recOff.at(i)) }

// recState is the state of the subject whose record is at off.
func (s *Snapshot) recState(off int32) uint8 {
	return uint8(s.records[off+recFlags].ref >> recStateShift & recStateMask)
}

// span is a slice of a pool: pool[off : off+n].
type span struct{ off, n int32 }

// subtree is a tenant's Euler numbers: t is in the subtree iff
// in <= t.in && t.in <= out.
type subtree struct{ in, out int32 }

// subject is the rest of a compiled user or agent: what explanations,
// conditions and Effective need.
type subject struct {
	ref gatehouse.SubjectRef
	// sources spans, in Snapshot.sourcePool, the unconditional sources of
	// a subject whose entries are permission sets merged from more than
	// mergeAbove of them; for any other subject it is empty and the
	// entries are the sources themselves.
	sources span
	// conds spans the conditional sources in Snapshot.condPool, in policy
	// order.
	conds span
	attrs map[string]any
	// alias is a user's first alias, "" without one.
	alias string
	// aliases counts the distinct aliases that name this user in aliasIdx.
	aliases int32
}

// mergeAbove is the most unconditional sources Check reads one by one;
// a subject with more holds one merged permission set per scope instead,
// so that a check never scans a long list. Tests lower it to merge every
// subject.
var mergeAbove = 16

// entry is an unconditional source as Check reads it: ref is a role index,
// ^p for a grant of permission p, or, in a merged subject's entries,
// len(roles)+i for permission set i; tenant is the scope tenant, or -1 for
// global. Role assignments and grants come first, each in policy order.
type entry struct{ ref, tenant int32 }

// source is one conditional role assignment or direct grant (an entry and
// its condition), or an unconditional one with cond -1.
type source struct {
	entry
	// cond is a condition index, or -1.
	cond int32
}

// isGrant reports whether e is a direct grant; its permission is ^e.ref.
func (e entry) isGrant() bool { return e.ref < 0 }

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
	t := s.subtrees[scope]
	return t.in <= pos && pos <= t.out
}

// gives reports whether e gives permission p.
func (s *Snapshot) gives(e entry, p int32) bool {
	switch nroles := int32(len(s.roleSets)); {
	case e.ref < 0:
		return ^e.ref == p
	case e.ref < nroles:
		return s.sets.has(s.roleSets[e.ref], p)
	default:
		return s.sets.has(e.ref-nroles, p)
	}
}

// holds reports whether h holds p unconditionally in the tenant with Euler
// number pos (-1 for a tenant-less request).
//
// It asks whether an entry gives p before whether it applies in the
// tenant: few entries give p, and the first question needs no more memory
// than the role sets, which every check shares.
func (s *Snapshot) holds(h *subjectHot, p, pos int32) bool {
	nroles := int32(len(s.roleSets))
	slab, words := s.sets.slab, s.sets.words
	w, bit := int(p>>6), uint64(1)<<(uint(p)&63)
	for _, e := range h.held {
		var gives bool
		switch {
		case e.ref < 0:
			gives = ^e.ref == p
		case e.ref < nroles:
			gives = slab[int(s.roleSets[e.ref])*words+w]&bit != 0
		default:
			gives = slab[int(e.ref-nroles)*words+w]&bit != 0
		}
		if gives && s.applies(e.tenant, pos) {
			return true
		}
	}
	return false
}

// uncond returns the unconditional sources of sub, whose hot record is h,
// in policy order.
func (s *Snapshot) uncond(sub *subject, h *subjectHot) []entry {
	if sub.sources.n > 0 {
		return s.sourcePool[sub.sources.off : sub.sources.off+sub.sources.n]
	}
	return h.held
}

// condSources returns the conditional sources of sub in policy order.
func (s *Snapshot) condSources(sub *subject) []source {
	return s.condPool[sub.conds.off : sub.conds.off+sub.conds.n]
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
