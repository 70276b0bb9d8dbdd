// Package guard decides and records agent actions (seed 004): a tool call
// that performs an action such as process_refund passes steps 1–5 of the
// decision order in the engine, then the tenant's action policy (step 6,
// enabled), its limits (step 7: per-action amount and percentage, rolling
// windows of count and total amount) and its confirmation requirement
// (step 8). An allowed action is stored as a record that reserves capacity
// in the windows, atomically in a store transaction, and then moves
// through the confirmation lifecycle.
//
// Superusers bypass RBAC, plans and visibility in steps 1–5 but never an
// action policy or limit. Every failure is a deny with internal_error,
// never an allow.
package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/money"
)

// DefaultConfirmationTTL is how long a pending action waits for its
// confirmation before it expires.
const DefaultConfirmationTTL = 15 * time.Minute

// Config configures a Guard.
type Config struct {
	// ConfirmationTTL is how long a pending action may be confirmed.
	ConfirmationTTL time.Duration
	Clock           gatehouse.Clock
	Logger          *slog.Logger
}

// DefaultConfig returns the configuration New fills zero fields from.
func DefaultConfig() Config {
	return Config{ConfirmationTTL: DefaultConfirmationTTL, Clock: gatehouse.SystemClock{}, Logger: slog.New(slog.DiscardHandler)}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.ConfirmationTTL < 0 {
		return gatehouse.Invalidf("guard: confirmation TTL %v is negative", c.ConfirmationTTL)
	}
	return nil
}

// Guard decides, reserves and moves agent actions. It is safe for
// concurrent use; its state is in the store and the snapshot.
type Guard struct {
	store    gatehouse.ActionStore
	snapshot func() *engine.Snapshot
	cfg      Config
	batch    *batcher
}

// New returns a guard deciding from the snapshot that snapshot returns at
// each call and keeping records in store. Zero fields of cfg take
// DefaultConfig's values.
func New(store gatehouse.ActionStore, snapshot func() *engine.Snapshot, cfg Config) (*Guard, error) {
	def := DefaultConfig()
	if cfg.ConfirmationTTL == 0 {
		cfg.ConfirmationTTL = def.ConfirmationTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = def.Clock
	}
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Guard{store: store, snapshot: snapshot, cfg: cfg, batch: &batcher{actions: store}}, nil
}

// Request is a tool call an agent (or a user) asks to make.
type Request struct {
	Subject gatehouse.SubjectRef `json:"subject"`
	// OnBehalfOf is the customer an agent acts for; the customer may
	// confirm the action.
	OnBehalfOf gatehouse.SubjectRef `json:"on_behalf_of,omitzero"`
	Tenant     string               `json:"tenant"`
	Tool       string               `json:"tool"`
	// Args are the tool's arguments; amounts are json.Number, decimal
	// strings or numbers, never parsed through float when they arrive as
	// JSON decoded with UseNumber.
	Args     map[string]any     `json:"args,omitempty"`
	Context  map[string]any     `json:"context,omitempty"`
	Resource gatehouse.Resource `json:"resource,omitzero"`
	// SubjectProperties and ActionProperties reach CEL conditions, as in
	// gatehouse.Request.
	SubjectProperties map[string]any `json:"subject_properties,omitempty"`
	ActionProperties  map[string]any `json:"action_properties,omitempty"`
}

// Result is the answer to an authorization or simulation.
type Result struct {
	Allowed bool             `json:"allowed"`
	Reason  gatehouse.Reason `json:"reason"`
	// RequiresConfirmation: the action is allowed once confirmed; ActionID
	// names the pending record to confirm.
	RequiresConfirmation bool                   `json:"requires_confirmation"`
	ActionID             string                 `json:"action_id,omitempty"`
	Status               gatehouse.ActionStatus `json:"status,omitempty"`
	ExpiresAt            time.Time              `json:"expires_at,omitzero"`
	Action               string                 `json:"action,omitempty"`
	Tool                 string                 `json:"tool,omitempty"`
	Tenant               string                 `json:"tenant,omitempty"`
	// Replayed: the idempotency key was used before; this is that result.
	Replayed bool `json:"replayed,omitempty"`
	// Limit names the limit a limit_exceeded denial is about, with figures.
	Limit *LimitExceeded `json:"limit,omitempty"`
	// Problem says, in English, what is wrong with an invalid_request;
	// ProblemCode is its stable code, the message "problem."+code of the
	// catalogs, and ProblemArgs fill that message's placeholders.
	Problem     string            `json:"problem,omitempty"`
	ProblemCode string            `json:"problem_code,omitempty"`
	ProblemArgs map[string]string `json:"-"`
	// Decision is steps 1–5's decision: for their denials it names the
	// denied subject, the missing permission or the plan needed.
	Decision gatehouse.Decision `json:"-"`
	// Policy is the effective action policy that decided steps 6–8.
	Policy *gatehouse.EffectiveAction `json:"policy,omitempty"`
	// Version is the policy version of the snapshot that decided.
	Version int64 `json:"version"`
}

// LimitExceeded names the limit an action exceeded and its figures.
type LimitExceeded = gatehouse.LimitExceeded

// Authorize runs the whole decision order for req and, when it allows,
// stores the action, reserving its capacity in the limits' windows in the
// same transaction that checks them. With an idempotency key, a request the
// subject made before under the key returns that request's result and
// reserves nothing; reusing a key for another request is invalid_request.
// Authorize never fails: an error is a deny with internal_error, logged.
func (g *Guard) Authorize(ctx context.Context, req *Request, idempotencyKey string) Result {
	return g.decide(ctx, req, idempotencyKey, true, nil)
}

// Simulate decides req as Authorize would now, counting the windows'
// current usage, without storing or reserving anything.
func (g *Guard) Simulate(ctx context.Context, req *Request) Result {
	return g.decide(ctx, req, "", false, nil)
}

// SimulateAll is Simulate for questions decided together (a batch, a
// search): usage reads the windows' usage once per tenant, action and
// window for all of them, as of one instant. A nil usage reads afresh.
func (g *Guard) SimulateAll(ctx context.Context, req *Request, usage *Usage) Result {
	return g.decide(ctx, req, "", false, usage)
}

// Usage remembers the windows' usage read for a batch of simulations, as of
// the instant of the first. It is not safe for concurrent use.
type Usage struct {
	now  time.Time
	seen map[usageKey][2]int64
}

type usageKey struct {
	tenant, action string
	window         time.Duration
}

// NewUsage returns an empty usage memory for one batch.
func (g *Guard) NewUsage() *Usage { return &Usage{now: g.now(), seen: map[usageKey][2]int64{}} }

// read returns the usage of tenant's action window, reading it once.
func (u *Usage) read(ctx context.Context, g *Guard, tenant, action string, window time.Duration) (count, total int64, err error) {
	k := usageKey{tenant, action, window}
	if v, ok := u.seen[k]; ok {
		return v[0], v[1], nil
	}
	count, total, err = g.store.ActionUsage(ctx, tenant, action, window, u.now)
	if err == nil {
		u.seen[k] = [2]int64{count, total}
	}
	return count, total, err
}

func (g *Guard) decide(ctx context.Context, req *Request, key string, reserve bool, usage *Usage) (res Result) {
	defer func() {
		if r := recover(); r != nil {
			g.cfg.Logger.Error("guard: decision panicked", "panic", r)
			res = Result{Reason: gatehouse.ReasonInternalError, Version: res.Version}
		}
	}()
	snap := g.snapshot()
	if snap == nil {
		return Result{Reason: gatehouse.ReasonInternalError}
	}
	if req == nil {
		return Result{Reason: gatehouse.ReasonInvalidRequest, Version: snap.Version(), Problem: "the request is missing", ProblemCode: "request_missing"}
	}
	now := g.now()
	if usage != nil {
		now = usage.now
	}
	ta, res, done := check(snap, req)
	if done {
		return res
	}
	// Only a stored record needs its arguments as JSON and the request's
	// fingerprint.
	var args []byte
	var fp string
	if reserve {
		var err error
		if args, err = json.Marshal(req.Args); err != nil {
			return res.invalid("args_not_json", nil, "the arguments cannot be encoded as JSON: %v", err)
		}
		if req.Args == nil {
			args = nil
		}
		fp = fingerprint(ta.Tool, strings.TrimSpace(req.Tenant), req.OnBehalfOf.String(), args)
	}
	if len(key) > maxKey {
		return res.invalid("idempotency_key_too_long", map[string]string{"Max": strconv.Itoa(maxKey)}, "the idempotency key is longer than %d bytes", maxKey)
	}
	// A replay answers as the first time, even if the policy changed since.
	if reserve && key != "" {
		prev, err := g.store.FindAction(ctx, req.Subject.String(), key, now)
		switch {
		case err == nil:
			return replayed(res, prev, fp)
		case !errors.Is(err, gatehouse.ErrNotFound):
			return g.internal(res, "find idempotency key", err)
		}
	}
	p, res := prepare(snap, req, ta, res, args, fp, now, g.cfg.ConfirmationTTL)
	if p == nil {
		return res
	}
	if p.exceeded != nil {
		res.Reason, res.Limit = gatehouse.ReasonLimitExceeded, p.exceeded
		return res
	}
	lim := p.policy.Exact
	if !reserve {
		if lim.Windowed() {
			if usage == nil {
				usage = &Usage{now: now, seen: map[usageKey][2]int64{}}
			}
			count, total, err := usage.read(ctx, g, p.record.Tenant, p.record.Action, lim.Window)
			if err != nil {
				return g.internal(res, "window usage", err)
			}
			if exceeded := windowExceeded(lim, p.record, count, total); exceeded != nil {
				res.Reason, res.Limit = gatehouse.ReasonLimitExceeded, exceeded
				return res
			}
		}
		return allowed(res, p.record)
	}
	rec := p.record
	rec.ID, rec.IdempotencyKey = newID(), key
	out, err := g.batch.reserve(ctx, reservation(lim, rec))
	switch {
	case err != nil:
		return g.internal(res, "reserve action", err)
	case out.Replayed:
		return replayed(res, out.Record, rec.Fingerprint)
	case out.Exceeded != "":
		res.Reason, res.Limit = gatehouse.ReasonLimitExceeded, windowExceeded(lim, rec, out.Count, out.Total)
		return res
	}
	return allowed(res, out.Record)
}

// maxKey bounds an idempotency key.
const maxKey = 256

func (g *Guard) now() time.Time { return g.cfg.Clock.Now().UTC().Truncate(time.Microsecond) }

func (g *Guard) internal(res Result, op string, err error) Result {
	g.cfg.Logger.Error("guard: "+op, "err", err)
	return Result{Reason: gatehouse.ReasonInternalError, Version: res.Version, Tool: res.Tool, Tenant: res.Tenant, Action: res.Action}
}

// invalid makes r an invalid_request with the problem code and its
// message's values, and the problem in English.
func (r Result) invalid(code string, values map[string]string, format string, args ...any) Result {
	r.Reason, r.Problem = gatehouse.ReasonInvalidRequest, fmt.Sprintf(format, args...)
	r.ProblemCode, r.ProblemArgs = code, values
	r.Allowed, r.RequiresConfirmation = false, false
	return r
}

// allowed reports the stored (or, simulating, the would-be) record.
func allowed(res Result, rec gatehouse.ActionRecord) Result {
	res.Allowed, res.Reason = true, rec.Reason
	res.RequiresConfirmation, res.ActionID = rec.RequiresConfirmation, rec.ID
	res.Status, res.ExpiresAt = rec.Status, rec.ExpiresAt
	return res
}

// replayed reports the result stored under an idempotency key, if it was
// stored for the same request.
func replayed(res Result, prev gatehouse.ActionRecord, fingerprint string) Result {
	if prev.Fingerprint != fingerprint {
		return res.invalid("idempotency_key_reused", map[string]string{"ActionID": prev.ID}, "the idempotency key was used for another request (action %s)", prev.ID)
	}
	res = allowed(res, prev)
	res.Replayed, res.Version = true, prev.PolicyVersion
	return res
}

// prepared is a request that passed every step that needs no store: the
// record to store, its policy, and a per-action limit it exceeds, if any.
type prepared struct {
	policy   gatehouse.EffectiveAction
	record   gatehouse.ActionRecord
	exceeded *LimitExceeded
}

// check runs steps 1–5 and finds the tool's action. It reports done with
// the final result when that decides: a denial, or an allow for a tool
// that performs no action.
func check(snap *engine.Snapshot, req *Request) (engine.ToolAction, Result, bool) {
	res := Result{Tool: req.Tool, Tenant: req.Tenant, Version: snap.Version()}
	ereq := gatehouse.Request{Subject: req.Subject, OnBehalfOf: req.OnBehalfOf, Tenant: req.Tenant,
		Context: req.Context, Resource: req.Resource,
		SubjectProperties: req.SubjectProperties, ActionProperties: req.ActionProperties}
	d := snap.CheckTool(&ereq, req.Tool)
	res.Decision, res.Reason = d, d.Reason
	if !d.Allowed {
		return engine.ToolAction{}, res, true
	}
	ta, ok := snap.ToolAction(req.Tool)
	if !ok {
		return ta, Result{Reason: gatehouse.ReasonInternalError, Version: res.Version}, true
	}
	if ta.Action == "" {
		res.Allowed = true
		return ta, res, true
	}
	res.Action = ta.Action
	if strings.TrimSpace(req.Tenant) == "" {
		// The action's policy is the tenant's: without one there is none.
		res.Reason = gatehouse.ReasonTenantRequired
		return ta, res, true
	}
	return ta, res, false
}

// prepare runs step 6 and the per-action limits of step 7 for a request
// that passed check. It returns nil and the final result when the request
// is decided without the store: disabled or invalid.
func prepare(snap *engine.Snapshot, req *Request, ta engine.ToolAction, res Result, args []byte, fp string, now time.Time, ttl time.Duration) (*prepared, Result) {
	pol, err := snap.ActionPolicy(req.Tenant, ta.Action)
	if err != nil {
		return nil, Result{Reason: gatehouse.ReasonInternalError, Version: res.Version}
	}
	res.Policy = &pol
	if !pol.Enabled {
		res.Reason = gatehouse.ReasonActionDisabled
		return nil, res
	}
	rec := gatehouse.ActionRecord{
		Tenant: pol.Tenant, Action: ta.Action, Tool: ta.Tool,
		Subject: req.Subject.String(), OnBehalfOf: req.OnBehalfOf.String(),
		Fingerprint: fp, Args: args,
		RequiresConfirmation: pol.RequiresConfirmation, Reason: res.Decision.Reason,
		PolicyVersion: snap.Version(), Status: gatehouse.ActionConfirmed,
		CreatedAt: now, UpdatedAt: now, UpdatedBy: req.Subject.String(),
	}
	if pol.RequiresConfirmation {
		rec.Status, rec.Reason = gatehouse.ActionPending, gatehouse.ReasonConfirmationRequired
		rec.ExpiresAt = now.Add(ttl)
	}
	p := &prepared{policy: pol, record: rec}
	if pr := p.figures(ta, req.Args); pr.code != "" {
		return nil, res.invalid(pr.code, pr.values, "%s", pr.text)
	}
	return p, res
}

// figures reads the action's amount and percentage from args into the
// record and checks the per-action limits. It returns what is wrong with
// the arguments, or a zero argProblem.
func (p *prepared) figures(ta engine.ToolAction, args map[string]any) argProblem {
	lim, rec := p.policy.Exact, &p.record
	currency := lim.Currency
	if ta.Currency != "" {
		v, ok := lookup(args, ta.Currency)
		switch s, isString := v.(string); {
		case ok && (!isString || strings.TrimSpace(s) == ""):
			return argProblem{"currency_not_code", map[string]string{"Field": ta.Currency}, fmt.Sprintf("%s must be a currency code", ta.Currency)}
		case ok && currency != "" && strings.TrimSpace(s) != currency:
			return argProblem{"currency_mismatch", map[string]string{"Field": ta.Currency, "Value": s, "Currency": currency},
				fmt.Sprintf("%s is %q, but the limits are in %s", ta.Currency, s, currency)}
		case ok:
			currency = strings.TrimSpace(s)
		case lim.NeedsAmount():
			return argProblem{"currency_missing", map[string]string{"Field": ta.Currency}, fmt.Sprintf("%s is missing; the action has an amount limit", ta.Currency)}
		}
	}
	if v, ok := lookup(args, ta.Amount); ok && ta.Amount != "" {
		if currency == "" {
			return argProblem{"amount_without_currency", map[string]string{"Field": ta.Amount},
				fmt.Sprintf("%s has no currency: the tool maps none and the action's limits name none", ta.Amount)}
		}
		text, err := money.Text(v)
		if err == nil {
			rec.Amount, err = money.ParseAmount(text, currency)
		}
		if err != nil {
			return argProblem{"bad_amount", map[string]string{"Field": ta.Amount, "Detail": problem(err)}, fmt.Sprintf("%s: %s", ta.Amount, problem(err))}
		}
		rec.Currency = currency
	} else if lim.NeedsAmount() {
		if ta.Amount == "" {
			return argProblem{"amount_unmapped", map[string]string{"Tool": ta.Tool, "Action": ta.Action},
				fmt.Sprintf("tool %s maps no amount, but action %s has an amount limit", ta.Tool, ta.Action)}
		}
		return argProblem{"amount_missing", map[string]string{"Field": ta.Amount}, fmt.Sprintf("%s is missing; the action has an amount limit", ta.Amount)}
	}
	if v, ok := lookup(args, ta.Percentage); ok && ta.Percentage != "" {
		text, err := money.Text(v)
		if err == nil {
			rec.Percentage, err = money.ParsePercent(text)
		}
		if err != nil {
			return argProblem{"bad_percentage", map[string]string{"Field": ta.Percentage, "Detail": problem(err)}, fmt.Sprintf("%s: %s", ta.Percentage, problem(err))}
		}
	} else if lim.MaxPercentage > 0 {
		if ta.Percentage == "" {
			return argProblem{"percentage_unmapped", map[string]string{"Tool": ta.Tool, "Action": ta.Action},
				fmt.Sprintf("tool %s maps no percentage, but action %s has a percentage limit", ta.Tool, ta.Action)}
		}
		return argProblem{"percentage_missing", map[string]string{"Field": ta.Percentage}, fmt.Sprintf("%s is missing; the action has a percentage limit", ta.Percentage)}
	}
	switch {
	case lim.MaxAmount > 0 && rec.Amount > lim.MaxAmount:
		p.exceeded = &LimitExceeded{Limit: gatehouse.LimitMaxAmount, Currency: lim.Currency,
			Max: money.FormatAmount(lim.MaxAmount, lim.Currency), Requested: money.FormatAmount(rec.Amount, lim.Currency)}
	case lim.MaxPercentage > 0 && rec.Percentage > lim.MaxPercentage:
		p.exceeded = &LimitExceeded{Limit: gatehouse.LimitMaxPercentage,
			Max: money.FormatPercent(lim.MaxPercentage), Requested: money.FormatPercent(rec.Percentage)}
	}
	return argProblem{}
}

// argProblem is what is wrong with an action's arguments: its code (the
// catalogs' "problem."+code), the message's values and the English text.
type argProblem struct {
	code   string
	values map[string]string
	text   string
}

// problem is err's message without the sentinel's.
func problem(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+gatehouse.ErrInvalid.Error())
}

// windowExceeded returns the window limit that rec exceeds given the
// window's count and total before it, or nil.
func windowExceeded(lim gatehouse.Limits, rec gatehouse.ActionRecord, count, total int64) *LimitExceeded {
	switch reservation(lim, rec).Exceeded(count, total) {
	case gatehouse.LimitMaxCount:
		return &LimitExceeded{Limit: gatehouse.LimitMaxCount, Max: fmt.Sprint(lim.MaxCount), Requested: "1",
			Used: fmt.Sprint(count), Window: lim.Window.String()}
	case gatehouse.LimitMaxTotalAmount:
		return &LimitExceeded{Limit: gatehouse.LimitMaxTotalAmount, Currency: lim.Currency, Window: lim.Window.String(),
			Max: money.FormatAmount(lim.MaxTotalAmount, lim.Currency), Requested: money.FormatAmount(rec.Amount, lim.Currency),
			Used: money.FormatAmount(total, lim.Currency)}
	}
	return nil
}

// reservation asks to store rec within lim's windows.
func reservation(lim gatehouse.Limits, rec gatehouse.ActionRecord) gatehouse.Reservation {
	return gatehouse.Reservation{Record: rec, Window: lim.Window, MaxCount: lim.MaxCount, MaxTotalAmount: lim.MaxTotalAmount}
}

// lookup finds the value at path ("args.refund.amount") in args.
func lookup(args map[string]any, path string) (any, bool) {
	rest, ok := strings.CutPrefix(path, "args.")
	if !ok {
		return nil, false
	}
	var cur any = args
	for _, key := range strings.Split(rest, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// fingerprint identifies a request, so a reused idempotency key is
// recognized: the tool, tenant, customer and arguments.
func fingerprint(tool, tenant, onBehalfOf string, args []byte) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(tool), []byte(tenant), []byte(onBehalfOf), args} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newID returns a time-ordered UUID (version 7), so that ids sort roughly
// by creation; it falls back to a random one if the clock source fails.
func newID() string {
	if id, err := uuid.NewV7(); err == nil {
		return id.String()
	}
	return uuid.NewString()
}
