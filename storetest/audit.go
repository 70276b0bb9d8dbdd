package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
)

var auditTests = []test{
	{"AppendChains", testAppendChains},
	{"PruneKeepsChain", testPruneKeepsChain},
	{"AppendKeepsVersion", testAppendKeepsVersion},
	{"AppendInvalid", testAppendInvalid},
	{"ZeroTime", testZeroTime},
	{"RawJSONExact", testRawJSONExact},
	{"TimePrecision", testTimePrecision},
	{"Filters", testFilters},
	{"KindAndReasonFilters", testKindAndReasonFilters},
	{"Pagination", testPagination},
	{"ConcurrentAppend", testConcurrentAppend},
}

func seqs(events []gatehouse.AuditEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

func testAppendChains(t *testing.T, s gatehouse.Store) {
	if err := s.AppendAudit(t.Context(), nil); err != nil {
		t.Fatalf("AppendAudit(nil) = %v", err)
	}
	first := appendEvents(t, s, event("system", "user.bootstrap", "user/ana@example.com"))
	rest := appendEvents(t, s,
		event("user:ana@example.com", "decision", "tool/refund"),
		event("agent:support-bot", "decision", "tool/refund"))
	all := append(first, rest...)
	prev := ""
	for i, e := range all {
		if e.Seq != int64(i+1) || e.PrevHash != prev || len(e.Hash) != 64 {
			t.Errorf("event %d: seq %d prev %q hash %q; want seq %d chained to %q", i, e.Seq, e.PrevHash, e.Hash, i+1, prev)
		}
		prev = e.Hash
	}
	if diff := cmp.Diff(all, list(t, s, gatehouse.AuditFilter{})); diff != "" {
		t.Errorf("ListAudit() (-filled in +stored):\n%s", diff)
	}
	if head, err := s.AuditHead(t.Context()); err != nil || head != (gatehouse.AuditHead{Seq: 3, Hash: prev}) {
		t.Errorf("AuditHead() = %+v, %v; want seq 3 hash %s", head, err, prev)
	}
	verify(t, s, 3)
}

func testAppendKeepsVersion(t *testing.T, s gatehouse.Store) {
	setupTwo(t, s)
	appendEvents(t, s, event("system", "decision", ""), event("system", "decision", ""))
	if v, err := s.PolicyVersion(t.Context()); err != nil || v != 1 {
		t.Errorf("PolicyVersion() after AppendAudit = %d, %v; want 1", v, err)
	}
	verify(t, s, 3)
}

func testAppendInvalid(t *testing.T, s gatehouse.Store) {
	appendEvents(t, s, event("system", "decision", ""))
	before := snapshot(t, s)
	bad := []gatehouse.AuditEvent{
		event("", "decision", ""),
		event("system", "", ""),
		{Time: time.Now(), Actor: "system", Action: "x", Before: json.RawMessage(`{"a":`)},
		{Time: time.Now(), Actor: "system", Action: "x", After: json.RawMessage(`'single'`)},
		{Time: time.Now(), Actor: "system", Action: "x", Detail: json.RawMessage("\"\xff\"")},
		event("system", "x", "bad\xffutf-8"),
	}
	for i, b := range bad {
		events := []gatehouse.AuditEvent{event("system", "decision", ""), b}
		err := s.AppendAudit(t.Context(), events)
		wantErr(t, fmt.Sprintf("AppendAudit(bad event %d)", i), err, gatehouse.ErrInvalid)
		if events[0].Seq != 0 {
			t.Errorf("AppendAudit(bad event %d) failed but filled the caller's events", i)
		}
	}
	_, err := s.ListAudit(t.Context(), gatehouse.AuditFilter{Limit: -1})
	wantErr(t, "ListAudit(limit -1)", err, gatehouse.ErrInvalid)
	unchanged(t, s, before, "AppendAudit with an invalid event")
}

func testZeroTime(t *testing.T, s gatehouse.Store) {
	events := appendEvents(t, s, gatehouse.AuditEvent{Actor: "system", Action: "decision"})
	got := events[0].Time
	if got.IsZero() || got.Location() != time.UTC || !got.Equal(got.Truncate(time.Microsecond)) {
		t.Errorf("event appended without a time got time %v, want the store's clock in UTC to the microsecond", got)
	}
	if stored := list(t, s, gatehouse.AuditFilter{}); len(stored) != 1 || !stored[0].Time.Equal(got) {
		t.Errorf("ListAudit() = %+v, want the filled-in time %v", stored, got)
	}
	verify(t, s, 1)
}

func testRawJSONExact(t *testing.T, s gatehouse.Store) {
	raws := []json.RawMessage{
		nil,
		json.RawMessage(`null`),
		json.RawMessage(" {\n  \"b\" : 1 ,\t\"a\":[ ]\n} "),
		json.RawMessage(`"Grüße 日本語 😀 \u00e9 \ud83d\ude00 \u2028 <&> \\ \""`),
		json.RawMessage(`[1.0, 1e3, -0, 12345678901234567890]`),
		json.RawMessage(`{"a":1,"a":2}`),
	}
	var events []gatehouse.AuditEvent
	for i, r := range raws {
		e := event("user:ümlaut@例え.jp", "policy.update", fmt.Sprintf("role/Ω-%d", i))
		e.Before, e.After, e.Detail = r, raws[(i+1)%len(raws)], raws[(i+2)%len(raws)]
		events = append(events, e)
	}
	appendEvents(t, s, events...)
	got := list(t, s, gatehouse.AuditFilter{})
	if diff := cmp.Diff(events, got); diff != "" {
		t.Errorf("ListAudit() raw JSON (-appended +stored):\n%s", diff)
	}
	for i := range got {
		for _, pair := range [][2]json.RawMessage{{events[i].Before, got[i].Before}, {events[i].After, got[i].After}, {events[i].Detail, got[i].Detail}} {
			if (pair[0] == nil) != (pair[1] == nil) || string(pair[0]) != string(pair[1]) {
				t.Errorf("event %d: stored %q, want %q byte for byte", i+1, pair[1], pair[0])
			}
		}
	}
	verify(t, s, int64(len(events)))
}

func testTimePrecision(t *testing.T, s gatehouse.Store) {
	times := []time.Time{
		time.Date(2026, 5, 1, 9, 30, 15, 123456789, time.FixedZone("CEST", 2*3600)),
		time.Date(2026, 5, 1, 9, 30, 15, 999, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999500, time.UTC),
		time.Date(1900, 1, 1, 0, 0, 0, 1000, time.FixedZone("LMT", -17762)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 0),
	}
	var events []gatehouse.AuditEvent
	for _, tm := range times {
		e := event("system", "decision", "")
		e.Time = tm
		events = append(events, e)
	}
	appendEvents(t, s, events...)
	got := list(t, s, gatehouse.AuditFilter{})
	if len(got) != len(times) {
		t.Fatalf("ListAudit() = %d events, want %d", len(got), len(times))
	}
	for i, tm := range times {
		want := tm.Truncate(time.Microsecond).UTC()
		if !got[i].Time.Equal(want) || got[i].Time.Location() != time.UTC {
			t.Errorf("time %v stored as %v, want %v in UTC", tm, got[i].Time, want)
		}
		if !events[i].Time.Equal(want) {
			t.Errorf("time %v filled in as %v, want %v", tm, events[i].Time, want)
		}
	}
	verify(t, s, int64(len(times)))
}

func testFilters(t *testing.T, s gatehouse.Store) {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	at := func(actor, action, target string, d time.Duration) gatehouse.AuditEvent {
		e := event(actor, action, target)
		e.Time = t0.Add(d)
		return e
	}
	appendEvents(t, s,
		at("user:ana@example.com", "policy.apply", "role/agent", 0),                            // 1
		at("user:bo@example.com", "decision", "tool/refund", time.Minute),                      // 2
		at("user:ana@example.com", "decision", "tool/refund_large", 2*time.Minute),             // 3
		at("agent:bot", "decision", "Tool/refund", 3*time.Minute),                              // 4
		at("user:ana@example.com", "user.promote", "user/bo@example.com", 4*time.Minute+1500),  // 5
		at("user:ANA@example.com", "decision", "tool/refund%", 5*time.Minute+time.Microsecond), // 6
	)
	tests := []struct {
		name string
		f    gatehouse.AuditFilter
		want []int64
	}{
		{"all", gatehouse.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6}},
		{"actor", gatehouse.AuditFilter{Actor: "user:ana@example.com"}, []int64{1, 3, 5}},
		{"actor is exact", gatehouse.AuditFilter{Actor: "user:ana"}, []int64{}},
		{"action", gatehouse.AuditFilter{Action: "decision"}, []int64{2, 3, 4, 6}},
		{"target prefix", gatehouse.AuditFilter{TargetPrefix: "tool/refund"}, []int64{2, 3, 6}},
		{"target prefix is case-sensitive", gatehouse.AuditFilter{TargetPrefix: "Tool/"}, []int64{4}},
		{"target prefix has no wildcards", gatehouse.AuditFilter{TargetPrefix: "tool/refund%"}, []int64{6}},
		{"target prefix _ is literal", gatehouse.AuditFilter{TargetPrefix: "tool/refund_"}, []int64{3}},
		{"target exact", gatehouse.AuditFilter{TargetPrefix: "role/agent"}, []int64{1}},
		{"since is inclusive", gatehouse.AuditFilter{Since: t0.Add(2 * time.Minute)}, []int64{3, 4, 5, 6}},
		{"until is exclusive", gatehouse.AuditFilter{Until: t0.Add(2 * time.Minute)}, []int64{1, 2}},
		{"since and until", gatehouse.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3*time.Minute + 1)}, []int64{2, 3, 4}},
		// Event 5 is stored at 4m+1µs, event 6 at 5m+1µs: filters compare
		// stored times.
		{"since the stored microsecond", gatehouse.AuditFilter{Since: t0.Add(4*time.Minute + 1000)}, []int64{5, 6}},
		{"since just before", gatehouse.AuditFilter{Since: t0.Add(4*time.Minute + 999)}, []int64{5, 6}},
		{"since just after", gatehouse.AuditFilter{Since: t0.Add(4*time.Minute + 1001)}, []int64{6}},
		{"until just after", gatehouse.AuditFilter{Until: t0.Add(5*time.Minute + 1001)}, []int64{1, 2, 3, 4, 5, 6}},
		{"until the stored microsecond", gatehouse.AuditFilter{Until: t0.Add(5*time.Minute + 1000)}, []int64{1, 2, 3, 4, 5}},
		{"until just before", gatehouse.AuditFilter{Until: t0.Add(5*time.Minute + 999)}, []int64{1, 2, 3, 4, 5}},
		{"until in another zone", gatehouse.AuditFilter{Until: t0.Add(time.Minute).In(time.FixedZone("X", -5*3600))}, []int64{1}},
		{"after seq", gatehouse.AuditFilter{AfterSeq: 4}, []int64{5, 6}},
		{"limit", gatehouse.AuditFilter{Limit: 2}, []int64{1, 2}},
		{"combined", gatehouse.AuditFilter{Actor: "user:ana@example.com", Action: "decision", TargetPrefix: "tool/", AfterSeq: 1, Limit: 5}, []int64{3}},
		{"after seq and limit", gatehouse.AuditFilter{Action: "decision", AfterSeq: 2, Limit: 2}, []int64{3, 4}},
		{"nothing", gatehouse.AuditFilter{Action: "nope"}, []int64{}},
		{"before seq", gatehouse.AuditFilter{BeforeSeq: 3}, []int64{1, 2}},
		{"after and before seq", gatehouse.AuditFilter{AfterSeq: 1, BeforeSeq: 5}, []int64{2, 3, 4}},
		{"newest", gatehouse.AuditFilter{Newest: true}, []int64{6, 5, 4, 3, 2, 1}},
		{"newest keeps the newest", gatehouse.AuditFilter{Newest: true, Limit: 2}, []int64{6, 5}},
		{"newest before seq", gatehouse.AuditFilter{Newest: true, BeforeSeq: 5, Limit: 2}, []int64{4, 3}},
		{"newest by actor", gatehouse.AuditFilter{Newest: true, Actor: "user:ana@example.com"}, []int64{5, 3, 1}},
		{"newest by action before seq", gatehouse.AuditFilter{Newest: true, Action: "decision", BeforeSeq: 6}, []int64{4, 3, 2}},
		{"newest since", gatehouse.AuditFilter{Newest: true, Since: t0.Add(2 * time.Minute), Limit: 3}, []int64{6, 5, 4}},
		{"newest until", gatehouse.AuditFilter{Newest: true, Until: t0.Add(3 * time.Minute), Limit: 2}, []int64{3, 2}},
		{"newest target prefix after seq", gatehouse.AuditFilter{Newest: true, TargetPrefix: "tool/", AfterSeq: 2}, []int64{6, 3}},
	}
	for _, tt := range tests {
		got := seqs(list(t, s, tt.f))
		if !slices.Equal(got, tt.want) {
			t.Errorf("ListAudit(%s %+v) = seqs %v, want %v", tt.name, tt.f, got, tt.want)
		}
	}
}

func testKindAndReasonFilters(t *testing.T, s gatehouse.Store) {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	at := func(action, detail string, d time.Duration) gatehouse.AuditEvent {
		e := event("user:ana@example.com", action, "tool/refund")
		e.Time = t0.Add(d)
		if detail != "" {
			e.Detail = json.RawMessage(detail)
		}
		return e
	}
	appendEvents(t, s,
		at("decision", `{"allowed":true,"reason":"allowed"}`, 0),                     // 1
		at("policy.apply", `{"reason":"allowed"}`, time.Minute),                      // 2: not a decision
		at("decision", `{"allowed":false,"reason":"no_permission"}`, 2*time.Minute),  // 3
		at("tool.call", "", 3*time.Minute),                                           // 4
		at("decision", `{"allowed":false,"reason":"limit_exceeded"}`, 4*time.Minute), // 5
		at("decision", `{"reason":["no_permission"]}`, 5*time.Minute),                // 6: not text
		at("decision", "", 6*time.Minute),                                            // 7: no detail
		at("decision", `{"allowed":false,"reason":"no_permission"}`, 7*time.Minute),  // 8
		at("decision", `[1]`, 8*time.Minute),                                         // 9: not an object
		at("Decision", `{"reason":"no_permission"}`, 9*time.Minute),                  // 10: action is exact
	)
	tests := []struct {
		name string
		f    gatehouse.AuditFilter
		want []int64
	}{
		{"decisions", gatehouse.AuditFilter{Kind: gatehouse.AuditKindDecision}, []int64{1, 3, 5, 6, 7, 8, 9}},
		{"changes", gatehouse.AuditFilter{Kind: gatehouse.AuditKindChange}, []int64{2, 4, 10}},
		{"reason", gatehouse.AuditFilter{Reason: "no_permission"}, []int64{3, 8}},
		{"reason is exact", gatehouse.AuditFilter{Reason: "no_perm"}, []int64{}},
		{"reason of decisions", gatehouse.AuditFilter{Kind: gatehouse.AuditKindDecision, Reason: "allowed"}, []int64{1}},
		{"changes have no reason", gatehouse.AuditFilter{Kind: gatehouse.AuditKindChange, Reason: "allowed"}, []int64{}},
		{"reason and action", gatehouse.AuditFilter{Action: "policy.apply", Reason: "allowed"}, []int64{}},
		{"reason since", gatehouse.AuditFilter{Reason: "no_permission", Since: t0.Add(3 * time.Minute)}, []int64{8}},
		{"reason newest", gatehouse.AuditFilter{Reason: "no_permission", Newest: true, Limit: 1}, []int64{8}},
		{"reason after seq", gatehouse.AuditFilter{Reason: "no_permission", AfterSeq: 3}, []int64{8}},
		{"changes before seq", gatehouse.AuditFilter{Kind: gatehouse.AuditKindChange, BeforeSeq: 10}, []int64{2, 4}},
		{"decisions newest by limit", gatehouse.AuditFilter{Kind: gatehouse.AuditKindDecision, Newest: true, Limit: 2}, []int64{9, 8}},
	}
	for _, tt := range tests {
		got := seqs(list(t, s, tt.f))
		if !slices.Equal(got, tt.want) {
			t.Errorf("ListAudit(%s %+v) = seqs %v, want %v", tt.name, tt.f, got, tt.want)
		}
	}
	_, err := s.ListAudit(context.Background(), gatehouse.AuditFilter{Kind: "decisions"})
	if !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("ListAudit(kind decisions) = %v, want ErrInvalid", err)
	}
}

func testPagination(t *testing.T, s gatehouse.Store) {
	const n = 10001
	events := make([]gatehouse.AuditEvent, n)
	for i := range events {
		events[i] = event("system", "decision", "")
	}
	appendEvents(t, s, events...)
	if got := seqs(list(t, s, gatehouse.AuditFilter{})); len(got) != 100 || got[0] != 1 || got[99] != 100 {
		t.Errorf("ListAudit(no limit) = %d events, want the default 100 from seq 1", len(got))
	}
	if got := seqs(list(t, s, gatehouse.AuditFilter{Limit: n + 5})); len(got) != 10000 || got[9999] != 10000 {
		t.Errorf("ListAudit(limit %d) = %d events, want the maximum 10000", n+5, len(got))
	}
	var paged []int64
	for after := int64(0); ; {
		page := list(t, s, gatehouse.AuditFilter{AfterSeq: after, Limit: 3000})
		if len(page) == 0 {
			break
		}
		paged = append(paged, seqs(page)...)
		after = page[len(page)-1].Seq
	}
	if len(paged) != n || paged[0] != 1 || paged[n-1] != n || !slices.IsSorted(paged) {
		t.Errorf("paging by 3000 found %d events, want %d in order", len(paged), n)
	}
	if got := seqs(list(t, s, gatehouse.AuditFilter{Newest: true})); len(got) != 100 || got[0] != n || got[99] != n-99 {
		t.Errorf("ListAudit(newest, no limit) = %d events, want the default 100 from seq %d down", len(got), n)
	}
	// Newest first pages backwards with BeforeSeq.
	var back []int64
	for before := int64(0); ; {
		page := list(t, s, gatehouse.AuditFilter{Newest: true, BeforeSeq: before, Limit: 3000})
		if len(page) == 0 {
			break
		}
		back = append(back, seqs(page)...)
		before = page[len(page)-1].Seq
	}
	slices.Reverse(back)
	if !slices.Equal(back, paged) {
		t.Errorf("paging newest first by 3000 found %d events, want the %d of paging forwards", len(back), len(paged))
	}
	verify(t, s, n)
}

func testConcurrentAppend(t *testing.T, s gatehouse.Store) {
	const writers, each = 8, 25
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				e := event(fmt.Sprintf("agent:writer-%d", w), "decision", "")
				e.Detail = json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))
				if err := s.AppendAudit(t.Context(), []gatehouse.AuditEvent{e}); err != nil {
					t.Errorf("AppendAudit(writer %d, event %d) = %v", w, i, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	events := list(t, s, gatehouse.AuditFilter{Limit: 1000})
	if len(events) != writers*each {
		t.Fatalf("ListAudit() = %d events, want %d", len(events), writers*each)
	}
	// Each writer's events keep their order.
	next := map[string]int{}
	for _, e := range events {
		var d struct{ I int }
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if d.I != next[e.Actor] {
			t.Errorf("event %d: %s's event %d, want its event %d", e.Seq, e.Actor, d.I, next[e.Actor])
		}
		next[e.Actor]++
	}
	verify(t, s, writers*each)
}
