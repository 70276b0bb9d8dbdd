package guard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
	"github.com/gatehouse/gatehouse/sqlite"
)

const testPolicy = `
settings: {access_permission: chat}
permissions: [{name: chat}, {name: refund}, {name: discount}, {name: lookup}, {name: approve}]
roles:
  - {name: shopper, permissions: [chat, refund, discount, lookup]}
  - {name: approver, permissions: [approve]}
tenants:
  - id: acme
    actions:
      process_refund:
        enabled: true
        limits: {currency: EUR, max_amount: 100, window: 1h, max_count: 3, max_total_amount: 250}
      apply_discount: {enabled: true, limits: {max_percentage: 15}}
  - id: acme-berlin
    parent: acme
    actions:
      process_refund: {requires_confirmation: false}
  - {id: globex}
users:
  - {email: root@example.com, superuser: true}
  - {email: ana@example.com, tenants: [acme, acme-berlin, globex], roles: [{role: shopper}]}
  - {email: olga@example.com, tenants: [acme], roles: [{role: approver, tenant: acme}]}
  - {email: eve@example.com, tenants: [acme, acme-berlin]}
agents:
  - {id: bot, tenants: [acme, acme-berlin, globex], roles: [{role: shopper}]}
tools:
  - {name: refund, permission: refund, action: process_refund, amount: args.refund.amount, currency: args.refund.currency}
  - {name: discount, permission: discount, action: apply_discount, percentage: args.percent}
  - {name: lookup, permission: lookup}
  - {name: cancel, permission: refund, action: cancel_order}
actions:
  - {name: process_refund, default: {enabled: false, requires_confirmation: true}, approver_permission: approve}
  - {name: apply_discount, default: {enabled: false, requires_confirmation: true}}
  - {name: cancel_order, default: {enabled: false, requires_confirmation: true}}
`

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	g     *guard.Guard
	store *sqlite.DB
	snap  atomic.Pointer[engine.Snapshot]
	clock *clock
}

func compile(t testing.TB, src string, version int64) *engine.Snapshot {
	t.Helper()
	doc, err := policy.Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := engine.Compile(doc.Policy, version)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, clock: &clock{t: time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)}}
	f.snap.Store(compile(t, testPolicy, 7))
	f.g, err = guard.New(store, f.snap.Load, guard.Config{Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	bot = gatehouse.AgentRef("bot")
	ana = gatehouse.User("ana@example.com")
)

// refund is the bot refunding amount EUR to ana in tenant.
func refund(tenant string, amount any) *guard.Request {
	return &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: tenant, Tool: "refund",
		Args: map[string]any{"refund": map[string]any{"amount": amount, "currency": "EUR"}}}
}

func (f *fixture) authorize(t *testing.T, req *guard.Request, key string) guard.Result {
	t.Helper()
	return f.g.Authorize(t.Context(), req, key)
}

func (f *fixture) records(t *testing.T) []gatehouse.ActionRecord {
	t.Helper()
	recs, err := f.g.List(t.Context(), gatehouse.ActionFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// The decision order of DESIGN.md, steps 1–8, one row per rule.
func TestAuthorizeDecisionOrder(t *testing.T) {
	f := newFixture(t)
	disc := func(p any) *guard.Request {
		return &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "discount", Args: map[string]any{"percent": p}}
	}
	tests := []struct {
		name    string
		req     *guard.Request
		allowed bool
		reason  gatehouse.Reason
		limit   string
		status  gatehouse.ActionStatus
	}{
		{"unknown subject", &guard.Request{Subject: gatehouse.AgentRef("ghost"), Tenant: "acme", Tool: "refund"}, false, gatehouse.ReasonUnknownSubject, "", ""},
		{"unknown tool", &guard.Request{Subject: bot, Tenant: "acme", Tool: "launch"}, false, gatehouse.ReasonUnknownPermission, "", ""},
		{"tenant not visible", &guard.Request{Subject: gatehouse.User("olga@example.com"), Tenant: "globex", Tool: "refund"}, false, gatehouse.ReasonTenantNotVisible, "", ""},
		{"permission missing", &guard.Request{Subject: gatehouse.User("eve@example.com"), Tenant: "acme", Tool: "refund"}, false, gatehouse.ReasonPermissionMissing, "", ""},
		{"superuser, action disabled", &guard.Request{Subject: gatehouse.User("root@example.com"), Tenant: "globex", Tool: "refund",
			Args: map[string]any{"refund": map[string]any{"amount": "1"}}}, false, gatehouse.ReasonActionDisabled, "", ""},
		{"superuser, over the limit", &guard.Request{Subject: gatehouse.User("root@example.com"), Tenant: "acme", Tool: "refund",
			Args: map[string]any{"refund": map[string]any{"amount": "100.01", "currency": "EUR"}}}, false, gatehouse.ReasonLimitExceeded, gatehouse.LimitMaxAmount, ""},
		{"default disabled", refund("globex", "5"), false, gatehouse.ReasonActionDisabled, "", ""},
		{"no action", &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "lookup"}, true, gatehouse.ReasonGranted, "", ""},
		{"no tenant", &guard.Request{Subject: bot, OnBehalfOf: ana, Tool: "refund"}, false, gatehouse.ReasonTenantRequired, "", ""},
		{"missing amount", &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "refund",
			Args: map[string]any{"refund": map[string]any{"currency": "EUR"}}}, false, gatehouse.ReasonInvalidRequest, "", ""},
		{"no args", &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "refund"}, false, gatehouse.ReasonInvalidRequest, "", ""},
		{"null amount", refund("acme", nil), false, gatehouse.ReasonInvalidRequest, "", ""},
		{"negative", refund("acme", "-5"), false, gatehouse.ReasonInvalidRequest, "", ""},
		{"negative number", refund("acme", json.Number("-0.01")), false, gatehouse.ReasonInvalidRequest, "", ""},
		{"NaN", refund("acme", "NaN"), false, gatehouse.ReasonInvalidRequest, "", ""},
		{"not numeric", refund("acme", "ten"), false, gatehouse.ReasonInvalidRequest, "", ""},
		{"boolean", refund("acme", true), false, gatehouse.ReasonInvalidRequest, "", ""},
		{"sub-cent", refund("acme", "9.999"), false, gatehouse.ReasonInvalidRequest, "", ""},
		{"huge", refund("acme", "1e40"), false, gatehouse.ReasonInvalidRequest, "", ""},
		{"other currency", &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "refund",
			Args: map[string]any{"refund": map[string]any{"amount": "5", "currency": "USD"}}}, false, gatehouse.ReasonInvalidRequest, "", ""},
		{"just over max_amount", refund("acme", "100.01"), false, gatehouse.ReasonLimitExceeded, gatehouse.LimitMaxAmount, ""},
		{"at max_amount", refund("acme", json.Number("100.00")), true, gatehouse.ReasonConfirmationRequired, "", gatehouse.ActionPending},
		{"under max_amount, no confirmation", refund("acme-berlin", 99.99), true, gatehouse.ReasonGranted, "", gatehouse.ActionConfirmed},
		{"percent over", disc("15.01"), false, gatehouse.ReasonLimitExceeded, gatehouse.LimitMaxPercentage, ""},
		{"percent at max", disc(json.Number("15")), true, gatehouse.ReasonConfirmationRequired, "", gatehouse.ActionPending},
		{"percent over 100", disc("150"), false, gatehouse.ReasonInvalidRequest, "", ""},
		{"percent missing", &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "discount"}, false, gatehouse.ReasonInvalidRequest, "", ""},
	}
	for _, tt := range tests {
		res := f.authorize(t, tt.req, "")
		if res.Allowed != tt.allowed || res.Reason != tt.reason || res.Status != tt.status {
			t.Errorf("%s: Authorize = allowed %v reason %s status %q (%s), want %v %s %q",
				tt.name, res.Allowed, res.Reason, res.Status, res.Problem, tt.allowed, tt.reason, tt.status)
		}
		if (res.Limit == nil) != (tt.limit == "") || res.Limit != nil && res.Limit.Limit != tt.limit {
			t.Errorf("%s: limit %+v, want %q", tt.name, res.Limit, tt.limit)
		}
		if res.Version != 7 {
			t.Errorf("%s: version %d, want 7", tt.name, res.Version)
		}
		if res.Reason == gatehouse.ReasonInvalidRequest && (res.Problem == "" || res.ProblemCode == "") {
			t.Errorf("%s: invalid_request without a problem and its code: %q %q", tt.name, res.Problem, res.ProblemCode)
		}
		stored := res.ActionID != ""
		if stored != (tt.status != "") {
			t.Errorf("%s: action id %q, want one only when stored", tt.name, res.ActionID)
		}
	}
	if n := len(f.records(t)); n != 3 {
		t.Errorf("%d records stored, want 3 (one per allowed action)", n)
	}
}

// limit_exceeded names the limit with its figures.
func TestLimitFigures(t *testing.T) {
	f := newFixture(t)
	res := f.authorize(t, refund("acme", "150"), "")
	want := guard.LimitExceeded{Limit: "max_amount", Max: "100.00", Requested: "150.00", Currency: "EUR"}
	if res.Limit == nil || *res.Limit != want {
		t.Errorf("over max_amount: limit %+v, want %+v", res.Limit, want)
	}
	for range 2 {
		if res := f.authorize(t, refund("acme", "100"), ""); !res.Allowed {
			t.Fatalf("refund of 100: %+v", res)
		}
	}
	res = f.authorize(t, refund("acme", "50.01"), "")
	want = guard.LimitExceeded{Limit: "max_total_amount", Max: "250.00", Requested: "50.01", Used: "200.00", Window: "1h0m0s", Currency: "EUR"}
	if res.Reason != gatehouse.ReasonLimitExceeded || res.Limit == nil || *res.Limit != want {
		t.Errorf("over max_total_amount: %s %+v, want %+v", res.Reason, res.Limit, want)
	}
	if res := f.authorize(t, refund("acme", "50.00"), ""); !res.Allowed {
		t.Errorf("exactly up to max_total_amount: %+v", res)
	}
	res = f.authorize(t, refund("acme", "0.01"), "")
	want = guard.LimitExceeded{Limit: "max_count", Max: "3", Requested: "1", Used: "3", Window: "1h0m0s"}
	if res.Limit == nil || *res.Limit != want {
		t.Errorf("over max_count: %+v, want %+v", res.Limit, want)
	}
}

// The window rolls: an hour after the first refunds, they no longer count.
// acme-berlin needs no confirmation, so its refunds hold their capacity
// (pending ones would release it when they expire).
func TestWindowRolls(t *testing.T) {
	f := newFixture(t)
	for i := range 3 {
		if res := f.authorize(t, refund("acme-berlin", "1"), ""); !res.Allowed {
			t.Fatalf("refund %d: %+v", i, res)
		}
	}
	if res := f.authorize(t, refund("acme-berlin", "1"), ""); res.Reason != gatehouse.ReasonLimitExceeded {
		t.Fatalf("fourth refund in the hour: %+v", res)
	}
	f.clock.Advance(time.Hour - time.Microsecond)
	if res := f.authorize(t, refund("acme-berlin", "1"), ""); res.Reason != gatehouse.ReasonLimitExceeded {
		t.Errorf("a microsecond before the window passes: %+v", res)
	}
	f.clock.Advance(time.Microsecond)
	if res := f.authorize(t, refund("acme-berlin", "1"), ""); !res.Allowed {
		t.Errorf("once the window passed: %+v", res)
	}
	// Its parent counts its own window.
	if res := f.authorize(t, refund("acme", "1"), ""); !res.Allowed {
		t.Errorf("refund in acme: %+v", res)
	}
	// Unconfirmed refunds release their capacity when they expire.
	for range 2 {
		f.authorize(t, refund("acme", "1"), "")
	}
	if res := f.authorize(t, refund("acme", "1"), ""); res.Reason != gatehouse.ReasonLimitExceeded {
		t.Errorf("fourth pending refund: %+v", res)
	}
	f.clock.Advance(guard.DefaultConfirmationTTL)
	if res := f.authorize(t, refund("acme", "1"), ""); !res.Allowed {
		t.Errorf("after the pending refunds expired: %+v", res)
	}
}

func TestIdempotency(t *testing.T) {
	f := newFixture(t)
	first := f.authorize(t, refund("acme", "20"), "conv-1/refund-1")
	again := f.authorize(t, refund("acme", "20"), "conv-1/refund-1")
	if !again.Replayed || again.ActionID != first.ActionID || again.Reason != first.Reason || !again.Allowed {
		t.Errorf("replay = %+v, want the first result %+v", again, first)
	}
	if n := len(f.records(t)); n != 1 {
		t.Errorf("%d records after a replay, want 1", n)
	}
	other := f.authorize(t, refund("acme", "30"), "conv-1/refund-1")
	if other.Reason != gatehouse.ReasonInvalidRequest || other.Allowed {
		t.Errorf("key reused for another amount = %+v, want invalid_request", other)
	}
	// The policy changes: the replay still answers as the first time.
	f.snap.Store(compile(t, replaceOnce(t, testPolicy, "process_refund:\n        enabled: true", "process_refund:\n        enabled: false"), 8))
	if res := f.authorize(t, refund("acme", "20"), "conv-1/refund-1"); !res.Allowed || res.ActionID != first.ActionID || res.Version != 7 {
		t.Errorf("replay after the action was disabled = %+v, want the first result at version 7", res)
	}
	if res := f.authorize(t, refund("acme", "20"), "conv-1/refund-2"); res.Reason != gatehouse.ReasonActionDisabled {
		t.Errorf("a new key after the action was disabled = %+v, want action_disabled", res)
	}
	if res := f.authorize(t, refund("acme", "20"), strings.Repeat("k", 300)); res.Reason != gatehouse.ReasonInvalidRequest {
		t.Errorf("a 300-byte key = %+v, want invalid_request", res)
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("%q is not in the policy once", old)
	}
	return strings.Replace(s, old, new, 1)
}

// 200 concurrent authorizations for 3 slots: exactly 3 are allowed; and
// 50 concurrent replays of one key store one record.
func TestConcurrentAuthorize(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	var allowed, limited atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := f.g.Authorize(context.Background(), refund("acme", "1"), "")
			switch {
			case res.Allowed:
				allowed.Add(1)
			case res.Reason == gatehouse.ReasonLimitExceeded:
				limited.Add(1)
			default:
				t.Errorf("concurrent Authorize = %+v", res)
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 3 || limited.Load() != 197 {
		t.Errorf("200 concurrent refunds against max_count 3: %d allowed, %d limited", allowed.Load(), limited.Load())
	}
	f.clock.Advance(2 * time.Hour)
	ids := make(chan string, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := f.g.Authorize(context.Background(), refund("acme", "2"), "same")
			if !res.Allowed {
				t.Errorf("replayed Authorize = %+v", res)
			}
			ids <- res.ActionID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 || len(f.records(t)) != 4 {
		t.Errorf("50 concurrent uses of one key gave %d ids and %d records, want 1 and 4", len(seen), len(f.records(t)))
	}
}

// failing wraps a store whose reservations fail.
type failing struct {
	gatehouse.ActionStore
	err error
}

func (s failing) ReserveActions(context.Context, []gatehouse.Reservation) ([]gatehouse.ReserveResult, error) {
	return nil, s.err
}

func (s failing) FindAction(context.Context, string, string, time.Time) (gatehouse.ActionRecord, error) {
	return gatehouse.ActionRecord{}, s.err
}

func (s failing) ActionUsage(context.Context, string, string, time.Duration, time.Time) (int64, int64, error) {
	return 0, 0, s.err
}

// Any failure is a deny with internal_error, never an allow.
func TestFailClosed(t *testing.T) {
	f := newFixture(t)
	broken, err := guard.New(failing{f.store, fmt.Errorf("disk on fire: %w", gatehouse.ErrUnavailable)}, f.snap.Load, guard.Config{Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "k"} {
		if res := broken.Authorize(t.Context(), refund("acme", "5"), key); res.Allowed || res.Reason != gatehouse.ReasonInternalError {
			t.Errorf("Authorize on a failing store (key %q) = %+v, want internal_error", key, res)
		}
	}
	if res := broken.Simulate(t.Context(), refund("acme", "5")); res.Allowed || res.Reason != gatehouse.ReasonInternalError {
		t.Errorf("Simulate on a failing store = %+v, want internal_error", res)
	}
	if n := len(f.records(t)); n != 0 {
		t.Errorf("%d records left behind by failed reservations", n)
	}
	none, err := guard.New(f.store, func() *engine.Snapshot { return nil }, guard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res := none.Authorize(t.Context(), refund("acme", "5"), ""); res.Allowed || res.Reason != gatehouse.ReasonInternalError {
		t.Errorf("Authorize without a snapshot = %+v, want internal_error", res)
	}
	if res := f.g.Authorize(t.Context(), nil, ""); res.Allowed || res.Reason != gatehouse.ReasonInvalidRequest {
		t.Errorf("Authorize(nil) = %+v, want invalid_request", res)
	}
	// A store closed under the guard.
	f.store.Close()
	if res := f.authorize(t, refund("acme", "5"), ""); res.Allowed || res.Reason != gatehouse.ReasonInternalError {
		t.Errorf("Authorize on a closed store = %+v, want internal_error", res)
	}
	if _, err := guard.New(f.store, f.snap.Load, guard.Config{ConfirmationTTL: -time.Second}); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("New with a negative TTL = %v, want ErrInvalid", err)
	}
}

func TestLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	olga := gatehouse.User("olga@example.com")
	eve := gatehouse.User("eve@example.com")
	pending := func() string {
		res := f.authorize(t, refund("acme", "10"), "")
		if res.Status != gatehouse.ActionPending || !res.RequiresConfirmation {
			t.Fatalf("refund in acme: %+v, want pending", res)
		}
		if want := f.clock.Now().Add(guard.DefaultConfirmationTTL); !res.ExpiresAt.Equal(want) {
			t.Errorf("expires at %s, want %s", res.ExpiresAt, want)
		}
		return res.ActionID
	}
	id := pending()
	if _, err := f.g.Executed(ctx, id, bot); !errors.Is(err, gatehouse.ErrIllegalTransition) {
		t.Errorf("execute before confirm = %v, want ErrIllegalTransition", err)
	}
	for _, who := range []gatehouse.SubjectRef{eve, bot, {}} {
		if _, err := f.g.Confirm(ctx, id, who); !errors.Is(err, gatehouse.ErrNotApprover) {
			t.Errorf("confirm by %q = %v, want ErrNotApprover", who, err)
		}
	}
	rec, err := f.g.Confirm(ctx, id, gatehouse.User("ANA@example.com"))
	if err != nil || rec.Status != gatehouse.ActionConfirmed || rec.ConfirmedBy != "user:ana@example.com" || rec.ConfirmedAt.IsZero() {
		t.Fatalf("confirm by the customer = %+v, %v", rec, err)
	}
	if _, err := f.g.Confirm(ctx, id, ana); !errors.Is(err, gatehouse.ErrIllegalTransition) {
		t.Errorf("confirm twice = %v, want ErrIllegalTransition", err)
	}
	if _, err := f.g.Executed(ctx, id, ana); !errors.Is(err, gatehouse.ErrNotApprover) {
		t.Errorf("executed reported by the customer = %v, want ErrNotApprover", err)
	}
	if rec, err = f.g.Executed(ctx, id, bot); err != nil || rec.Status != gatehouse.ActionExecuted || rec.ExecutedAt.IsZero() {
		t.Errorf("executed by the agent = %+v, %v", rec, err)
	}

	// An approver confirms in the customer's stead; the agent reports a failure.
	id = pending()
	if _, err := f.g.Confirm(ctx, id, olga); err != nil {
		t.Errorf("confirm by an approver = %v", err)
	}
	if _, err := f.g.Failed(ctx, id, bot, " "); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("failed without a message = %v, want ErrInvalid", err)
	}
	if rec, err := f.g.Failed(ctx, id, bot, "payment provider declined"); err != nil || rec.ErrorMessage != "payment provider declined" {
		t.Errorf("failed = %+v, %v", rec, err)
	}

	// Confirming after the expiry is refused, and the action is expired.
	id = pending()
	f.clock.Advance(guard.DefaultConfirmationTTL)
	rec, err = f.g.Confirm(ctx, id, ana)
	if !errors.Is(err, gatehouse.ErrActionExpired) || rec.Status != gatehouse.ActionExpired {
		t.Errorf("confirm after expiry = %s, %v; want expired, ErrActionExpired", rec.Status, err)
	}
	if got, _ := f.g.Get(ctx, id); got.Status != gatehouse.ActionExpired || got.UpdatedBy != "system" {
		t.Errorf("stored after a late confirm: %+v", got)
	}

	// Cancelling releases the capacity: executed (1), failed, expired,
	// cancelled leave one slot used of three.
	id = pending()
	if _, err := f.g.Cancel(ctx, id, eve); !errors.Is(err, gatehouse.ErrNotApprover) {
		t.Errorf("cancel by a stranger = %v, want ErrNotApprover", err)
	}
	if _, err := f.g.Cancel(ctx, id, ana); err != nil {
		t.Errorf("cancel by the customer = %v", err)
	}
	for i := range 2 {
		if res := f.authorize(t, refund("acme", "1"), ""); !res.Allowed {
			t.Errorf("refund %d after releases: %+v", i, res)
		}
	}
	if res := f.authorize(t, refund("acme", "1"), ""); res.Reason != gatehouse.ReasonLimitExceeded {
		t.Errorf("a fourth holding refund: %+v, want limit_exceeded", res)
	}
	if _, err := f.g.Confirm(ctx, "no-such-id", ana); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("confirm an unknown action = %v, want ErrNotFound", err)
	}
	if _, err := f.g.List(ctx, gatehouse.ActionFilter{Status: "approved"}); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("List(status approved) = %v, want ErrInvalid", err)
	}
}

// Simulate decides like Authorize, including the windows, and stores nothing.
func TestSimulate(t *testing.T) {
	f := newFixture(t)
	if res := f.g.Simulate(t.Context(), refund("acme", "10")); !res.Allowed || res.ActionID != "" || res.Status != gatehouse.ActionPending {
		t.Errorf("Simulate = %+v, want allowed pending without an id", res)
	}
	if n := len(f.records(t)); n != 0 {
		t.Errorf("Simulate stored %d records", n)
	}
	for range 3 {
		f.authorize(t, refund("acme", "1"), "")
	}
	if res := f.g.Simulate(t.Context(), refund("acme", "1")); res.Reason != gatehouse.ReasonLimitExceeded || res.Limit.Limit != gatehouse.LimitMaxCount {
		t.Errorf("Simulate with a full window = %+v, want max_count exceeded", res)
	}
	if res := f.g.Simulate(t.Context(), refund("acme", "500")); res.Limit == nil || res.Limit.Limit != gatehouse.LimitMaxAmount {
		t.Errorf("Simulate over max_amount = %+v", res)
	}
}

// Replaying recorded actions against a stricter policy counts what it
// would have denied, with examples, and reserves nothing.
func TestReplay(t *testing.T) {
	f := newFixture(t)
	for _, amount := range []string{"10", "60", "90"} {
		if res := f.authorize(t, refund("acme", amount), ""); !res.Allowed {
			t.Fatalf("refund %s: %+v", amount, res)
		}
	}
	f.authorize(t, refund("acme-berlin", "5"), "")
	stricter := replaceOnce(t, testPolicy, "max_amount: 100, window: 1h, max_count: 3, max_total_amount: 250",
		"max_amount: 50, window: 1h, max_count: 3, max_total_amount: 250")
	stricter = replaceOnce(t, stricter, "process_refund: {requires_confirmation: false}", "process_refund: {enabled: false}")
	since := f.clock.Now().Add(-24 * time.Hour)
	rep, err := f.g.Replay(t.Context(), compile(t, stricter, 8), since, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Actions != 4 || rep.StillAllowed != 1 || rep.AllowedToDenied != 3 ||
		rep.ByReason[gatehouse.ReasonLimitExceeded] != 2 || rep.ByReason[gatehouse.ReasonActionDisabled] != 1 {
		t.Errorf("Replay = %+v, want 4 replayed, 1 still allowed, 2 over the limit, 1 disabled", rep)
	}
	if len(rep.Examples) != 1 || rep.Examples[0].Limit == nil || rep.Examples[0].Limit.Requested != "60.00" {
		t.Errorf("Replay examples = %+v, want the 60.00 refund", rep.Examples)
	}
	same, err := f.g.Replay(t.Context(), f.snap.Load(), since, 5)
	if err != nil || same.AllowedToDenied != 0 || same.StillAllowed != 4 {
		t.Errorf("Replay against the current policy = %+v, %v; want nothing denied", same, err)
	}
	if n := len(f.records(t)); n != 4 {
		t.Errorf("Replay changed the records: %d", n)
	}
	if _, err := f.g.Replay(t.Context(), nil, since, 1); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Replay(nil) = %v, want ErrInvalid", err)
	}
}

// Every denial of steps 6–8 reads as a sentence naming what it is about,
// in every language.
func TestMessages(t *testing.T) {
	f := newFixture(t)
	c, err := locale.New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		req  *guard.Request
		want []string
	}{
		{refund("globex", "1"), []string{"process_refund", "globex"}},
		{refund("acme", "150"), []string{"max_amount", "150.00 EUR", "100.00 EUR"}},
		{&guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "discount", Args: map[string]any{"percent": "20"}},
			[]string{"max_percentage", "20", "15"}},
	}
	for _, tt := range tests {
		res := f.g.Simulate(t.Context(), tt.req)
		for _, lang := range locale.Languages {
			msg := guard.Message(c, lang, tt.req, res)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Message(%s, %s) = %q, want it to name %q", lang, res.Reason, msg, w)
				}
			}
		}
	}
	for range 3 {
		f.authorize(t, refund("acme-berlin", "1"), "")
	}
	res := f.g.Simulate(t.Context(), refund("acme-berlin", "1"))
	if msg := guard.Message(c, "de", refund("acme-berlin", "1"), res); !strings.Contains(msg, "max_count: 3 von 3") {
		t.Errorf("Message(de, max_count) = %q", msg)
	}
}

// Two guards, each on its own connection pool to one PostgreSQL database
// and each group-committing its callers' reservations, race 1,000
// refunds for the 3 slots of acme's window: exactly 3 are allowed.
func TestAuthorizeAcrossInstances(t *testing.T) {
	dsn := pgtest.NewSchema(t, pgtest.DSN(t))
	snap := compile(t, testPolicy, 7)
	clk := &clock{t: time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)}
	var guards []*guard.Guard
	for range 2 {
		store, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		g, err := guard.New(store, func() *engine.Snapshot { return snap }, guard.Config{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		guards = append(guards, g)
	}
	var (
		wg               sync.WaitGroup
		allowed, limited atomic.Int64
		start            = make(chan struct{})
	)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch res := guards[i%2].Authorize(context.Background(), refund("acme", "1"), ""); {
			case res.Allowed:
				allowed.Add(1)
			case res.Reason == gatehouse.ReasonLimitExceeded:
				limited.Add(1)
			default:
				t.Errorf("Authorize = %+v", res)
			}
		}()
	}
	close(start)
	wg.Wait()
	if allowed.Load() != 3 || limited.Load() != 997 {
		t.Errorf("1000 refunds across two instances against max_count 3: %d allowed, %d limited", allowed.Load(), limited.Load())
	}
}
