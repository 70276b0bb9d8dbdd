package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/money"
)

// actionTable holds the agent action types and, for every tenant and
// action, the effective action policy and where each part comes from.
type actionTable struct {
	// types are sorted by name.
	types []actionInfo
	idx   map[string]int32
	// eff[t*len(types)+a] is action a's policy in tenant t.
	eff []resolvedAction
	// limits are every distinct limits object, defaults and tenants'.
	limits []compiledLimits
	// tools[i] is what s.tools[i] performs.
	tools []ToolAction
}

type actionInfo struct {
	name         string
	approver     string
	labels       map[string]string
	descriptions map[string]string
	// def is the type's default.
	def resolvedAction
}

type compiledLimits struct {
	doc   gatehouse.ActionLimits
	exact gatehouse.Limits
}

// resolvedAction is an action policy with its provenance: a tenant index,
// or -1 for the action type's default.
type resolvedAction struct {
	enabled, confirm                     bool
	enabledFrom, confirmFrom, limitsFrom int32
	// limits indexes actionTable.limits, or -1 for none.
	limits int32
	// offBy, confirmBy and limitsBy are the nearest ancestors (or the
	// tenant itself) whose enforced setting is a ceiling: enabled: false,
	// requires_confirmation: true, limits; -1 for none. ceiling indexes
	// the tightest enforced limits along the path, -1 for none.
	offBy, confirmBy, limitsBy int32
	ceiling                    int32
}

// ToolAction is the agent action a tool performs and where the action's
// figures are in the tool's arguments: paths such as "args.refund.amount",
// empty when the tool does not map that figure.
type ToolAction struct {
	Tool       string
	Action     string
	Amount     string
	Percentage string
	Currency   string
	// Title and Description describe the tool; Upstream and UpstreamTool
	// name the MCP upstream tool it is, if any (see gatehouse.Tool).
	Title, Description     string
	Upstream, UpstreamTool string
}

// actions compiles action types, tool argument mappings and each tenant's
// effective action policies. Tenants are resolved in depth-first order, so
// a parent is always resolved before its children.
func (c *compiler) actions() error {
	s, at := c.s, &c.s.actions
	for _, a := range c.p.Actions {
		info := actionInfo{name: a.Name, approver: a.Approver, labels: cloneStrings(a.Labels),
			descriptions: cloneStrings(a.Descriptions)}
		if a.Approver != "" {
			if _, ok := s.permIdx[a.Approver]; !ok {
				return gatehouse.Invalidf("action %q: unknown approver_permission %q", a.Name, a.Approver)
			}
		}
		lim, err := at.addLimits(a.Default.Limits)
		if err != nil {
			return fmt.Errorf("action %q: default: %w", a.Name, err)
		}
		info.def = resolvedAction{enabled: a.Default.Enabled, confirm: a.Default.RequiresConfirmation,
			enabledFrom: -1, confirmFrom: -1, limitsFrom: -1, limits: lim, offBy: -1, confirmBy: -1, limitsBy: -1, ceiling: -1}
		at.types = append(at.types, info)
	}
	slices.SortFunc(at.types, func(a, b actionInfo) int { return strings.Compare(a.name, b.name) })
	at.idx = make(map[string]int32, len(at.types))
	for i, a := range at.types {
		at.idx[a.name] = int32(i)
	}

	at.tools = make([]ToolAction, len(s.tools))
	byName := make(map[string]*gatehouse.Tool, len(c.p.Tools))
	for i := range c.p.Tools {
		byName[c.p.Tools[i].Name] = &c.p.Tools[i]
	}
	for i, ti := range s.tools {
		t := byName[ti.name]
		at.tools[i] = ToolAction{Tool: t.Name, Action: t.Action, Amount: t.Amount, Percentage: t.Percentage, Currency: t.Currency,
			Title: t.Title, Description: t.Description, Upstream: t.Upstream, UpstreamTool: t.UpstreamTool}
		if t.Upstream != "" && t.UpstreamTool == "" {
			at.tools[i].UpstreamTool = t.Name
		}
	}

	n, na := len(s.tenants), len(at.types)
	at.eff = make([]resolvedAction, n*na)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return int(s.tenants[a].in - s.tenants[b].in) })
	for _, t := range order {
		tn := &c.p.Tenants[t]
		parent := int32(-1)
		if tn.Parent != "" {
			parent = s.tenantIdx[tn.Parent]
		}
		for name := range tn.Actions {
			if _, ok := at.idx[name]; !ok {
				return gatehouse.Invalidf("tenant %q: unknown action %q", tn.ID, name)
			}
		}
		for a := range at.types {
			r := at.types[a].def
			if parent >= 0 {
				r = at.eff[int(parent)*na+a]
			}
			if set, ok := tn.Actions[at.types[a].name]; ok {
				if set.Enabled != nil {
					r.enabled, r.enabledFrom = *set.Enabled, t
				}
				if set.RequiresConfirmation != nil {
					r.confirm, r.confirmFrom = *set.RequiresConfirmation, t
				}
				if set.Limits != nil {
					lim, err := at.addLimits(set.Limits)
					if err != nil {
						return fmt.Errorf("tenant %q: action %q: %w", tn.ID, at.types[a].name, err)
					}
					r.limits, r.limitsFrom = lim, t
				}
				if set.Enforced {
					at.enforce(&r, set, t)
				}
			}
			at.bound(&r)
			at.eff[int(t)*na+a] = r
		}
	}
	return nil
}

// enforce makes tenant t's enforced setting set a ceiling in r.
func (at *actionTable) enforce(r *resolvedAction, set gatehouse.ActionSetting, t int32) {
	if set.Enabled != nil && !*set.Enabled {
		r.offBy = t
	}
	if set.RequiresConfirmation != nil && *set.RequiresConfirmation {
		r.confirmBy = t
	}
	if set.Limits != nil {
		// r.limits is the tenant's own, just compiled.
		c := r.limits
		if r.ceiling >= 0 {
			c = at.tighter(r.limits, r.ceiling)
		}
		r.ceiling, r.limitsBy = c, t
	}
}

// bound applies r's ceilings to it: the tightest along the path wins,
// whatever a descendant sets.
func (at *actionTable) bound(r *resolvedAction) {
	if r.offBy >= 0 && r.enabled {
		r.enabled, r.enabledFrom = false, r.offBy
	}
	if r.confirmBy >= 0 && !r.confirm {
		r.confirm, r.confirmFrom = true, r.confirmBy
	}
	switch {
	case r.ceiling < 0:
	case r.limits < 0:
		r.limits, r.limitsFrom = r.ceiling, r.limitsBy
	default:
		r.limits = at.tighter(r.limits, r.ceiling)
	}
}

// tighter returns the index of the tightest of limits i and ceiling c: i
// itself when the ceiling takes nothing off.
func (at *actionTable) tighter(i, c int32) int32 {
	own, ceil := at.limits[i], at.limits[c]
	exact := own.exact.Tighter(ceil.exact)
	if exact == own.exact {
		return i
	}
	doc := gatehouse.ActionLimits{Currency: exact.Currency, Window: own.doc.Window}
	if exact.Window != own.exact.Window {
		doc.Window = ceil.doc.Window
	}
	if exact.MaxAmount > 0 {
		doc.MaxAmount = gatehouse.Decimal(money.FormatAmount(exact.MaxAmount, exact.Currency))
	}
	if exact.MaxPercentage > 0 {
		doc.MaxPercentage = gatehouse.Decimal(money.FormatPercent(exact.MaxPercentage))
	}
	if exact.MaxCount > 0 {
		doc.MaxCount = new(exact.MaxCount)
	}
	if exact.MaxTotalAmount > 0 {
		doc.MaxTotalAmount = gatehouse.Decimal(money.FormatAmount(exact.MaxTotalAmount, exact.Currency))
	}
	at.limits = append(at.limits, compiledLimits{doc: doc, exact: exact})
	return int32(len(at.limits) - 1)
}

// addLimits compiles l into the table and returns its index, -1 for nil.
func (at *actionTable) addLimits(l *gatehouse.ActionLimits) (int32, error) {
	if l == nil {
		return -1, nil
	}
	exact, problems := money.Limits(*l)
	if len(problems) > 0 {
		return -1, gatehouse.Invalidf("limits: %s: %s", problems[0].Field, problems[0].Message)
	}
	at.limits = append(at.limits, compiledLimits{doc: *l, exact: exact})
	return int32(len(at.limits) - 1), nil
}

func cloneStrings(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ActionPolicy returns the effective policy of action in tenant, each part
// with its provenance. An unknown tenant or action is gatehouse.ErrNotFound.
func (s *Snapshot) ActionPolicy(tenant, action string) (gatehouse.EffectiveAction, error) {
	if s == nil {
		return gatehouse.EffectiveAction{}, errNoSnapshot
	}
	t, ok := s.tenantIdx[strings.TrimSpace(tenant)]
	if !ok {
		return gatehouse.EffectiveAction{}, gatehouse.NotFoundf("tenant %q", tenant)
	}
	a, ok := s.actions.idx[strings.TrimSpace(action)]
	if !ok {
		return gatehouse.EffectiveAction{}, gatehouse.NotFoundf("action %q", action)
	}
	return s.effectiveAction(t, a), nil
}

// ActionPolicies returns the effective policy of every action type in
// tenant, sorted by action; an unknown tenant is gatehouse.ErrNotFound.
func (s *Snapshot) ActionPolicies(tenant string) ([]gatehouse.EffectiveAction, error) {
	if s == nil {
		return nil, errNoSnapshot
	}
	t, ok := s.tenantIdx[strings.TrimSpace(tenant)]
	if !ok {
		return nil, gatehouse.NotFoundf("tenant %q", tenant)
	}
	out := make([]gatehouse.EffectiveAction, len(s.actions.types))
	for a := range s.actions.types {
		out[a] = s.effectiveAction(t, int32(a))
	}
	return out, nil
}

func (s *Snapshot) effectiveAction(t, a int32) gatehouse.EffectiveAction {
	at := &s.actions
	r := at.eff[int(t)*len(at.types)+int(a)]
	from := func(i int32) string {
		if i < 0 {
			return gatehouse.SourceDefault
		}
		return gatehouse.TenantSource(s.tenants[i].id)
	}
	e := gatehouse.EffectiveAction{
		Action: at.types[a].name, Tenant: s.tenants[t].id,
		Enabled: r.enabled, EnabledFrom: from(r.enabledFrom),
		RequiresConfirmation: r.confirm, RequiresConfirmationFrom: from(r.confirmFrom),
		Approver: at.types[a].approver,
	}
	for part, by := range map[string]int32{gatehouse.CeilingEnabled: r.offBy,
		gatehouse.CeilingRequiresConfirmation: r.confirmBy, gatehouse.CeilingLimits: r.limitsBy} {
		if by >= 0 {
			if e.Ceilings == nil {
				e.Ceilings = map[string]string{}
			}
			e.Ceilings[part] = from(by)
		}
	}
	if r.limits >= 0 {
		l := at.limits[r.limits]
		doc := l.doc
		if doc.MaxCount != nil {
			doc.MaxCount = new(*doc.MaxCount)
		}
		e.Limits, e.LimitsFrom, e.Exact = &doc, from(r.limitsFrom), l.exact
	}
	return e
}

// ToolAction returns what tool performs; false for an unknown tool. A tool
// without an agent action has an empty Action.
func (s *Snapshot) ToolAction(tool string) (ToolAction, bool) {
	if s == nil {
		return ToolAction{}, false
	}
	i, ok := s.toolIdx[strings.TrimSpace(tool)]
	if !ok {
		return ToolAction{}, false
	}
	return s.actions.tools[i], true
}

// Tools returns every tool, sorted by name.
func (s *Snapshot) Tools() []ToolAction {
	if s == nil {
		return nil
	}
	return slices.Clone(s.actions.tools)
}

// ActionTool returns the tool that performs the agent action type action:
// ok is false when no tool or more than one tool performs it, or action is
// not an action type.
func (s *Snapshot) ActionTool(action string) (tool string, ok bool) {
	if s == nil {
		return "", false
	}
	if _, isType := s.actions.idx[action]; !isType {
		return "", false
	}
	for _, ta := range s.actions.tools {
		if ta.Action != action {
			continue
		}
		if tool != "" {
			return "", false
		}
		tool = ta.Tool
	}
	return tool, tool != ""
}

// ActionLabel returns action's label in lang, else in English, else the
// action's name.
func (s *Snapshot) ActionLabel(action, lang string) string {
	if l := s.actionText(action, lang, func(a *actionInfo) map[string]string { return a.labels }); l != "" {
		return l
	}
	return action
}

// ActionDescription returns action's description in lang, else in
// English, else "".
func (s *Snapshot) ActionDescription(action, lang string) string {
	return s.actionText(action, lang, func(a *actionInfo) map[string]string { return a.descriptions })
}

// actionText returns the text of action that texts picks, in lang, else
// in English, else "".
func (s *Snapshot) actionText(action, lang string, texts func(*actionInfo) map[string]string) string {
	if s == nil {
		return ""
	}
	a, ok := s.actions.idx[action]
	if !ok {
		return ""
	}
	m := texts(&s.actions.types[a])
	if t := m[lang]; t != "" {
		return t
	}
	return m["en"]
}
