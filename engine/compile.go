package engine

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/gatehouse/gatehouse"
)

// Compile checks p and compiles it into an immutable snapshot at version.
// Every reference must resolve: an unknown permission, bundle, role, plan,
// feature, tenant, tool action or parent, a duplicate name, a tenant cycle
// or a condition that is not valid boolean CEL returns an error wrapping
// gatehouse.ErrInvalid. The policy package reports the same problems with
// line numbers; Compile is defence in depth and never panics. The snapshot
// keeps no reference to p.
func Compile(p *gatehouse.Policy, version int64) (snap *Snapshot, err error) {
	if p == nil {
		return nil, gatehouse.Invalidf("compile policy version %d: no policy", version)
	}
	defer func() {
		if r := recover(); r != nil {
			snap, err = nil, fmt.Errorf("compile policy version %d: internal error: %v", version, r)
		}
	}()
	c := &compiler{p: p, s: &Snapshot{version: version, access: -1}}
	for _, step := range []func() error{
		c.permissions, c.plans, c.permissionFeatures, c.bundles, c.categories,
		c.roles, c.tenants, c.settings, c.tools, c.actions, c.users, c.aliases, c.agents, c.resources,
	} {
		if err := step(); err != nil {
			return nil, fmt.Errorf("compile policy version %d: %w", version, err)
		}
	}
	c.s.sets.seal()
	c.place(len(c.p.Users))
	c.s.recOff, c.s.subjects = pagedOf(c.recOff), pagedOf(c.subjects)
	c.s.lineage = &lineage{tip: c.s}
	c.s.records = trimmed(c.s.records, true)
	c.s.sourcePool = trimmed(c.s.sourcePool, false)
	c.s.condPool = trimmed(c.s.condPool, false)
	c.s.visPool = trimmed(c.s.visPool, false)
	return c.s, nil
}

// compiler holds what Compile needs besides the snapshot it builds.
type compiler struct {
	p *gatehouse.Policy
	s *Snapshot

	bundleIdx  map[string]int32
	roleIdx    map[string]int32
	planIdx    map[string]int32
	featureIdx map[string]int32
	condIdx    map[string]int32
	// visible interns tenant lists so subjects with the same list share it.
	visible map[uint64][]span

	// recOff and subjects grow flat while compiling; Compile pages them.
	recOff   []int32
	subjects []subject
	// deriving is set when the compiler derives a snapshot from another
	// (Derive) rather than compiling one; oldVisible is then the
	// visibility span of the subject being derived, which an equal list
	// keeps.
	deriving   bool
	oldVisible span

	// Scratch space reused across subjects.
	bits      []uint64
	uncond    []entry
	scoped    []entry
	held      []entry
	tenantBuf []int32
}

// checkName rejects empty names and names with surrounding spaces, which
// requests could never reach because lookups trim.
func checkName(kind, name string) error {
	if name == "" {
		return gatehouse.Invalidf("%s with an empty name", kind)
	}
	if strings.TrimSpace(name) != name {
		return gatehouse.Invalidf("%s %q: name has surrounding spaces", kind, name)
	}
	return nil
}

func (c *compiler) permissions() error {
	s := c.s
	s.permIdx = make(map[string]int32, len(c.p.Permissions))
	s.perms = make([]permInfo, 0, len(c.p.Permissions))
	for _, pm := range c.p.Permissions {
		if err := checkName("permission", pm.Name); err != nil {
			return err
		}
		if _, dup := s.permIdx[pm.Name]; dup {
			return gatehouse.Invalidf("permission %q is declared twice", pm.Name)
		}
		s.permIdx[pm.Name] = int32(len(s.perms))
		s.perms = append(s.perms, permInfo{name: pm.Name, title: pm.Title, feature: -1, flag: pm.Flag})
	}
	s.permsByName = sortedIndices(len(s.perms), func(i int32) string { return s.perms[i].name })
	s.sets = newSetTable(len(s.perms))
	c.bits = make([]uint64, s.sets.words)
	return nil
}

func (c *compiler) plans() error {
	s := c.s
	c.planIdx = make(map[string]int32, len(c.p.Plans))
	c.featureIdx = make(map[string]int32)
	for i, pl := range c.p.Plans {
		if err := checkName("plan", pl.Name); err != nil {
			return err
		}
		if _, dup := c.planIdx[pl.Name]; dup {
			return gatehouse.Invalidf("plan %q is declared twice", pl.Name)
		}
		c.planIdx[pl.Name] = int32(i)
		s.plans = append(s.plans, pl.Name)
		for _, f := range pl.Features {
			if err := checkName(fmt.Sprintf("plan %q: feature", pl.Name), f); err != nil {
				return err
			}
			// Plans are cumulative, so a feature's first plan is its lowest.
			if _, seen := c.featureIdx[f]; !seen {
				c.featureIdx[f] = int32(len(s.features))
				s.features = append(s.features, featureInfo{name: f, minPlan: int32(i)})
			}
		}
	}
	s.featuresByName = sortedIndices(len(s.features), func(i int32) string { return s.features[i].name })
	return nil
}

func (c *compiler) permissionFeatures() error {
	for i, pm := range c.p.Permissions {
		if pm.Feature == "" {
			continue
		}
		f, ok := c.featureIdx[pm.Feature]
		if !ok {
			return gatehouse.Invalidf("permission %q: feature %q is in no plan", pm.Name, pm.Feature)
		}
		c.s.perms[i].feature = f
	}
	return nil
}

// permList resolves permission names.
func (c *compiler) permList(owner string, names []string) ([]int32, error) {
	out := make([]int32, 0, len(names))
	for _, n := range names {
		p, ok := c.s.permIdx[n]
		if !ok {
			return nil, gatehouse.Invalidf("%s: unknown permission %q", owner, n)
		}
		out = append(out, p)
	}
	return out, nil
}

func (c *compiler) bundles() error {
	s := c.s
	c.bundleIdx = make(map[string]int32, len(c.p.Bundles))
	for _, b := range c.p.Bundles {
		if err := checkName("bundle", b.Name); err != nil {
			return err
		}
		if _, dup := c.bundleIdx[b.Name]; dup {
			return gatehouse.Invalidf("bundle %q is declared twice", b.Name)
		}
		perms, err := c.permList(fmt.Sprintf("bundle %q", b.Name), b.Permissions)
		if err != nil {
			return err
		}
		c.bundleIdx[b.Name] = int32(len(s.bundles))
		s.bundles = append(s.bundles, bundleInfo{name: b.Name, perms: perms})
	}
	return nil
}

// categories grant nothing, but their bundles must exist.
func (c *compiler) categories() error {
	seen := make(map[string]bool, len(c.p.Categories))
	for _, cat := range c.p.Categories {
		if err := checkName("category", cat.Name); err != nil {
			return err
		}
		if seen[cat.Name] {
			return gatehouse.Invalidf("category %q is declared twice", cat.Name)
		}
		seen[cat.Name] = true
		for _, b := range cat.Bundles {
			if _, ok := c.bundleIdx[b]; !ok {
				return gatehouse.Invalidf("category %q: unknown bundle %q", cat.Name, b)
			}
		}
	}
	return nil
}

func (c *compiler) roles() error {
	s := c.s
	c.roleIdx = make(map[string]int32, len(c.p.Roles))
	for _, r := range c.p.Roles {
		if err := checkName("role", r.Name); err != nil {
			return err
		}
		if _, dup := c.roleIdx[r.Name]; dup {
			return gatehouse.Invalidf("role %q is declared twice", r.Name)
		}
		owner := fmt.Sprintf("role %q", r.Name)
		perms, err := c.permList(owner, r.Permissions)
		if err != nil {
			return err
		}
		clearWords(c.bits)
		for _, p := range perms {
			setBit(c.bits, p)
		}
		bundles := make([]int32, 0, len(r.Bundles))
		for _, name := range r.Bundles {
			b, ok := c.bundleIdx[name]
			if !ok {
				return gatehouse.Invalidf("%s: unknown bundle %q", owner, name)
			}
			bundles = append(bundles, b)
			for _, p := range s.bundles[b].perms {
				setBit(c.bits, p)
			}
		}
		c.roleIdx[r.Name] = int32(len(s.roles))
		set := s.sets.intern(c.bits)
		s.roles = append(s.roles, roleInfo{name: r.Name, set: set, bundles: bundles, perms: perms})
		s.roleSets = append(s.roleSets, set)
	}
	return nil
}

// tenants numbers the tenant forest depth-first (Euler tour) so that a
// subtree test is two comparisons, and resolves each tenant's nearest plan.
func (c *compiler) tenants() error {
	s := c.s
	n := len(c.p.Tenants)
	s.tenantIdx = make(map[string]int32, n)
	s.tenants = make([]tenantInfo, n)
	for i, t := range c.p.Tenants {
		if err := checkName("tenant", t.ID); err != nil {
			return err
		}
		if _, dup := s.tenantIdx[t.ID]; dup {
			return gatehouse.Invalidf("tenant %q is declared twice", t.ID)
		}
		s.tenantIdx[t.ID] = int32(i)
	}
	parent := make([]int32, n)
	own := make([]int32, n)
	nchild := make([]int32, n+1)
	for i, t := range c.p.Tenants {
		parent[i], own[i] = -1, -1
		if t.Parent != "" {
			pi, ok := s.tenantIdx[t.Parent]
			if !ok {
				return gatehouse.Invalidf("tenant %q: unknown parent %q", t.ID, t.Parent)
			}
			parent[i] = pi
			nchild[pi+1]++
		}
		if t.Plan != "" {
			pl, ok := c.planIdx[t.Plan]
			if !ok {
				return gatehouse.Invalidf("tenant %q: unknown plan %q", t.ID, t.Plan)
			}
			own[i] = pl
		}
		s.tenants[i] = tenantInfo{id: t.ID, name: t.Name, parent: -1, in: -1, out: -1, plan: -1, planFrom: -1, attrs: cloneMap(t.Attributes)}
	}
	// children of t are child[start[t]:start[t+1]], in policy order.
	start := nchild
	for i := 1; i <= n; i++ {
		start[i] += start[i-1]
	}
	child := make([]int32, start[n])
	fill := slices.Clone(start[:n])
	for i := range n {
		if pi := parent[i]; pi >= 0 {
			child[fill[pi]] = int32(i)
			fill[pi]++
		}
	}
	type frame struct{ t, next int32 }
	var stack []frame
	visited := int32(0)
	for root := range n {
		if parent[root] >= 0 {
			continue
		}
		stack = append(stack[:0], frame{t: int32(root), next: start[root]})
		s.enterTenant(int32(root), -1, own, &visited)
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == start[top.t+1] {
				s.tenants[top.t].out = visited - 1
				stack = stack[:len(stack)-1]
				continue
			}
			ch := child[top.next]
			top.next++
			s.enterTenant(ch, top.t, own, &visited)
			stack = append(stack, frame{t: ch, next: start[ch]})
		}
	}
	if int(visited) < n {
		// Only tenants on or below a parent cycle are unreachable from a root.
		for i := range n {
			if s.tenants[i].in < 0 {
				return gatehouse.Invalidf("tenant %q: its parent chain forms a cycle", c.p.Tenants[i].ID)
			}
		}
	}
	s.tenantNames = make([]string, n)
	s.subtrees = make([]subtree, n)
	for i, t := range s.tenants {
		s.tenantNames[i] = t.id
		s.subtrees[i] = subtree{in: t.in, out: t.out}
	}
	slices.Sort(s.tenantNames)
	return nil
}

// enterTenant numbers t on entry and inherits its parent's plan.
func (s *Snapshot) enterTenant(t, parent int32, own []int32, visited *int32) {
	ti := &s.tenants[t]
	ti.in = *visited
	*visited++
	ti.parent = parent
	ti.plan, ti.planFrom = own[t], t
	if ti.plan < 0 {
		ti.planFrom = -1
		if parent >= 0 {
			ti.plan, ti.planFrom = s.tenants[parent].plan, s.tenants[parent].planFrom
		}
	}
}

func (c *compiler) settings() error {
	s := c.s
	set := c.p.Settings
	vis, err := c.tenantList("settings: default_tenants", set.DefaultTenants)
	if err != nil {
		return err
	}
	s.defaultVisible = vis
	if set.AccessPermission != "" {
		p, ok := s.permIdx[set.AccessPermission]
		if !ok {
			return gatehouse.Invalidf("settings: unknown access_permission %q", set.AccessPermission)
		}
		s.access = p
	}
	if set.AdminPermission != "" {
		if _, ok := s.permIdx[set.AdminPermission]; !ok {
			return gatehouse.Invalidf("settings: unknown admin_permission %q", set.AdminPermission)
		}
		s.admin = set.AdminPermission
	}
	for name, kind := range set.SubjectTypes {
		if kind != gatehouse.SubjectUser && kind != gatehouse.SubjectAgent {
			return gatehouse.Invalidf("settings: subject_types: %s maps to %q, want user or agent", name, kind)
		}
		if s.subjectTypes == nil {
			s.subjectTypes = make(map[string]gatehouse.SubjectType, len(set.SubjectTypes))
		}
		s.subjectTypes[name] = kind
	}
	return nil
}

func (c *compiler) tools() error {
	s := c.s
	actions := make(map[string]bool, len(c.p.Actions))
	for _, a := range c.p.Actions {
		if err := checkName("action", a.Name); err != nil {
			return err
		}
		if actions[a.Name] {
			return gatehouse.Invalidf("action %q is declared twice", a.Name)
		}
		actions[a.Name] = true
	}
	s.toolIdx = make(map[string]int32, len(c.p.Tools))
	s.tools = make([]toolInfo, 0, len(c.p.Tools))
	for _, t := range c.p.Tools {
		if err := checkName("tool", t.Name); err != nil {
			return err
		}
		if _, dup := s.toolIdx[t.Name]; dup {
			return gatehouse.Invalidf("tool %q is declared twice", t.Name)
		}
		p, ok := s.permIdx[t.Permission]
		if !ok {
			return gatehouse.Invalidf("tool %q: unknown permission %q", t.Name, t.Permission)
		}
		if t.Action != "" && !actions[t.Action] {
			return gatehouse.Invalidf("tool %q: unknown action %q", t.Name, t.Action)
		}
		s.toolIdx[t.Name] = -1
		s.tools = append(s.tools, toolInfo{name: t.Name, flag: t.Flag, perm: p})
	}
	slices.SortFunc(s.tools, func(a, b toolInfo) int { return strings.Compare(a.name, b.name) })
	for i, t := range s.tools {
		s.toolIdx[t.name] = int32(i)
	}
	return nil
}

func (c *compiler) users() error {
	s := c.s
	s.emails = newEmailTable(len(c.p.Users))
	n := len(c.p.Users) + len(c.p.Agents)
	c.subjects = make([]subject, 0, n)
	c.recOff = hugeMake[int32](0, n)
	// Records take recEmail units, the email's and one per source at
	// most (merged sources take fewer).
	units := recEmail * n
	for i := range c.p.Users {
		u := &c.p.Users[i]
		units += (len(u.Email)+7)/8 + len(u.Roles) + len(u.Grants)
	}
	for i := range c.p.Agents {
		units += len(c.p.Agents[i].Roles) + len(c.p.Agents[i].Grants)
	}
	s.records = hugeMake[entry](0, units)
	for _, u := range c.p.Users {
		email := gatehouse.NormalizeEmail(u.Email)
		if email == "" {
			return gatehouse.Invalidf("user with an empty email")
		}
		if len(email) > maxEmail {
			return gatehouse.Invalidf("user email of %d bytes: longer than %d", len(email), maxEmail)
		}
		pos, dup := s.emails.slot(s, email)
		if dup {
			return gatehouse.Invalidf("user %q is declared twice", email)
		}
		sub := subject{ref: gatehouse.User(email), attrs: cloneMap(u.Attributes)}
		h := subjectHot{superuser: u.Superuser, plan: -1}
		if u.Plan != "" {
			pl, ok := c.planIdx[u.Plan]
			if !ok {
				return gatehouse.Invalidf("user %q: unknown plan %q", email, u.Plan)
			}
			h.plan = pl
		}
		if err := c.subject(&sub, &h, u.Tenants, u.Roles, u.Grants); err != nil {
			return fmt.Errorf("user %q: %w", email, err)
		}
		off := c.putRecord(int32(len(c.subjects)), &h, email)
		s.emails.setSlot(pos, email, off, nil)
		c.subjects = append(c.subjects, sub)
		c.recOff = append(c.recOff, off)
	}
	return nil
}

// putRecord appends subject i's record, with h's fields, the email (""
// for an agent) and the entries in c.held, to the snapshot's records and
// returns its offset.
func (c *compiler) putRecord(i int32, h *subjectHot, email string) int32 {
	s := c.s
	off := int32(len(s.records))
	flags := int32(len(email))<<recLenShift | int32(h.state)<<recStateShift
	if h.superuser {
		flags |= recSuperuser
	}
	if h.hasConds {
		flags |= recHasConds
	}
	s.records = append(s.records,
		entry{ref: flags, tenant: h.plan},
		entry{ref: h.visible.off, tenant: h.visible.n},
		entry{ref: i, tenant: int32(len(c.held))})
	for k := 0; k < len(email); k += 8 {
		w := word(email, k)
		s.records = append(s.records, entry{ref: int32(uint32(w)), tenant: int32(uint32(w >> 32))})
	}
	s.records = append(s.records, c.held...)
	return off
}

// aliases indexes the users' other ids. An alias that names a second user,
// or is another user's email, is an error: one id must name one user.
func (c *compiler) aliases() error {
	s := c.s
	s.aliasIdx = map[string]int32{}
	for _, u := range c.p.Users {
		si, _, _ := s.lookupEmail(gatehouse.NormalizeEmail(u.Email))
		for _, a := range u.Aliases {
			if err := checkName("alias", a); err != nil {
				return fmt.Errorf("user %q: %w", u.Email, err)
			}
			other, dup := s.aliasIdx[a]
			if !dup {
				other, _, dup = s.lookupEmail(gatehouse.NormalizeEmail(a))
			}
			if dup && other != si {
				return gatehouse.Invalidf("alias %q names users %q and %q", a, c.subjects[other].ref.ID, c.subjects[si].ref.ID)
			}
			if _, ok := s.aliasIdx[a]; !ok {
				c.subjects[si].aliases++
			}
			s.aliasIdx[a] = si
			if c.subjects[si].alias == "" {
				c.subjects[si].alias = a
			}
		}
	}
	return nil
}

// resources indexes the application's resources by type and id, keeping
// their tenant and stored attributes.
func (c *compiler) resources() error {
	s := c.s
	s.resourceIdx = map[string]map[string]int32{}
	s.resources = make([]resourceInfo, 0, len(c.p.Resources))
	for _, r := range c.p.Resources {
		if err := checkName("resource type", r.Type); err != nil {
			return err
		}
		if err := checkName("resource", r.ID); err != nil {
			return err
		}
		byID := s.resourceIdx[r.Type]
		if byID == nil {
			byID = map[string]int32{}
			s.resourceIdx[r.Type] = byID
		}
		if _, dup := byID[r.ID]; dup {
			return gatehouse.Invalidf("resource %q of type %q is declared twice", r.ID, r.Type)
		}
		info := resourceInfo{typ: r.Type, id: r.ID, tenant: -1, attrs: cloneMap(r.Attributes)}
		if r.Tenant != "" {
			t, ok := s.tenantIdx[r.Tenant]
			if !ok {
				return gatehouse.Invalidf("resource %q of type %q: unknown tenant %q", r.ID, r.Type, r.Tenant)
			}
			info.tenant = t
		}
		byID[r.ID] = int32(len(s.resources))
		s.resources = append(s.resources, info)
	}
	return nil
}

func (c *compiler) agents() error {
	s := c.s
	s.agentIdx = make(map[string]int32, len(c.p.Agents))
	for _, a := range c.p.Agents {
		if err := checkName("agent", a.ID); err != nil {
			return err
		}
		if _, dup := s.agentIdx[a.ID]; dup {
			return gatehouse.Invalidf("agent %q is declared twice", a.ID)
		}
		sub := subject{ref: gatehouse.AgentRef(a.ID), attrs: cloneMap(a.Attributes)}
		h := subjectHot{plan: -1}
		if err := c.subject(&sub, &h, a.Tenants, a.Roles, a.Grants); err != nil {
			return fmt.Errorf("agent %q: %w", a.ID, err)
		}
		i := int32(len(c.subjects))
		s.agentIdx[a.ID] = i
		c.recOff = append(c.recOff, c.putRecord(i, &h, ""))
		c.subjects = append(c.subjects, sub)
	}
	return nil
}

// subject compiles a subject's visibility and sources into h and c.held.
func (c *compiler) subject(sub *subject, h *subjectHot, tenants []string, roles []gatehouse.Assignment, grants []gatehouse.Grant) error {
	s := c.s
	if tenants == nil {
		h.visible = s.defaultVisible
	} else {
		vis, err := c.tenantList("tenants", tenants)
		if err != nil {
			return err
		}
		h.visible = vis
	}

	c.uncond = c.uncond[:0]
	condOff := int32(len(s.condPool))
	add := func(src source) {
		if src.cond >= 0 {
			s.condPool = append(s.condPool, src)
		} else {
			c.uncond = append(c.uncond, src.entry)
		}
	}
	for _, a := range roles {
		r, ok := c.roleIdx[a.Role]
		if !ok {
			return gatehouse.Invalidf("unknown role %q", a.Role)
		}
		src, err := c.source(r, a.Tenant, a.Condition)
		if err != nil {
			return fmt.Errorf("role %q: %w", a.Role, err)
		}
		add(src)
	}
	for _, g := range grants {
		p, ok := s.permIdx[g.Permission]
		if !ok {
			return gatehouse.Invalidf("grant of unknown permission %q", g.Permission)
		}
		src, err := c.source(^p, g.Tenant, g.Condition)
		if err != nil {
			return fmt.Errorf("grant %q: %w", g.Permission, err)
		}
		add(src)
	}
	sub.conds = span{off: condOff, n: int32(len(s.condPool)) - condOff}
	h.hasConds = sub.conds.n > 0
	c.held = c.held[:0]
	if len(c.uncond) <= mergeAbove {
		c.held = append(c.held, c.uncond...)
	} else {
		sub.sources = span{off: int32(len(s.sourcePool)), n: int32(len(c.uncond))}
		s.sourcePool = append(s.sourcePool, c.uncond...)
		c.merge()
	}
	return nil
}

// merge appends to c.held the entries of a subject with many
// unconditional sources, c.uncond: one permission set for the global ones
// and one for each scope tenant, without what the global set holds.
func (c *compiler) merge() {
	s := c.s
	nroles := int32(len(s.roles))
	clearWords(c.bits)
	c.scoped = c.scoped[:0]
	for _, e := range c.uncond {
		if e.tenant >= 0 {
			c.scoped = append(c.scoped, e)
			continue
		}
		c.addSource(e)
	}
	globalSet := c.intern(c.bits)
	if globalSet != 0 {
		c.held = append(c.held, entry{ref: nroles + globalSet, tenant: -1})
	}
	global := c.set(globalSet)
	slices.SortStableFunc(c.scoped, func(a, b entry) int { return cmp.Compare(a.tenant, b.tenant) })
	for i := 0; i < len(c.scoped); {
		t := c.scoped[i].tenant
		clearWords(c.bits)
		for ; i < len(c.scoped) && c.scoped[i].tenant == t; i++ {
			c.addSource(c.scoped[i])
		}
		// Permissions held globally need no scoped entry.
		extra := false
		for k, w := range c.bits {
			c.bits[k] = w &^ global[k]
			extra = extra || c.bits[k] != 0
		}
		if extra {
			c.held = append(c.held, entry{ref: nroles + c.intern(c.bits), tenant: t})
		}
	}
}

// addSource adds the permissions e gives to c.bits.
func (c *compiler) addSource(e entry) {
	if e.isGrant() {
		setBit(c.bits, ^e.ref)
		return
	}
	for k, w := range c.set(c.s.roles[e.ref].set) {
		c.bits[k] |= w
	}
}

// intern interns a permission set in the snapshot's table, sealed when
// deriving.
func (c *compiler) intern(bits []uint64) int32 {
	if c.deriving {
		return c.s.sets.internSealed(bits)
	}
	return c.s.sets.intern(bits)
}

// set returns the words of set i, sealed when deriving.
func (c *compiler) set(i int32) []uint64 {
	if c.deriving {
		return c.s.sets.sealedSet(i)
	}
	return c.s.sets.set(i)
}

// source resolves an assignment's or grant's scope and condition; ref is
// the entry's.
func (c *compiler) source(ref int32, tenant, cond string) (source, error) {
	src := source{entry: entry{ref: ref, tenant: -1}, cond: -1}
	if tenant != "" {
		t, ok := c.s.tenantIdx[tenant]
		if !ok {
			return src, gatehouse.Invalidf("unknown tenant %q", tenant)
		}
		src.tenant = t
	}
	if cond != "" {
		ci, err := c.condition(cond)
		if err != nil {
			return src, err
		}
		src.cond = ci
	}
	return src, nil
}

// condition compiles expr once per distinct text.
func (c *compiler) condition(expr string) (int32, error) {
	if i, ok := c.condIdx[expr]; ok {
		return i, nil
	}
	prg, err := compileCondition(expr)
	if err != nil {
		return -1, err
	}
	if c.condIdx == nil {
		c.condIdx = make(map[string]int32)
	}
	i := int32(len(c.s.conds))
	c.condIdx[expr] = i
	c.s.conds = append(c.s.conds, condition{expr: expr, prg: prg})
	return i, nil
}

// tenantList resolves tenant ids to sorted, distinct indices in the
// snapshot's visPool, sharing the span of an earlier identical list.
func (c *compiler) tenantList(owner string, ids []string) (span, error) {
	c.tenantBuf = c.tenantBuf[:0]
	for _, id := range ids {
		t, ok := c.s.tenantIdx[id]
		if !ok {
			return span{}, gatehouse.Invalidf("%s: unknown tenant %q", owner, id)
		}
		c.tenantBuf = append(c.tenantBuf, t)
	}
	slices.Sort(c.tenantBuf)
	list := slices.Compact(c.tenantBuf)
	if c.deriving && slices.Equal(c.s.visible(c.oldVisible), list) {
		return c.oldVisible, nil
	}
	h := uint64(14695981039346656037)
	for _, t := range list {
		h ^= uint64(t)
		h *= 1099511628211
	}
	if c.visible == nil {
		c.visible = make(map[uint64][]span)
	}
	for _, prev := range c.visible[h] {
		if slices.Equal(c.s.visible(prev), list) {
			return prev, nil
		}
	}
	v := span{off: int32(len(c.s.visPool)), n: int32(len(list))}
	c.s.visPool = append(c.s.visPool, list...)
	c.visible[h] = append(c.visible[h], v)
	return v, nil
}

// trimmed returns a pool that grew by appending without most of its spare
// capacity, and a large one on huge pages (hugeMake) unless it was made
// there (advised). Derived snapshots append to what is left.
func trimmed[T any](pool []T, advised bool) []T {
	big := uintptr(len(pool))*unsafe.Sizeof(*new(T)) >= hugeMin
	if cap(pool)-len(pool) > len(pool)/8 || big && !advised {
		return append(hugeMake[T](0, len(pool)), pool...)
	}
	return pool
}

// sortedIndices returns 0..n-1 ordered by name.
func sortedIndices(n int, name func(int32) string) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	slices.SortFunc(out, func(a, b int32) int { return strings.Compare(name(a), name(b)) })
	return out
}

// cloneMap deep-copies JSON-shaped attributes so the snapshot never shares
// a map with the policy it was compiled from.
func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneMap(v)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = cloneValue(v[i])
		}
		return out
	}
	return v
}
