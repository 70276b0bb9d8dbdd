package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/money"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

// actionOptions are the flags of the action commands.
type actionOptions struct {
	args     string
	key      string
	as       string
	message  string
	status   string
	kind     string
	since    string
	until    string
	replay   string
	days     int
	examples int
	// action policy set
	enabled, confirmation, limits string
	inherit                       bool
	// action limits set
	window, currency string
}

// actionRequestFlags are the flags that describe a proposed tool call.
func actionRequestFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.subject, "subject", "", "who calls the tool: agent:ID or user:EMAIL")
	fs.StringVar(&o.onBehalfOf, "on-behalf-of", "", "user:EMAIL of the customer an agent acts for")
	fs.StringVar(&o.tenant, "tenant", "", "tenant id")
	fs.StringVar(&o.tool, "tool", "", "tool name; its action, amount and percentage come from the policy")
	fs.StringVar(&o.act.args, "args", "", `the tool's arguments as a JSON object, e.g. {"amount":"20.00","currency":"EUR"}`)
	fs.StringVar(&o.context, "context", "", "request context as a JSON object (visible to conditions as context)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
}

func actionAuthorizeFlags(fs *flag.FlagSet, o *options) {
	actionRequestFlags(fs, o)
	fs.StringVar(&o.act.key, "key", "", "idempotency key: a retry with the same key returns the first result and reserves nothing")
}

func actionSimulateFlags(fs *flag.FlagSet, o *options) {
	actionRequestFlags(fs, o)
	fs.StringVar(&o.act.replay, "replay", "", "instead, replay the recorded actions against this policy document applied to the stored policy")
	fs.IntVar(&o.act.days, "days", 7, "with --replay: how many days of recorded actions to replay")
	fs.IntVar(&o.act.examples, "examples", 10, "with --replay: how many denied actions to show")
}

func actionMoveFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.act.as, "as", "", "who does it: user:EMAIL (the customer or an approver) or agent:ID")
	fs.BoolVar(&o.jsonOut, "json", false, "print the record as JSON")
}

func actionFailFlags(fs *flag.FlagSet, o *options) {
	actionMoveFlags(fs, o)
	fs.StringVar(&o.act.message, "error", "", "why the action failed (required)")
}

func actionListFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.tenant, "tenant", "", "only actions in this tenant")
	fs.StringVar(&o.act.kind, "action", "", "only actions of this type, e.g. process_refund")
	fs.StringVar(&o.subject, "subject", "", "only actions requested by this subject")
	fs.StringVar(&o.act.status, "status", "", "only actions in this status: pending, confirmed, executed, failed, cancelled, expired")
	fs.StringVar(&o.act.since, "since", "", "only actions created at or after this RFC 3339 time, or this long ago (24h)")
	fs.StringVar(&o.act.until, "until", "", "only actions created before this RFC 3339 time")
	fs.Int64Var(&o.after, "after", 0, "only actions after this sequence number")
	fs.IntVar(&o.limit, "limit", 100, "at most this many actions")
	fs.BoolVar(&o.jsonOut, "json", false, "print as JSON lines")
}

func actionPolicyFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.tenant, "tenant", "", "tenant id (required)")
	fs.BoolVar(&o.jsonOut, "json", false, "print as JSON")
	fs.StringVar(&o.act.enabled, "enabled", "", "set: true or false")
	fs.StringVar(&o.act.confirmation, "confirmation", "", "set: whether a human must confirm, true or false")
	fs.StringVar(&o.act.limits, "limits", "", `set: the tenant's own limits as JSON, replacing its own, e.g. {"currency":"EUR","max_amount":"50"}; {} for none`)
	fs.BoolVar(&o.act.inherit, "inherit", false, "set: drop the tenant's own policy for the action and inherit again")
}

func actionLimitsFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.tenant, "tenant", "", "tenant id (required)")
	fs.BoolVar(&o.jsonOut, "json", false, "print as JSON")
	fs.StringVar(&o.act.window, "window", "", "set: the window of max_count and max_total_amount, e.g. 24h")
	fs.StringVar(&o.act.currency, "currency", "", "set: the ISO 4217 currency of max_amount and max_total_amount")
}

// actionQuestion builds the question of the action flags.
func actionQuestion(m *Main) (gatehouse.Question, error) {
	o := m.opts
	if o.subject == "" || o.tool == "" {
		return gatehouse.Question{}, usage("required_both", "Flag", "--subject", "Other", "--tool")
	}
	subject, err := gatehouse.ParseSubject(o.subject)
	if err != nil {
		return gatehouse.Question{}, usage("bad_value", "Flag", "--subject", "Detail", err)
	}
	q := gatehouse.Question{Request: gatehouse.Request{Subject: subject, Tenant: o.tenant}, Tool: o.tool,
		Lang: m.lang(), Surface: "cli"}
	if o.onBehalfOf != "" {
		if q.OnBehalfOf, err = gatehouse.ParseSubject(o.onBehalfOf); err != nil {
			return gatehouse.Question{}, usage("bad_value", "Flag", "--on-behalf-of", "Detail", err)
		}
	}
	if o.act.args != "" {
		if err := decodeObject("--args", o.act.args, &q.Args); err != nil {
			return gatehouse.Question{}, err
		}
	}
	if o.context != "" {
		if err := decodeObject("--context", o.context, &q.Context); err != nil {
			return gatehouse.Question{}, err
		}
	}
	return q, nil
}

func runActionAuthorize(ctx context.Context, m *Main) error {
	q, err := actionQuestion(m)
	if err != nil {
		return err
	}
	a, err := m.svc.AuthorizeToolCall(ctx, gatehouse.Operator, q, m.opts.act.key)
	if err != nil {
		return err
	}
	return m.printAnswer(a, false)
}

func runActionSimulate(ctx context.Context, m *Main) error {
	if m.opts.act.replay != "" {
		return runActionReplay(ctx, m)
	}
	q, err := actionQuestion(m)
	if err != nil {
		return err
	}
	a, err := m.svc.Simulate(ctx, gatehouse.Operator, q)
	if err != nil {
		return err
	}
	return m.printAnswer(a, false)
}

func runActionReplay(ctx context.Context, m *Main) error {
	o := m.opts.act
	if o.days <= 0 || o.examples < 0 {
		return usage("days_examples")
	}
	data, err := readInput(m, o.replay)
	if err != nil {
		return err
	}
	doc, err := policy.Parse(o.replay, data)
	if err != nil {
		return m.explainParseError(ctx, err)
	}
	rep, err := m.svc.ReplayActions(ctx, doc, time.Duration(o.days)*24*time.Hour, o.examples)
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, rep)
	}
	fmt.Fprintf(m.Stdout, "replayed %d actions since %s against the proposed policy\n", rep.Actions, rep.Since.Format(time.RFC3339))
	fmt.Fprintf(m.Stdout, "still allowed     %d (%d now need a confirmation)\nallowed → denied  %d\n",
		rep.StillAllowed, rep.NewlyConfirmed, rep.AllowedToDenied)
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	for _, r := range gatehouse.Reasons {
		if n := rep.ByReason[r]; n > 0 {
			fmt.Fprintf(w, "  %s\t%d\n", r, n)
		}
	}
	for _, e := range rep.Examples {
		detail := e.Problem
		if e.Limit != nil {
			detail = fmt.Sprintf("%s: %s requested, max %s", e.Limit.Limit, e.Limit.Requested, e.Limit.Max)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", e.ActionID, e.CreatedAt.Format(time.RFC3339), e.Tenant, e.Action, e.Reason, detail)
	}
	return w.Flush()
}

// moveAction runs one lifecycle step on the action named by the argument,
// as the subject --as names.
func moveAction(step func(m *Main, ctx context.Context, actor gatehouse.Caller, id string) (gatehouse.ActionRecord, error)) func(ctx context.Context, m *Main) error {
	return func(ctx context.Context, m *Main) error {
		if m.opts.act.as == "" {
			return usage("as_required")
		}
		subject, err := gatehouse.ParseSubject(m.opts.act.as)
		if err != nil {
			return usage("bad_value", "Flag", "--as", "Detail", err)
		}
		actor := gatehouse.Operator
		actor.Subject = subject
		rec, err := step(m, ctx, actor, m.args[0])
		if err != nil {
			return err
		}
		return m.printRecord(rec)
	}
}

var (
	runActionConfirm = moveAction(func(m *Main, ctx context.Context, actor gatehouse.Caller, id string) (gatehouse.ActionRecord, error) {
		return m.svc.ConfirmAction(ctx, actor, id)
	})
	runActionCancel = moveAction(func(m *Main, ctx context.Context, actor gatehouse.Caller, id string) (gatehouse.ActionRecord, error) {
		return m.svc.CancelAction(ctx, actor, id)
	})
	runActionExecute = moveAction(func(m *Main, ctx context.Context, actor gatehouse.Caller, id string) (gatehouse.ActionRecord, error) {
		return m.svc.ActionExecuted(ctx, actor, id)
	})
	runActionFail = func(ctx context.Context, m *Main) error {
		if strings.TrimSpace(m.opts.act.message) == "" {
			return usage("required", "Flag", "--error")
		}
		return moveAction(func(m *Main, ctx context.Context, actor gatehouse.Caller, id string) (gatehouse.ActionRecord, error) {
			return m.svc.ActionFailed(ctx, actor, id, m.opts.act.message)
		})(ctx, m)
	}
)

func runActionShow(ctx context.Context, m *Main) error {
	rec, err := m.svc.GetAction(ctx, gatehouse.Operator, m.args[0])
	if err != nil {
		return err
	}
	return m.printRecord(rec)
}

func (m *Main) printRecord(r gatehouse.ActionRecord) error {
	if m.opts.jsonOut {
		return writeJSON(m, r)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%s\t%s\n", k, v)
		}
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	row("action", r.ID)
	row("status", string(r.Status))
	row("type", r.Action+" (tool "+r.Tool+")")
	row("tenant", r.Tenant)
	row("subject", r.Subject)
	row("on behalf of", r.OnBehalfOf)
	row("amount", amountText(r))
	if r.Percentage > 0 {
		row("percentage", money.FormatPercent(r.Percentage)+"%")
	}
	row("args", string(r.Args))
	row("reason", string(r.Reason))
	row("created", at(r.CreatedAt))
	if r.Status == gatehouse.ActionPending {
		row("expires", at(r.ExpiresAt))
	}
	row("confirmed", strings.TrimSpace(at(r.ConfirmedAt)+" "+r.ConfirmedBy))
	row("executed", at(r.ExecutedAt))
	row("error", r.ErrorMessage)
	row("updated", at(r.UpdatedAt)+" by "+r.UpdatedBy)
	row("idempotency key", r.IdempotencyKey)
	fmt.Fprintf(w, "policy version\t%d\n", r.PolicyVersion)
	return w.Flush()
}

func amountText(r gatehouse.ActionRecord) string {
	if r.Currency == "" {
		return ""
	}
	return money.FormatAmount(r.Amount, r.Currency) + " " + r.Currency
}

func runActionList(ctx context.Context, m *Main) error {
	o := m.opts
	if o.limit <= 0 {
		return usage("positive", "Flag", "--limit")
	}
	f := gatehouse.ActionFilter{Tenant: o.tenant, Action: o.act.kind, Subject: o.subject,
		Status: gatehouse.ActionStatus(o.act.status), AfterSeq: o.after, Limit: o.limit}
	if o.subject != "" {
		s, err := gatehouse.ParseSubject(o.subject)
		if err != nil {
			return usage("bad_value", "Flag", "--subject", "Detail", err)
		}
		f.Subject = s.String()
	}
	var err error
	if f.Since, err = parseSince(o.act.since, m.svc.Now()); err != nil {
		return err
	}
	if o.act.until != "" {
		if f.Until, err = time.Parse(time.RFC3339, o.act.until); err != nil {
			return usage("rfc3339", "Flag", "--until", "Detail", err)
		}
	}
	recs, err := m.svc.ListActions(ctx, gatehouse.Operator, f)
	if err != nil {
		return err
	}
	if o.jsonOut {
		enc := json.NewEncoder(m.Stdout)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	for _, r := range recs {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.ID, r.CreatedAt.Format(time.RFC3339),
			r.Status, r.Tenant, r.Action, amountText(r))
	}
	return w.Flush()
}

// parseSince reads --since: an RFC 3339 time or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usage("time_or_duration", "Flag", "--since")
	}
	return t, nil
}

func runActionPolicy(ctx context.Context, m *Main) error {
	if m.opts.tenant == "" {
		return usage("required", "Flag", "--tenant")
	}
	switch {
	case len(m.args) == 2 && m.args[0] == "set":
		if err := setActionPolicy(ctx, m, m.args[1]); err != nil {
			return err
		}
	case len(m.args) == 0 || len(m.args) == 1 && m.args[0] == "get":
	default:
		return usage("choices", "Choices", "get | set ACTION")
	}
	pols, err := m.svc.ActionPolicies(m.opts.tenant)
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, pols)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ACTION\tENABLED\tCONFIRMATION\tLIMITS")
	for _, p := range pols {
		limits := "none"
		if p.Limits != nil {
			limits = limitsText(p) + " (" + p.LimitsFrom + ceilingText(p, gatehouse.CeilingLimits) + ")"
		}
		fmt.Fprintf(w, "%s\t%t (%s%s)\t%t (%s%s)\t%s\n", p.Action, p.Enabled, p.EnabledFrom, ceilingText(p, gatehouse.CeilingEnabled),
			p.RequiresConfirmation, p.RequiresConfirmationFrom, ceilingText(p, gatehouse.CeilingRequiresConfirmation), limits)
	}
	return w.Flush()
}

// setActionPolicy changes the tenant's own policy for action as the flags say.
func setActionPolicy(ctx context.Context, m *Main, action string) error {
	o := m.opts.act
	if o.inherit {
		if o.enabled != "" || o.confirmation != "" || o.limits != "" {
			return usage("inherit_alone")
		}
		_, err := m.svc.InheritActionPolicy(ctx, m.Config.Actor, m.opts.tenant, action)
		return err
	}
	var c service.ActionPolicyChange
	for _, f := range []struct {
		name, val string
		dst       **bool
	}{{"--enabled", o.enabled, &c.Enabled}, {"--confirmation", o.confirmation, &c.RequiresConfirmation}} {
		if f.val == "" {
			continue
		}
		b, err := strconv.ParseBool(f.val)
		if err != nil {
			return usage("bool", "Flag", f.name)
		}
		*f.dst = &b
	}
	if o.limits != "" {
		c.Limits = new(gatehouse.ActionLimits)
		if err := decodeObject("--limits", o.limits, c.Limits); err != nil {
			return err
		}
	}
	if c == (service.ActionPolicyChange{}) {
		return usage("at_least_one", "Flags", "--enabled, --confirmation, --limits, --inherit")
	}
	_, err := m.svc.SetActionPolicy(ctx, m.Config.Actor, m.opts.tenant, action, c)
	return err
}

// limitsText writes limits as "max_amount 100 EUR, 50 per 24h".
func limitsText(p gatehouse.EffectiveAction) string {
	l := p.Limits
	var parts []string
	if l.MaxAmount != "" {
		parts = append(parts, "max_amount "+string(l.MaxAmount)+" "+l.Currency)
	}
	if l.MaxPercentage != "" {
		parts = append(parts, "max_percentage "+string(l.MaxPercentage)+"%")
	}
	if l.MaxCount != nil {
		parts = append(parts, fmt.Sprintf("max_count %d per %s", *l.MaxCount, l.Window))
	}
	if l.MaxTotalAmount != "" {
		parts = append(parts, fmt.Sprintf("max_total_amount %s %s per %s", l.MaxTotalAmount, l.Currency, l.Window))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// limitLine is one limit of an action in a tenant, as `action limits` lists it.
type limitLine struct {
	Action   string `json:"action"`
	Limit    string `json:"limit"`
	Value    string `json:"value"`
	Currency string `json:"currency,omitempty"`
	Window   string `json:"window,omitempty"`
	Source   string `json:"source"`
}

// runActionLimits lists a tenant's effective limits, one line per limit,
// or sets or removes one of them (seed 004's action_limits rows).
func runActionLimits(ctx context.Context, m *Main) error {
	o, args := m.opts, m.args
	if o.tenant == "" {
		return usage("required", "Flag", "--tenant")
	}
	limitType := func(name string) (string, error) {
		if name == "time_window" {
			// Seed 004's name for a count of actions per window.
			return gatehouse.LimitMaxCount, nil
		}
		if slices.Contains(gatehouse.LimitTypes, name) {
			return name, nil
		}
		return "", usage("limit_type", "Limit", name, "Types", strings.Join(append(slices.Clone(gatehouse.LimitTypes), "time_window"), ", "))
	}
	switch {
	case len(args) == 4 && args[0] == "set":
		typ, err := limitType(args[2])
		if err != nil {
			return err
		}
		if _, err := m.svc.EditActionLimits(ctx, m.Config.Actor, o.tenant, args[1], func(l *gatehouse.ActionLimits) error {
			return setLimit(l, typ, args[3], o.act.window, o.act.currency)
		}); err != nil {
			return err
		}
	case len(args) == 3 && args[0] == "remove":
		typ, err := limitType(args[2])
		if err != nil {
			return err
		}
		if _, err := m.svc.EditActionLimits(ctx, m.Config.Actor, o.tenant, args[1], func(l *gatehouse.ActionLimits) error {
			if !l.Remove(typ) {
				return gatehouse.NotFoundf("limit %s of action %q in tenant %q", typ, args[1], o.tenant)
			}
			return nil
		}); err != nil {
			return err
		}
	case len(args) == 0 || len(args) == 1 && args[0] == "get":
	default:
		return usage("choices", "Choices", "get | set ACTION LIMIT VALUE | remove ACTION LIMIT")
	}
	pols, err := m.svc.ActionPolicies(o.tenant)
	if err != nil {
		return err
	}
	lines := []limitLine{}
	for _, p := range pols {
		if p.Limits == nil {
			continue
		}
		for _, typ := range gatehouse.LimitTypes {
			v := p.Limits.Value(typ)
			if v == "" {
				continue
			}
			line := limitLine{Action: p.Action, Limit: typ, Value: v, Source: p.LimitsFrom}
			if gatehouse.IsAmountLimit(typ) {
				line.Currency = p.Limits.Currency
			}
			if gatehouse.IsWindowLimit(typ) {
				line.Window = p.Limits.Window
			}
			lines = append(lines, line)
		}
	}
	if o.jsonOut {
		return writeJSON(m, lines)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ACTION\tLIMIT\tVALUE\tCURRENCY\tWINDOW\tSOURCE")
	for _, l := range lines {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Action, l.Limit, l.Value, dash(l.Currency), dash(l.Window), l.Source)
	}
	return w.Flush()
}

// setLimit sets l's limit typ to value, with the window and currency when
// given; the service validates the result as it validates a policy.
func setLimit(l *gatehouse.ActionLimits, typ, value, window, currency string) error {
	switch typ {
	case gatehouse.LimitMaxAmount:
		l.MaxAmount = gatehouse.Decimal(value)
	case gatehouse.LimitMaxPercentage:
		l.MaxPercentage = gatehouse.Decimal(value)
	case gatehouse.LimitMaxCount:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n <= 0 {
			return usage("max_count", "Value", value)
		}
		l.MaxCount = &n
	case gatehouse.LimitMaxTotalAmount:
		l.MaxTotalAmount = gatehouse.Decimal(value)
	}
	if currency != "" {
		l.Currency = currency
	}
	if window != "" {
		l.Window = window
	}
	return nil
}

// dash is s, or "-" for nothing.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ceilingText says which ancestor enforces part of p, if one does.
func ceilingText(p gatehouse.EffectiveAction, part string) string {
	if by := p.Ceilings[part]; by != "" {
		return "; ceiling " + by
	}
	return ""
}
