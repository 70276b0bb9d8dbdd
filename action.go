package gatehouse

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Agent actions (seed 004): the policy document declares action types with
// defaults, tenants override them per action, tools map their arguments to
// an amount or percentage, and every allowed action is stored as an
// ActionRecord that reserves capacity in its limits' windows and moves
// through the confirmation lifecycle.

// Decimal is a decimal number as the policy document writes it ("100",
// "49.99"): text, never a float. Package money parses it exactly.
type Decimal string

// UnmarshalJSON accepts a JSON number or string, keeping the text as
// written, so a number is never read through a float.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("decimal: want a number or a numeric string, got %s", b)
	}
	*d = Decimal(n)
	return nil
}

// ActionLimits are the limits of an action policy as the document writes
// them. Amounts are in Currency (ISO 4217); MaxPercentage is a percentage
// (0–100); Window is a duration such as "24h" over which at most MaxCount
// actions and at most MaxTotalAmount in total may be reserved. Zero values
// mean no such limit.
type ActionLimits struct {
	Currency       string  `json:"currency,omitempty"`
	MaxAmount      Decimal `json:"max_amount,omitempty"`
	MaxPercentage  Decimal `json:"max_percentage,omitempty"`
	Window         string  `json:"window,omitempty"`
	MaxCount       *int64  `json:"max_count,omitempty"`
	MaxTotalAmount Decimal `json:"max_total_amount,omitempty"`
}

// ActionSetting is a tenant's own setting for one action type. A nil field
// is inherited from the nearest ancestor tenant that sets it, else from the
// action type's default. Limits are inherited as a whole: a tenant that sets
// limits replaces its ancestors' (an empty object removes them).
//
// Enforced makes the setting a ceiling for the tenant's subtree (an
// organization capping its stores): its enabled: false, its
// requires_confirmation: true and each of its limits bind every
// descendant, which may only tighten them. Validation refuses a looser
// descendant setting, naming the ancestor; the effective policy is the
// tightest along the path even so.
type ActionSetting struct {
	Enabled              *bool         `json:"enabled,omitempty"`
	RequiresConfirmation *bool         `json:"requires_confirmation,omitempty"`
	Limits               *ActionLimits `json:"limits,omitempty"`
	Enforced             bool          `json:"enforced,omitempty"`
}

// Limits are action limits in exact integers: amounts in minor units of
// Currency, MaxPercentage in hundredths of a percent. Zero means no limit.
type Limits struct {
	Currency       string        `json:"currency,omitempty"`
	MaxAmount      int64         `json:"max_amount,omitempty"`
	MaxPercentage  int64         `json:"max_percentage,omitempty"`
	Window         time.Duration `json:"window,omitempty"`
	MaxCount       int64         `json:"max_count,omitempty"`
	MaxTotalAmount int64         `json:"max_total_amount,omitempty"`
}

// NeedsAmount reports whether deciding against l needs the action's amount.
func (l Limits) NeedsAmount() bool { return l.MaxAmount > 0 || l.MaxTotalAmount > 0 }

// Windowed reports whether l limits a rolling window.
func (l Limits) Windowed() bool { return l.Window > 0 && (l.MaxCount > 0 || l.MaxTotalAmount > 0) }

// SourceDefault is the provenance of a value taken from the action type's
// default; a value set by a tenant has the provenance "tenant:ID".
const SourceDefault = "default"

// TenantSource is the provenance of a value set by tenant id.
func TenantSource(id string) string { return "tenant:" + id }

// EffectiveAction is the action policy that applies to one action in one
// tenant, each part with its provenance: SourceDefault or "tenant:ID".
type EffectiveAction struct {
	Action                   string        `json:"action"`
	Tenant                   string        `json:"tenant"`
	Enabled                  bool          `json:"enabled"`
	EnabledFrom              string        `json:"enabled_from"`
	RequiresConfirmation     bool          `json:"requires_confirmation"`
	RequiresConfirmationFrom string        `json:"requires_confirmation_from"`
	Limits                   *ActionLimits `json:"limits,omitempty"`
	LimitsFrom               string        `json:"limits_from,omitempty"`
	// Exact is Limits in exact integers.
	Exact Limits `json:"-"`
	// Approver is the permission whose holders in the tenant may confirm
	// the action besides the customer; empty when only the customer may.
	Approver string `json:"approver_permission,omitempty"`
	// Ceilings name, for each part an ancestor enforces ("enabled",
	// "requires_confirmation", "limits"), the tenant source of the
	// nearest enforced ceiling ("tenant:acme").
	Ceilings map[string]string `json:"ceilings,omitempty"`
}

// Parts of an action policy a ceiling binds (EffectiveAction.Ceilings).
const (
	CeilingEnabled              = "enabled"
	CeilingRequiresConfirmation = "requires_confirmation"
	CeilingLimits               = "limits"
)

// Tighter returns the tightest of l and ceiling, field by field: the
// smaller non-zero maximum of each. Windowed limits of a different window
// than the ceiling's are replaced by the ceiling's; amounts in another
// currency than the ceiling's are replaced by the ceiling's.
func (l Limits) Tighter(ceiling Limits) Limits {
	tight := func(a, b int64) int64 {
		switch {
		case a == 0:
			return b
		case b == 0:
			return a
		}
		return min(a, b)
	}
	out := l
	if ceiling.Currency != "" && l.Currency != ceiling.Currency {
		// Amounts in another currency cannot be compared: the ceiling's apply.
		out.Currency, out.MaxAmount, out.MaxTotalAmount = ceiling.Currency, ceiling.MaxAmount, ceiling.MaxTotalAmount
	} else {
		out.MaxAmount = tight(l.MaxAmount, ceiling.MaxAmount)
		out.MaxTotalAmount = tight(l.MaxTotalAmount, ceiling.MaxTotalAmount)
	}
	out.MaxPercentage = tight(l.MaxPercentage, ceiling.MaxPercentage)
	if ceiling.Window != 0 && l.Window != ceiling.Window {
		// Counts over another window cannot be compared: the ceiling's apply.
		out.Window, out.MaxCount, out.MaxTotalAmount = ceiling.Window, ceiling.MaxCount, ceiling.MaxTotalAmount
	} else {
		out.MaxCount = tight(l.MaxCount, ceiling.MaxCount)
	}
	return out
}

// ActionStatus is where an action record is in its lifecycle:
// pending → confirmed → executed | failed; pending → cancelled | expired.
// An action that needs no confirmation starts confirmed.
type ActionStatus string

// Action statuses.
const (
	ActionPending   ActionStatus = "pending"
	ActionConfirmed ActionStatus = "confirmed"
	ActionExecuted  ActionStatus = "executed"
	ActionFailed    ActionStatus = "failed"
	ActionCancelled ActionStatus = "cancelled"
	ActionExpired   ActionStatus = "expired"
)

// ActionStatuses lists every status.
var ActionStatuses = []ActionStatus{ActionPending, ActionConfirmed, ActionExecuted,
	ActionFailed, ActionCancelled, ActionExpired}

// CanBecome reports whether a record in status s may move to status to.
func (s ActionStatus) CanBecome(to ActionStatus) bool {
	switch s {
	case ActionPending:
		return to == ActionConfirmed || to == ActionCancelled || to == ActionExpired
	case ActionConfirmed:
		return to == ActionExecuted || to == ActionFailed
	}
	return false
}

// Holds reports whether a record in status s holds capacity in its limits'
// windows: pending, confirmed and executed actions do; failed, cancelled
// and expired ones released theirs.
func (s ActionStatus) Holds() bool {
	return s == ActionPending || s == ActionConfirmed || s == ActionExecuted
}

// ActionRecord is one allowed agent action as stored (seed 004's
// action_audit): the request, the decision that allowed it, the capacity it
// reserved and its lifecycle. Times are UTC, truncated to microseconds.
type ActionRecord struct {
	ID string `json:"id"`
	// Seq orders records by creation; ListActions pages on it.
	Seq        int64  `json:"seq"`
	Tenant     string `json:"tenant"`
	Action     string `json:"action"`
	Tool       string `json:"tool"`
	Subject    string `json:"subject"`
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	// IdempotencyKey is unique per Subject; Fingerprint identifies the
	// request it was first used for.
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Fingerprint    string          `json:"fingerprint,omitempty"`
	Args           json.RawMessage `json:"args,omitempty"`
	// Amount is in minor units of Currency; Currency is empty when the
	// action has no amount. Percentage is in hundredths of a percent.
	Amount               int64        `json:"amount_minor,omitempty"`
	Currency             string       `json:"currency,omitempty"`
	Percentage           int64        `json:"percentage_bp,omitempty"`
	RequiresConfirmation bool         `json:"requires_confirmation"`
	Reason               Reason       `json:"reason"`
	PolicyVersion        int64        `json:"policy_version"`
	Status               ActionStatus `json:"status"`
	CreatedAt            time.Time    `json:"created_at"`
	// ExpiresAt is when a pending action expires.
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	ConfirmedAt  time.Time `json:"customer_confirmed_at,omitzero"`
	ConfirmedBy  string    `json:"confirmed_by,omitempty"`
	ExecutedAt   time.Time `json:"executed_at,omitzero"`
	ErrorMessage string    `json:"error_message,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
	UpdatedBy    string    `json:"updated_by"`
}

// StatusAt returns the record's status at now: a pending record whose
// expiry has passed is expired even if no transition recorded it.
func (r *ActionRecord) StatusAt(now time.Time) ActionStatus {
	if r.Status == ActionPending && !now.Before(r.ExpiresAt) {
		return ActionExpired
	}
	return r.Status
}

// ActionFilter selects action records; zero fields match everything.
type ActionFilter struct {
	// Now decides which pending records count as expired; required.
	Now      time.Time
	Tenant   string
	Action   string
	Status   ActionStatus
	Subject  string
	AfterSeq int64
	// Since is inclusive, Until exclusive, on CreatedAt.
	Since, Until time.Time
	// Limit caps the number of records as AuditFilter.Limit does.
	Limit int
}

// Reservation asks a store to record an allowed action if its window
// limits leave room for it.
type Reservation struct {
	// Record is stored as given; the store assigns Seq.
	Record ActionRecord
	// Window, MaxCount and MaxTotalAmount are the limits to enforce over
	// the records of the same tenant and action created within Window
	// before Record.CreatedAt whose status holds capacity; zero: none.
	Window         time.Duration
	MaxCount       int64
	MaxTotalAmount int64
}

// Limit names, as limit_exceeded reports them.
const (
	LimitMaxAmount      = "max_amount"
	LimitMaxPercentage  = "max_percentage"
	LimitMaxCount       = "max_count"
	LimitMaxTotalAmount = "max_total_amount"
)

// LimitTypes lists the limit types in the order listings show them.
var LimitTypes = []string{LimitMaxAmount, LimitMaxPercentage, LimitMaxCount, LimitMaxTotalAmount}

// IsAmountLimit reports whether limit type typ is an amount in a currency.
func IsAmountLimit(typ string) bool { return typ == LimitMaxAmount || typ == LimitMaxTotalAmount }

// IsWindowLimit reports whether limit type typ counts over a window.
func IsWindowLimit(typ string) bool { return typ == LimitMaxCount || typ == LimitMaxTotalAmount }

// Value returns the text of l's limit of type typ, one of LimitTypes: a
// decimal as written, max_count as a whole number; "" when l has none.
func (l ActionLimits) Value(typ string) string {
	switch typ {
	case LimitMaxAmount:
		return string(l.MaxAmount)
	case LimitMaxPercentage:
		return string(l.MaxPercentage)
	case LimitMaxCount:
		if l.MaxCount != nil {
			return strconv.FormatInt(*l.MaxCount, 10)
		}
	case LimitMaxTotalAmount:
		return string(l.MaxTotalAmount)
	}
	return ""
}

// Remove removes l's limit of type typ, and the currency or the window when
// no limit left needs it. It reports false, changing nothing, when l has no
// such limit.
func (l *ActionLimits) Remove(typ string) bool {
	if l.Value(typ) == "" {
		return false
	}
	switch typ {
	case LimitMaxAmount:
		l.MaxAmount = ""
	case LimitMaxPercentage:
		l.MaxPercentage = ""
	case LimitMaxCount:
		l.MaxCount = nil
	case LimitMaxTotalAmount:
		l.MaxTotalAmount = ""
	}
	if l.MaxAmount == "" && l.MaxTotalAmount == "" {
		l.Currency = ""
	}
	if l.MaxCount == nil && l.MaxTotalAmount == "" {
		l.Window = ""
	}
	return true
}

// ReserveResult is what ReserveActions did with one reservation.
type ReserveResult struct {
	// Record is the stored record: the new one, or the one stored earlier
	// under the same idempotency key (Replayed).
	Record   ActionRecord
	Replayed bool
	// Exceeded names the window limit that refused the reservation
	// (LimitMaxCount or LimitMaxTotalAmount); empty when it was stored.
	Exceeded string
	// Count and Total are the window's usage before this action.
	Count, Total int64
}

// Transition asks a store to move an action record to another status.
type Transition struct {
	ID    string
	To    ActionStatus
	Actor string
	Time  time.Time
	// ErrorMessage is recorded when To is failed.
	ErrorMessage string
}

// ActionEvent returns the audit event of an action record's creation or
// transition: Before and After are the record as it was and is; before is
// nil for a creation.
func ActionEvent(before *ActionRecord, after ActionRecord, actor string, at time.Time) (AuditEvent, error) {
	e := AuditEvent{Time: at, Actor: actor, Action: "action." + string(after.Status), Target: "action/" + after.ID}
	if before == nil {
		e.Action = "action.authorize"
	} else {
		b, err := json.Marshal(before)
		if err != nil {
			return AuditEvent{}, fmt.Errorf("encode action %s: %w", after.ID, err)
		}
		e.Before = b
	}
	a, err := json.Marshal(after)
	if err != nil {
		return AuditEvent{}, fmt.Errorf("encode action %s: %w", after.ID, err)
	}
	e.After = a
	return e, nil
}

// ApplyTransition returns r moved by t, or ErrIllegalTransition. A
// transition of a pending record whose expiry has passed at t.Time returns
// ErrActionExpired with r moved to expired instead, by "system" at its
// expiry time: stores write the returned record when the error is nil or
// ErrActionExpired, so an expiry is recorded the first time anyone tries.
func ApplyTransition(r ActionRecord, t Transition) (ActionRecord, error) {
	at := t.Time.UTC().Truncate(time.Microsecond)
	from := r.StatusAt(at)
	if from == ActionExpired && r.Status == ActionPending && t.To != ActionExpired {
		exp, err := ApplyTransition(r, Transition{ID: r.ID, To: ActionExpired, Actor: "system", Time: r.ExpiresAt})
		if err != nil {
			return r, err
		}
		return exp, fmt.Errorf("action %s expired at %s: %w", r.ID, r.ExpiresAt.Format(time.RFC3339), ErrActionExpired)
	}
	if t.To == ActionExpired && from != ActionExpired {
		return r, fmt.Errorf("action %s is %s until %s: %w", r.ID, from, r.ExpiresAt.Format(time.RFC3339), ErrIllegalTransition)
	}
	if !r.Status.CanBecome(t.To) {
		return r, fmt.Errorf("action %s is %s and cannot become %s: %w", r.ID, from, t.To, ErrIllegalTransition)
	}
	r.Status, r.UpdatedAt, r.UpdatedBy = t.To, at, t.Actor
	switch t.To {
	case ActionConfirmed:
		r.ConfirmedAt, r.ConfirmedBy = at, t.Actor
	case ActionExecuted:
		r.ExecutedAt = at
	case ActionFailed:
		r.ErrorMessage = t.ErrorMessage
	}
	return r, nil
}

// Errors of the action lifecycle.
var (
	// ErrIllegalTransition reports a transition the lifecycle does not
	// allow, such as executing a pending action or confirming twice.
	ErrIllegalTransition = errors.New("illegal action transition")
	// ErrActionExpired reports a transition of a pending action whose
	// confirmation window has passed; the action is expired.
	ErrActionExpired = errors.New("action expired")
	// ErrNotApprover reports a confirmation or other transition by someone
	// the policy does not let make it.
	ErrNotApprover = errors.New("not allowed to decide this action")
)

// Stable codes of the action lifecycle errors (see ErrorCode).
const (
	CodeIllegalTransition = "illegal_transition"
	CodeActionExpired     = "action_expired"
	CodeNotApprover       = "not_approver"
)

// Validate reports a record no store may write (ErrInvalid): one without
// id, tenant, action, tool, subject, reason or creation time, with an
// unknown status, a pending one without expiry, or args that are not JSON.
func (r *ActionRecord) Validate() error {
	switch {
	case r.ID == "" || r.Tenant == "" || r.Action == "" || r.Tool == "" || r.Subject == "" || r.Reason == "":
		return Invalidf("action record %q: id, tenant, action, tool, subject and reason are required", r.ID)
	case !slices.Contains(ActionStatuses, r.Status):
		return Invalidf("action record %s: unknown status %q", r.ID, r.Status)
	case r.CreatedAt.IsZero() || r.UpdatedAt.IsZero():
		return Invalidf("action record %s: no creation time", r.ID)
	case r.Status == ActionPending && r.ExpiresAt.IsZero():
		return Invalidf("action record %s: pending without expiry", r.ID)
	case r.Args != nil && !json.Valid(r.Args):
		return Invalidf("action record %s: args are not valid JSON", r.ID)
	}
	return nil
}

// Exceeded names the window limit of r that a window already holding count
// records totalling total leaves no room in for r.Record, or returns "".
func (r Reservation) Exceeded(count, total int64) string {
	switch {
	case r.Window <= 0:
	case r.MaxCount > 0 && count+1 > r.MaxCount:
		return LimitMaxCount
	case r.MaxTotalAmount > 0 && total+r.Record.Amount > r.MaxTotalAmount:
		return LimitMaxTotalAmount
	}
	return ""
}

// WindowUsage is how much of an action type's windowed limits a tenant's
// window holds now; amounts are decimals in Currency.
type WindowUsage struct {
	Action   string `json:"action"`
	Window   string `json:"window"`
	Count    int64  `json:"count"`
	MaxCount int64  `json:"max_count,omitempty"`
	Total    string `json:"total,omitempty"`
	MaxTotal string `json:"max_total_amount,omitempty"`
	Currency string `json:"currency,omitempty"`
}
