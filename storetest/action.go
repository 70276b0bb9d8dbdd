package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
)

var actionTests = []test{
	{"ReserveAndRead", testReserveAndRead},
	{"ReserveInvalid", testReserveInvalid},
	{"Idempotency", testIdempotency},
	{"WindowCount", testWindowCount},
	{"WindowFraction", testWindowFraction},
	{"WindowTotal", testWindowTotal},
	{"WindowReleases", testWindowReleases},
	{"Usage", testActionUsage},
	{"Transitions", testTransitions},
	{"ExpiryOnTransition", testExpiryOnTransition},
	{"ListFilters", testListActions},
	{"ConcurrentCount", testConcurrentCount},
	{"ConcurrentTotal", testConcurrentTotal},
	{"ConcurrentReplays", testConcurrentReplays},
	{"Batch", testBatch},
	{"BatchWindowEdges", testBatchWindowEdges},
	{"ConcurrentBatches", testConcurrentBatches},
}

// t0 is when the action tests happen; stores keep microseconds.
var t0 = time.Date(2026, 3, 4, 10, 0, 0, 123456000, time.UTC)

// record returns a valid record created at t in status st.
func record(id string, at time.Time, st gatehouse.ActionStatus) gatehouse.ActionRecord {
	r := gatehouse.ActionRecord{
		ID: id, Tenant: "acme-berlin", Action: "process_refund", Tool: "refund",
		Subject: "agent:support-bot", OnBehalfOf: "user:ana@example.com",
		Args: json.RawMessage(`{"amount":"12.50"}`), Amount: 1250, Currency: "EUR",
		RequiresConfirmation: st == gatehouse.ActionPending, Reason: gatehouse.ReasonGranted,
		PolicyVersion: 3, Status: st, CreatedAt: at, UpdatedAt: at, UpdatedBy: "agent:support-bot",
	}
	if st == gatehouse.ActionPending {
		r.Reason = gatehouse.ReasonConfirmationRequired
		r.ExpiresAt = at.Add(15 * time.Minute)
	}
	return r
}

// reserveOne reserves r alone.
func reserveOne(ctx context.Context, s gatehouse.Store, r gatehouse.Reservation) (gatehouse.ReserveResult, error) {
	res, err := s.ReserveActions(ctx, []gatehouse.Reservation{r})
	if err != nil {
		return gatehouse.ReserveResult{}, err
	}
	if len(res) != 1 {
		return gatehouse.ReserveResult{}, fmt.Errorf("ReserveActions of one reservation returned %d results", len(res))
	}
	return res[0], nil
}

func reserve(t *testing.T, s gatehouse.Store, r gatehouse.Reservation) gatehouse.ReserveResult {
	t.Helper()
	res, err := reserveOne(t.Context(), s, r)
	if err != nil {
		t.Fatalf("ReserveActions(%s) = %v", r.Record.ID, err)
	}
	return res
}

func mustReserve(t *testing.T, s gatehouse.Store, r gatehouse.Reservation) gatehouse.ActionRecord {
	t.Helper()
	res := reserve(t, s, r)
	if res.Exceeded != "" || res.Replayed {
		t.Fatalf("ReserveActions(%s) = %+v, want stored", r.Record.ID, res)
	}
	return res.Record
}

func listActions(t *testing.T, s gatehouse.Store, f gatehouse.ActionFilter) []gatehouse.ActionRecord {
	t.Helper()
	if f.Now.IsZero() {
		f.Now = t0
	}
	if f.Limit == 0 {
		f.Limit = 10000
	}
	out, err := s.ListActions(t.Context(), f)
	if err != nil {
		t.Fatalf("ListActions(%+v) = %v", f, err)
	}
	return out
}

func ids(rs []gatehouse.ActionRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func testReserveAndRead(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	r := record("a1", t0, gatehouse.ActionPending)
	r.IdempotencyKey, r.Fingerprint = "k1", "fp"
	got := mustReserve(t, s, gatehouse.Reservation{Record: r})
	r.Seq = 1
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("ReserveActions returned (-want +got):\n%s", diff)
	}
	read, err := s.GetAction(ctx, "a1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, read); diff != "" {
		t.Errorf("GetAction (-reserved +read):\n%s", diff)
	}
	if found, err := s.FindAction(ctx, r.Subject, "k1", t0); err != nil || found.ID != "a1" {
		t.Errorf("FindAction(k1) = %s, %v", found.ID, err)
	}
	if read, _ := s.GetAction(ctx, "a1", r.ExpiresAt); read.Status != gatehouse.ActionExpired {
		t.Errorf("GetAction at the expiry = %s, want expired", read.Status)
	}
	_, err = s.GetAction(ctx, "nope", t0)
	wantErr(t, "GetAction(nope)", err, gatehouse.ErrNotFound)
	_, err = s.FindAction(ctx, r.Subject, "nope", t0)
	wantErr(t, "FindAction(nope)", err, gatehouse.ErrNotFound)
	_, err = s.FindAction(ctx, "agent:other", "k1", t0)
	wantErr(t, "FindAction(other subject's key)", err, gatehouse.ErrNotFound)

	events := list(t, s, gatehouse.AuditFilter{})
	if len(events) != 1 || events[0].Action != "action.authorize" || events[0].Target != "action/a1" || events[0].Actor != r.Subject {
		t.Errorf("audit after a reservation = %+v, want one action.authorize of action/a1", events)
	}
	verify(t, s, 1)
}

func testReserveInvalid(t *testing.T, s gatehouse.Store) {
	mustReserve(t, s, gatehouse.Reservation{Record: record("ok", t0, gatehouse.ActionConfirmed)})
	before := snapshot(t, s)
	bad := map[string]func(r *gatehouse.ActionRecord){
		"no id":                func(r *gatehouse.ActionRecord) { r.ID = "" },
		"no tenant":            func(r *gatehouse.ActionRecord) { r.Tenant = "" },
		"unknown status":       func(r *gatehouse.ActionRecord) { r.Status = "approved" },
		"no time":              func(r *gatehouse.ActionRecord) { r.CreatedAt = time.Time{} },
		"pending never expire": func(r *gatehouse.ActionRecord) { r.Status, r.ExpiresAt = gatehouse.ActionPending, time.Time{} },
		"args not JSON":        func(r *gatehouse.ActionRecord) { r.Args = json.RawMessage(`{"a":`) },
	}
	for name, mutate := range bad {
		r := record("bad", t0, gatehouse.ActionConfirmed)
		mutate(&r)
		_, err := reserveOne(t.Context(), s, gatehouse.Reservation{Record: r})
		wantErr(t, "ReserveActions("+name+")", err, gatehouse.ErrInvalid)
		// In a batch, one invalid reservation stores none of the others.
		_, err = s.ReserveActions(t.Context(), []gatehouse.Reservation{
			{Record: record("good-"+name, t0, gatehouse.ActionConfirmed)}, {Record: r}})
		wantErr(t, "ReserveActions(valid, "+name+")", err, gatehouse.ErrInvalid)
	}
	unchanged(t, s, before, "invalid reservations")
	if n := len(listActions(t, s, gatehouse.ActionFilter{})); n != 1 {
		t.Errorf("%d records after invalid reservations, want 1", n)
	}
}

func testIdempotency(t *testing.T, s gatehouse.Store) {
	first := record("i1", t0, gatehouse.ActionPending)
	first.IdempotencyKey = "order-17"
	stored := mustReserve(t, s, gatehouse.Reservation{Record: first})
	again := record("i2", t0.Add(time.Minute), gatehouse.ActionPending)
	again.IdempotencyKey = "order-17"
	res := reserve(t, s, gatehouse.Reservation{Record: again, Window: time.Hour, MaxCount: 1})
	if !res.Replayed || res.Record.ID != "i1" || res.Exceeded != "" {
		t.Errorf("second ReserveActions with the key = %+v, want a replay of i1 (before any limit)", res)
	}
	if diff := cmp.Diff(stored, res.Record); diff != "" {
		t.Errorf("replayed record (-stored +replayed):\n%s", diff)
	}
	other := record("i3", t0, gatehouse.ActionPending)
	other.Subject, other.IdempotencyKey = "agent:other-bot", "order-17"
	mustReserve(t, s, gatehouse.Reservation{Record: other})
	noKey := record("i4", t0, gatehouse.ActionPending)
	mustReserve(t, s, gatehouse.Reservation{Record: noKey})
	noKey.ID = "i5"
	mustReserve(t, s, gatehouse.Reservation{Record: noKey})
	if got := ids(listActions(t, s, gatehouse.ActionFilter{})); !cmp.Equal(got, []string{"i1", "i3", "i4", "i5"}) {
		t.Errorf("records = %v, want i1 i3 i4 i5", got)
	}
	verify(t, s, 4)
}

// windowed reserves a confirmed record at t against a count limit.
func windowed(id string, at time.Time, amount, maxCount, maxTotal int64) gatehouse.Reservation {
	r := record(id, at, gatehouse.ActionConfirmed)
	r.Amount = amount
	return gatehouse.Reservation{Record: r, Window: time.Hour, MaxCount: maxCount, MaxTotalAmount: maxTotal}
}

func testWindowCount(t *testing.T, s gatehouse.Store) {
	// An hour-long window ending at t0+1h: the record at exactly t0 is
	// outside it, the one a microsecond later inside.
	mustReserve(t, s, windowed("old", t0, 100, 0, 0))
	mustReserve(t, s, windowed("w1", t0.Add(time.Microsecond), 100, 0, 0))
	now := t0.Add(time.Hour)
	mustReserve(t, s, windowed("w2", now, 100, 3, 0))
	res := reserve(t, s, windowed("w3", now, 100, 3, 0))
	if res.Exceeded != "" || res.Count != 2 || res.Total != 200 {
		t.Errorf("third in the window: %+v, want stored after count 2 total 200", res)
	}
	res = reserve(t, s, windowed("w4", now, 100, 3, 0))
	if res.Exceeded != gatehouse.LimitMaxCount || res.Count != 3 || res.Record.ID != "" {
		t.Errorf("fourth in the window: %+v, want max_count exceeded at count 3", res)
	}
	other := windowed("elsewhere", now, 100, 3, 0)
	other.Record.Tenant = "acme-milan"
	mustReserve(t, s, other)
	other = windowed("other-action", now, 100, 3, 0)
	other.Record.Action = "apply_discount"
	mustReserve(t, s, other)
	if _, err := s.GetAction(t.Context(), "w4", now); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("the refused reservation was stored: %v", err)
	}
	verify(t, s, 6)
}

// A window is exact to the nanosecond though records keep microseconds:
// a 1.5µs window at now holds the record created a microsecond before now,
// not the one two before, whether they are stored or earlier in the batch.
func testWindowFraction(t *testing.T, s gatehouse.Store) {
	fraction := func(id, tenant string, at time.Time, maxCount int64) gatehouse.Reservation {
		r := windowed(id, at, 1, maxCount, 0)
		r.Record.Tenant, r.Window = tenant, 1500*time.Nanosecond
		return r
	}
	now := t0.Add(2 * time.Microsecond)
	for _, tenant := range []string{"acme-berlin", "acme-milan"} {
		batch := []gatehouse.Reservation{
			fraction(tenant+"-two-before", tenant, t0, 0),
			fraction(tenant+"-one-before", tenant, t0.Add(time.Microsecond), 0),
		}
		if tenant == "acme-berlin" {
			for _, r := range batch {
				mustReserve(t, s, r)
			}
			batch = nil
		}
		res, err := s.ReserveActions(t.Context(), append(batch, fraction(tenant+"-now", tenant, now, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if r := res[len(res)-1]; r.Exceeded != gatehouse.LimitMaxCount || r.Count != 1 || r.Total != 1 {
			t.Errorf("%s: a 1.5µs window at now, records stored %v: exceeded %q at count %d total %d, want max_count at 1 and 1",
				tenant, batch == nil, r.Exceeded, r.Count, r.Total)
		}
	}
}

func testWindowTotal(t *testing.T, s gatehouse.Store) {
	mustReserve(t, s, windowed("t1", t0, 40000, 0, 100000))
	mustReserve(t, s, windowed("t2", t0, 50000, 0, 100000))
	res := reserve(t, s, windowed("t3", t0, 10001, 0, 100000))
	if res.Exceeded != gatehouse.LimitMaxTotalAmount || res.Total != 90000 {
		t.Errorf("one cent over the total: %+v, want max_total_amount exceeded at 90000", res)
	}
	mustReserve(t, s, windowed("t4", t0, 10000, 0, 100000))
	res = reserve(t, s, windowed("t5", t0, 1, 5, 100000))
	if res.Exceeded != gatehouse.LimitMaxTotalAmount || res.Count != 3 {
		t.Errorf("past the total: %+v, want max_total_amount exceeded", res)
	}
}

// Failed, cancelled and expired actions release their capacity; pending,
// confirmed and executed ones hold it.
func testWindowReleases(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	hold := func(id string, st gatehouse.ActionStatus) {
		mustReserve(t, s, gatehouse.Reservation{Record: record(id, t0, st)})
	}
	hold("pending", gatehouse.ActionPending)
	hold("cancelled", gatehouse.ActionPending)
	hold("confirmed", gatehouse.ActionConfirmed)
	hold("failed", gatehouse.ActionConfirmed)
	hold("executed", gatehouse.ActionConfirmed)
	hold("expires", gatehouse.ActionPending)
	move := func(id string, to gatehouse.ActionStatus, at time.Time) {
		if _, err := s.TransitionAction(ctx, gatehouse.Transition{ID: id, To: to, Actor: "user:ana@example.com", Time: at}); err != nil {
			t.Fatalf("TransitionAction(%s → %s) = %v", id, to, err)
		}
	}
	move("cancelled", gatehouse.ActionCancelled, t0.Add(time.Minute))
	move("failed", gatehouse.ActionFailed, t0.Add(time.Minute))
	move("executed", gatehouse.ActionExecuted, t0.Add(time.Minute))
	// "expires" and "pending" are both pending; at t0+15m both expired.
	at := t0.Add(10 * time.Minute)
	r := windowed("probe", at, 0, 1, 0)
	if res := reserve(t, s, r); res.Count != 4 || res.Exceeded != gatehouse.LimitMaxCount {
		t.Errorf("before expiry: %+v, want 4 holding (2 pending, confirmed, executed)", res)
	}
	r = windowed("probe", t0.Add(15*time.Minute), 0, 3, 0)
	if res := reserve(t, s, r); res.Count != 2 || res.Exceeded != "" {
		t.Errorf("after expiry: %+v, want 2 holding (confirmed, executed) and the probe stored", res)
	}
}

// ActionUsage counts what a reservation created at its now counts: within
// the window to the microsecond at both ends of a record's life (created
// after now-window, pending until its expiry), in any status that holds
// capacity, for its tenant and action only; and ReserveActions, asked at
// that time, agrees.
func testActionUsage(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	move := func(id string, to gatehouse.ActionStatus, when time.Time) {
		t.Helper()
		if _, err := s.TransitionAction(ctx, gatehouse.Transition{ID: id, To: to, Actor: "user:ana@example.com", Time: when}); err != nil {
			t.Fatalf("TransitionAction(%s → %s) = %v", id, to, err)
		}
	}
	// Amounts are powers of two, so a total names the records it sums.
	for _, r := range []struct {
		id               string
		status           gatehouse.ActionStatus
		created, expires time.Duration // expires: pending records only
		to               gatehouse.ActionStatus
		amount           int64
	}{
		{"boundary", gatehouse.ActionConfirmed, 0, 0, "", 1},
		{"inside", gatehouse.ActionConfirmed, time.Microsecond, 0, "", 2},
		{"executed", gatehouse.ActionConfirmed, 10 * time.Minute, 0, gatehouse.ActionExecuted, 4},
		{"pending", gatehouse.ActionPending, 50 * time.Minute, 65 * time.Minute, "", 8},
		{"lapses-at-1h", gatehouse.ActionPending, 40 * time.Minute, time.Hour, "", 16},
		{"lapsed", gatehouse.ActionPending, 30 * time.Minute, 59 * time.Minute, "", 32},
		{"lapses-after-1h", gatehouse.ActionPending, 58 * time.Minute, time.Hour + time.Microsecond, "", 64},
		{"cancelled", gatehouse.ActionPending, 15 * time.Minute, 30 * time.Minute, gatehouse.ActionCancelled, 128},
		{"failed", gatehouse.ActionConfirmed, 25 * time.Minute, 0, gatehouse.ActionFailed, 256},
		{"expired", gatehouse.ActionPending, 20 * time.Minute, 35 * time.Minute, gatehouse.ActionExpired, 512},
		{"later", gatehouse.ActionConfirmed, 61 * time.Minute, 0, "", 1024},
		{"other-tenant", gatehouse.ActionConfirmed, 30 * time.Minute, 0, "", 2048},
		{"other-action", gatehouse.ActionConfirmed, 30 * time.Minute, 0, "", 4096},
	} {
		rec := record(r.id, at(r.created), r.status)
		rec.Amount = r.amount
		if r.status == gatehouse.ActionPending {
			rec.ExpiresAt = at(r.expires)
		}
		switch r.id {
		case "other-tenant":
			rec.Tenant = "acme-milan"
		case "other-action":
			rec.Action = "apply_discount"
		}
		mustReserve(t, s, gatehouse.Reservation{Record: rec})
		if r.to != "" {
			when := at(r.created + time.Minute)
			if r.to == gatehouse.ActionExpired {
				when = rec.ExpiresAt
			}
			move(r.id, r.to, when)
		}
	}
	tests := []struct {
		name           string
		tenant, action string
		now            time.Time
		window         time.Duration
		count, total   int64
	}{
		{"an hour", "", "", at(time.Hour), time.Hour, 5, 2 + 4 + 8 + 64 + 1024},
		{"a microsecond earlier", "", "", at(time.Hour - time.Microsecond), time.Hour, 7, 1 + 2 + 4 + 8 + 16 + 64 + 1024},
		{"nanoseconds past the hour", "", "", at(time.Hour + 999), time.Hour, 5, 2 + 4 + 8 + 64 + 1024},
		{"five minutes", "", "", at(time.Hour), 5 * time.Minute, 2, 64 + 1024},
		{"a fraction of a microsecond", "", "", at(2 * time.Microsecond), 1500, 7, 2 + 4 + 8 + 16 + 32 + 64 + 1024},
		{"a fraction, nanoseconds past", "", "", at(2*time.Microsecond + 999), 1500, 7, 2 + 4 + 8 + 16 + 32 + 64 + 1024},
		{"other tenant", "acme-milan", "", at(time.Hour), time.Hour, 1, 2048},
		{"other action", "", "apply_discount", at(time.Hour), time.Hour, 1, 4096},
		{"no such action", "", "cancel_order", at(time.Hour), time.Hour, 0, 0},
	}
	for i, tt := range tests {
		if tt.tenant == "" {
			tt.tenant = "acme-berlin"
		}
		if tt.action == "" {
			tt.action = "process_refund"
		}
		before, records := snapshot(t, s), ids(listActions(t, s, gatehouse.ActionFilter{}))
		count, total, err := s.ActionUsage(ctx, tt.tenant, tt.action, tt.window, tt.now)
		if err != nil || count != tt.count || total != tt.total {
			t.Errorf("ActionUsage(%s) = %d, %d, %v; want %d, %d", tt.name, count, total, err, tt.count, tt.total)
		}
		unchanged(t, s, before, "ActionUsage("+tt.name+")")
		if after := ids(listActions(t, s, gatehouse.ActionFilter{})); !cmp.Equal(after, records) {
			t.Errorf("ActionUsage(%s) changed the records: %v, want %v", tt.name, after, records)
		}
		// A reservation at now sees the same usage: refused by a limit it
		// fills, stored (then cancelled, to count for nothing) with room
		// for one more.
		probe := func(maxCount, maxTotal int64) gatehouse.Reservation {
			rec := record(fmt.Sprintf("probe-%d", i), tt.now, gatehouse.ActionPending)
			rec.Tenant, rec.Action, rec.Amount = tt.tenant, tt.action, 1
			return gatehouse.Reservation{Record: rec, Window: tt.window, MaxCount: maxCount, MaxTotalAmount: maxTotal}
		}
		for _, p := range []struct {
			r    gatehouse.Reservation
			want string
		}{
			{probe(tt.count, 0), gatehouse.LimitMaxCount},
			{probe(0, tt.total), gatehouse.LimitMaxTotalAmount},
			{probe(tt.count+1, tt.total+1), ""},
		} {
			if p.r.MaxCount == 0 && p.r.MaxTotalAmount == 0 {
				continue // nothing to fill in an empty window
			}
			res := reserve(t, s, p.r)
			if res.Exceeded != p.want || res.Count != tt.count || res.Total != tt.total {
				t.Errorf("%s: ReserveActions(max_count %d, max_total_amount %d) = exceeded %q after %d, %d; want %q after %d, %d",
					tt.name, p.r.MaxCount, p.r.MaxTotalAmount, res.Exceeded, res.Count, res.Total, p.want, tt.count, tt.total)
			}
			if res.Exceeded == "" && res.Record.ID != "" {
				move(res.Record.ID, gatehouse.ActionCancelled, tt.now)
			}
		}
	}
	for _, w := range []time.Duration{0, -time.Hour} {
		_, _, err := s.ActionUsage(ctx, "acme-berlin", "process_refund", w, at(time.Hour))
		wantErr(t, fmt.Sprintf("ActionUsage(window %s)", w), err, gatehouse.ErrInvalid)
	}
}

// Every status against every target: the legal moves succeed and record
// their actor and times; every other move is ErrIllegalTransition and
// changes nothing.
func testTransitions(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	at := t0.Add(time.Minute)
	// reach puts a fresh record into status st.
	n := 0
	reach := func(st gatehouse.ActionStatus) string {
		n++
		id := fmt.Sprintf("r%d", n)
		start := gatehouse.ActionPending
		if st != gatehouse.ActionPending && st != gatehouse.ActionCancelled && st != gatehouse.ActionExpired {
			start = gatehouse.ActionConfirmed
		}
		mustReserve(t, s, gatehouse.Reservation{Record: record(id, t0, start)})
		if st != start {
			when := t0.Add(time.Second)
			if st == gatehouse.ActionExpired {
				when = t0.Add(time.Hour)
			}
			if _, err := s.TransitionAction(ctx, gatehouse.Transition{ID: id, To: st, Actor: "system", Time: when}); err != nil {
				t.Fatalf("reach %s: %v", st, err)
			}
		}
		return id
	}
	for _, from := range gatehouse.ActionStatuses {
		for _, to := range gatehouse.ActionStatuses {
			id := reach(from)
			before, _ := s.GetAction(ctx, id, t0)
			head, _ := s.AuditHead(ctx)
			when := at
			if to == gatehouse.ActionExpired {
				when = t0.Add(time.Hour)
			}
			got, err := s.TransitionAction(ctx, gatehouse.Transition{ID: id, To: to, Actor: "user:ana@example.com", Time: when, ErrorMessage: "carrier refused"})
			if !from.CanBecome(to) {
				wantErr(t, fmt.Sprintf("%s → %s", from, to), err, gatehouse.ErrIllegalTransition)
				if after, _ := s.GetAction(ctx, id, t0); !cmp.Equal(before, after) {
					t.Errorf("illegal %s → %s changed the record", from, to)
				}
				if h, _ := s.AuditHead(ctx); h != head {
					t.Errorf("illegal %s → %s appended an audit event", from, to)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s → %s = %v", from, to, err)
				continue
			}
			stored, _ := s.GetAction(ctx, id, when)
			if stored.Status != to || got.Status != to || stored.UpdatedBy != "user:ana@example.com" || !stored.UpdatedAt.Equal(when) {
				t.Errorf("%s → %s stored %+v", from, to, stored)
			}
			switch to {
			case gatehouse.ActionConfirmed:
				if !stored.ConfirmedAt.Equal(when) || stored.ConfirmedBy != "user:ana@example.com" {
					t.Errorf("confirmed without customer_confirmed_at: %+v", stored)
				}
			case gatehouse.ActionExecuted:
				if !stored.ExecutedAt.Equal(when) {
					t.Errorf("executed without executed_at: %+v", stored)
				}
			case gatehouse.ActionFailed:
				if stored.ErrorMessage != "carrier refused" {
					t.Errorf("failed without error_message: %+v", stored)
				}
			}
			events := list(t, s, gatehouse.AuditFilter{AfterSeq: head.Seq})
			if len(events) != 1 || events[0].Action != "action."+string(to) || events[0].Actor != "user:ana@example.com" || events[0].Before == nil {
				t.Errorf("%s → %s audited as %+v", from, to, events)
			}
		}
	}
	_, err := s.TransitionAction(ctx, gatehouse.Transition{ID: "nope", To: gatehouse.ActionConfirmed, Actor: "x", Time: at})
	wantErr(t, "TransitionAction(unknown)", err, gatehouse.ErrNotFound)
	head, err := s.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, s, head.Seq)
}

// Confirming a pending action after its expiry is refused with
// ErrActionExpired, and the expiry itself is recorded, by system at the
// expiry time, even though nobody polled.
func testExpiryOnTransition(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	r := mustReserve(t, s, gatehouse.Reservation{Record: record("late", t0, gatehouse.ActionPending)})
	got, err := s.TransitionAction(ctx, gatehouse.Transition{ID: "late", To: gatehouse.ActionConfirmed,
		Actor: "user:ana@example.com", Time: r.ExpiresAt.Add(time.Second)})
	wantErr(t, "confirm after expiry", err, gatehouse.ErrActionExpired)
	if got.Status != gatehouse.ActionExpired {
		t.Errorf("confirm after expiry returned status %s, want expired", got.Status)
	}
	stored, _ := s.GetAction(ctx, "late", t0)
	if stored.Status != gatehouse.ActionExpired || stored.UpdatedBy != "system" || !stored.UpdatedAt.Equal(r.ExpiresAt) {
		t.Errorf("stored after a late confirm: %+v, want expired by system at %s", stored, r.ExpiresAt)
	}
	_, err = s.TransitionAction(ctx, gatehouse.Transition{ID: "late", To: gatehouse.ActionConfirmed, Actor: "u", Time: r.ExpiresAt})
	wantErr(t, "confirm an expired action again", err, gatehouse.ErrIllegalTransition)
	events := list(t, s, gatehouse.AuditFilter{Action: "action.expired"})
	if len(events) != 1 || events[0].Actor != "system" {
		t.Errorf("expiry audited as %+v", events)
	}
	// Just before the expiry, the confirmation goes through.
	mustReserve(t, s, gatehouse.Reservation{Record: record("in-time", t0, gatehouse.ActionPending)})
	if _, err := s.TransitionAction(ctx, gatehouse.Transition{ID: "in-time", To: gatehouse.ActionConfirmed,
		Actor: "user:ana@example.com", Time: r.ExpiresAt.Add(-time.Microsecond)}); err != nil {
		t.Errorf("confirm a microsecond before expiry = %v", err)
	}
}

func testListActions(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	for i, st := range []gatehouse.ActionStatus{gatehouse.ActionPending, gatehouse.ActionConfirmed, gatehouse.ActionPending, gatehouse.ActionConfirmed} {
		r := record(fmt.Sprintf("l%d", i+1), t0.Add(time.Duration(i)*time.Hour), st)
		if i == 3 {
			r.Tenant, r.Action, r.Subject = "acme-milan", "cancel_order", "agent:other-bot"
		}
		mustReserve(t, s, gatehouse.Reservation{Record: r})
	}
	if _, err := s.TransitionAction(ctx, gatehouse.Transition{ID: "l2", To: gatehouse.ActionExecuted, Actor: "agent:support-bot", Time: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// At t0+2h05m, l1 (created t0) has expired, l3 (created t0+2h) has not.
	now := t0.Add(2*time.Hour + 5*time.Minute)
	tests := []struct {
		name string
		f    gatehouse.ActionFilter
		want []string
	}{
		{"all", gatehouse.ActionFilter{}, []string{"l1", "l2", "l3", "l4"}},
		{"pending", gatehouse.ActionFilter{Status: gatehouse.ActionPending}, []string{"l3"}},
		{"expired", gatehouse.ActionFilter{Status: gatehouse.ActionExpired}, []string{"l1"}},
		{"executed", gatehouse.ActionFilter{Status: gatehouse.ActionExecuted}, []string{"l2"}},
		{"tenant", gatehouse.ActionFilter{Tenant: "acme-milan"}, []string{"l4"}},
		{"action", gatehouse.ActionFilter{Action: "process_refund"}, []string{"l1", "l2", "l3"}},
		{"subject", gatehouse.ActionFilter{Subject: "agent:other-bot"}, []string{"l4"}},
		{"since", gatehouse.ActionFilter{Since: t0.Add(time.Hour)}, []string{"l2", "l3", "l4"}},
		{"until", gatehouse.ActionFilter{Until: t0.Add(time.Hour)}, []string{"l1"}},
		{"page", gatehouse.ActionFilter{AfterSeq: 1, Limit: 2}, []string{"l2", "l3"}},
	}
	for _, tt := range tests {
		tt.f.Now = now
		if tt.f.Limit == 0 {
			tt.f.Limit = 100
		}
		got := listActions(t, s, tt.f)
		if !cmp.Equal(ids(got), tt.want) {
			t.Errorf("ListActions(%s) = %v, want %v", tt.name, ids(got), tt.want)
		}
	}
	if got := listActions(t, s, gatehouse.ActionFilter{Now: now}); got[0].Status != gatehouse.ActionExpired {
		t.Errorf("listed l1 as %s at %s, want expired", got[0].Status, now)
	}
	if _, err := s.ListActions(ctx, gatehouse.ActionFilter{Now: now, Limit: -1}); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("ListActions(limit -1) = %v, want ErrInvalid", err)
	}
}

// race has n goroutines reserve at once against limits and returns how
// many were stored; every reservation must be answered without error.
func race(t *testing.T, s gatehouse.Store, n int, reservation func(i int) gatehouse.Reservation) int64 {
	t.Helper()
	var (
		wg     sync.WaitGroup
		stored atomic.Int64
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := reserveOne(t.Context(), s, reservation(i))
			if err != nil {
				t.Errorf("ReserveActions(%d) = %v", i, err)
				return
			}
			if res.Exceeded == "" {
				stored.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	return stored.Load()
}

// 1,000 concurrent reservations for the 50 slots of max_count: exactly 50
// win, and the audit chain holds exactly their events.
func testConcurrentCount(t *testing.T, s gatehouse.Store) {
	got := race(t, s, 1000, func(i int) gatehouse.Reservation {
		return windowed(fmt.Sprintf("c%04d", i), t0, 100, 50, 0)
	})
	if got != 50 {
		t.Errorf("%d of 1000 concurrent reservations stored against max_count 50, want exactly 50", got)
	}
	if n := len(listActions(t, s, gatehouse.ActionFilter{})); n != 50 {
		t.Errorf("%d records stored, want 50", n)
	}
	verify(t, s, 50)
}

// 1,000 concurrent reservations of 7.00 against a max_total_amount of
// 100.00: exactly 14 fit.
func testConcurrentTotal(t *testing.T, s gatehouse.Store) {
	got := race(t, s, 1000, func(i int) gatehouse.Reservation {
		return windowed(fmt.Sprintf("m%04d", i), t0, 700, 0, 10000)
	})
	if got != 14 {
		t.Errorf("%d concurrent reservations of 7.00 stored against 100.00, want 14", got)
	}
}

// Replays of one idempotency key racing each other store one record.
func testConcurrentReplays(t *testing.T, s gatehouse.Store) {
	var replays atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := record(fmt.Sprintf("p%02d", i), t0, gatehouse.ActionPending)
			r.IdempotencyKey = "same-key"
			res, err := reserveOne(t.Context(), s, gatehouse.Reservation{Record: r})
			if err != nil {
				t.Errorf("ReserveActions(%d) = %v", i, err)
				return
			}
			if res.Replayed {
				replays.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := len(listActions(t, s, gatehouse.ActionFilter{})); n != 1 || replays.Load() != 39 {
		t.Errorf("40 concurrent uses of one key stored %d records with %d replays, want 1 and 39", n, replays.Load())
	}
	verify(t, s, 1)
}

// A batch is decided in order, each reservation as if alone after the ones
// before it: a key used earlier in the batch replays, records stored
// earlier count in the windows, refused ones neither count nor use keys.
func testBatch(t *testing.T, s gatehouse.Store) {
	mustReserve(t, s, windowed("before", t0, 100, 0, 0))
	keyed := func(r gatehouse.Reservation, key string) gatehouse.Reservation {
		r.Record.IdempotencyKey = key
		return r
	}
	at := t0.Add(time.Minute)
	rs := []gatehouse.Reservation{
		keyed(windowed("b1", at, 100, 3, 0), "k1"),
		keyed(windowed("b2", at, 100, 3, 0), "k1"),              // replays b1
		keyed(windowed("b3", at, 100, 3, 0), "k2"),              // the third in the window
		keyed(windowed("b4", at, 100, 3, 0), "k3"),              // the fourth: refused
		keyed(windowed("b5", at, 100, 0, 0), "k3"),              // k3 is still free
		keyed(windowed("b6", at.Add(time.Hour), 100, 1, 0), ""), // the window has moved on
	}
	res, err := s.ReserveActions(t.Context(), rs)
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		ID           string
		Replayed     bool
		Exceeded     string
		Count, Total int64
	}
	got := make([]outcome, len(res))
	for i, r := range res {
		got[i] = outcome{r.Record.ID, r.Replayed, r.Exceeded, r.Count, r.Total}
	}
	want := []outcome{
		{"b1", false, "", 1, 100},
		{"b1", true, "", 0, 0},
		{"b3", false, "", 2, 200},
		{"", false, gatehouse.LimitMaxCount, 3, 300},
		{"b5", false, "", 0, 0},
		{"b6", false, "", 0, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReserveActions outcomes (-want +got):\n%s", diff)
	}
	stored := listActions(t, s, gatehouse.ActionFilter{Now: at})
	if !cmp.Equal(ids(stored), []string{"before", "b1", "b3", "b5", "b6"}) {
		t.Errorf("stored %v, want before b1 b3 b5 b6", ids(stored))
	}
	for i, r := range stored {
		if r.Seq != int64(i+1) {
			t.Errorf("%s has seq %d, want %d", r.ID, r.Seq, i+1)
		}
	}
	verify(t, s, 5)
	if res, err := s.ReserveActions(t.Context(), nil); err != nil || len(res) != 0 {
		t.Errorf("ReserveActions(nil) = %v, %v, want nothing", res, err)
	}
}

// Batches racing each other for 50 slots: exactly 50 stored in all.
func testConcurrentBatches(t *testing.T, s gatehouse.Store) {
	var (
		wg     sync.WaitGroup
		stored atomic.Int64
	)
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := make([]gatehouse.Reservation, 25)
			for i := range rs {
				rs[i] = windowed(fmt.Sprintf("g%02d-%02d", g, i), t0, 100, 50, 0)
			}
			res, err := s.ReserveActions(t.Context(), rs)
			if err != nil {
				t.Errorf("ReserveActions(batch %d) = %v", g, err)
				return
			}
			for _, r := range res {
				if r.Exceeded == "" {
					stored.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := stored.Load(); got != 50 {
		t.Errorf("20 racing batches of 25 stored %d against max_count 50, want exactly 50", got)
	}
	verify(t, s, 50)
}

// Reservations of one batch created at different times see different
// windows: records at the window's start and pending records that expire
// between their creation times count for some of them and not others.
func testBatchWindowEdges(t *testing.T, s gatehouse.Store) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	pending := func(id string, created, expires time.Duration, amount int64) gatehouse.Reservation {
		r := record(id, at(created), gatehouse.ActionPending)
		r.ExpiresAt, r.Amount = at(expires), amount
		return gatehouse.Reservation{Record: r}
	}
	for _, r := range []gatehouse.Reservation{
		windowed("start", at(time.Microsecond), 1, 0, 0),                    // counts for c1 only
		windowed("early", at(5*time.Minute), 10, 0, 0),                      // c1 only
		pending("lapsing", 50*time.Minute, time.Hour+5*time.Minute, 100),    // holds at c1, expired at c2
		windowed("middle", at(30*time.Minute), 1000, 0, 0),                  // both
		pending("waiting", 40*time.Minute, time.Hour+20*time.Minute, 10000), // both
	} {
		mustReserve(t, s, r)
	}
	c1, c2 := time.Hour, time.Hour+10*time.Minute
	res, err := s.ReserveActions(t.Context(), []gatehouse.Reservation{
		windowed("c2", at(c2), 100000, 100, 0),
		windowed("c1", at(c1), 1000000, 100, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	// c2 sees middle and waiting; c1 sees all five and c2 (created later,
	// but a window has no upper end).
	want := [][2]int64{{2, 11000}, {6, 111111}}
	for i, r := range res {
		if r.Exceeded != "" || r.Count != want[i][0] || r.Total != want[i][1] {
			t.Errorf("reservation %d: %+v, want stored after count %d total %d", i, r, want[i][0], want[i][1])
		}
	}
}
