package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
)

var policyTests = []test{
	{"Empty", testEmpty},
	{"CreateUpdateDelete", testCreateUpdateDelete},
	{"CommitOnlyChanged", testCommitOnlyChanged},
	{"BodyBytesExact", testBodyBytesExact},
	{"StaleBase", testStaleBase},
	{"BeforeMismatch", testBeforeMismatch},
	{"InvalidChange", testInvalidChange},
	{"CommitEvents", testCommitEvents},
	{"CommitMany", testCommitMany},
	{"ConcurrentCommit", testConcurrentCommit},
	{"ContextCanceled", testContextCanceled},
}

// samplePolicy touches every kind, ordered plans, attributes and text
// beyond ASCII.
func samplePolicy() *gatehouse.Policy {
	return &gatehouse.Policy{
		Settings: gatehouse.Settings{DefaultTenants: []string{"acme"}, AccessPermission: "access_ai_chat"},
		Permissions: []gatehouse.Permission{
			{Name: "access_ai_chat", Title: "Chat"},
			{Name: "process_refund", Feature: "refunds", Description: "Rückerstattung — 退款"},
		},
		Bundles:    []gatehouse.Bundle{{Name: "Support", Permissions: []string{"access_ai_chat", "process_refund"}}},
		Categories: []gatehouse.Category{{Name: "AI", Bundles: []string{"Support"}}},
		Roles:      []gatehouse.Role{{Name: "agent", Bundles: []string{"Support"}}},
		Plans: []gatehouse.Plan{
			{Name: "free"},
			{Name: "pro", Features: []string{"refunds"}},
			{Name: "enterprise", Features: []string{"sso"}},
		},
		Tenants: []gatehouse.Tenant{
			{ID: "acme", Name: "ACME", Plan: "pro", Attributes: map[string]any{"region": "eu", "seats": 12.0}},
			{ID: "acme-berlin", Parent: "acme", Name: "Berlin"},
		},
		Users: []gatehouse.UserEntry{
			{Email: "ana@example.com", Superuser: true},
			{Email: "bo@example.com", Tenants: []string{}, Roles: []gatehouse.Assignment{{Role: "agent", Tenant: "acme", Condition: "request.amount < 100"}}},
		},
		Agents: []gatehouse.Agent{{ID: "support-bot", Grants: []gatehouse.Grant{{Permission: "access_ai_chat"}}}},
		Tools:  []gatehouse.Tool{{Name: "refund", Permission: "process_refund", Action: "process_refund", Flag: "canRefund"}},
		Actions: []gatehouse.ActionType{{
			Name:    "process_refund",
			Labels:  map[string]string{"de": "Erstattung", "zh": "退款"},
			Default: gatehouse.ActionPolicy{RequiresConfirmation: true},
		}},
	}
}

func objectsOf(t *testing.T, p *gatehouse.Policy) []gatehouse.Object {
	t.Helper()
	objs, err := p.Objects()
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func creates(objs []gatehouse.Object) []gatehouse.Change {
	changes := make([]gatehouse.Change, len(objs))
	for i, o := range objs {
		changes[i] = gatehouse.Change{Kind: o.Kind, ID: o.ID, Pos: o.Pos, After: o.Body}
	}
	return changes
}

func event(actor, action, target string) gatehouse.AuditEvent {
	return gatehouse.AuditEvent{
		Time:   time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
		Actor:  actor,
		Action: action,
		Target: target,
	}
}

// wantPolicy checks the store holds exactly objs at version, and that they
// decode to the policy they encode.
func wantPolicy(t *testing.T, s gatehouse.Store, objs []gatehouse.Object, version int64) {
	t.Helper()
	got, v, err := s.LoadPolicy(t.Context())
	if err != nil {
		t.Fatalf("LoadPolicy() = %v", err)
	}
	if v != version {
		t.Errorf("LoadPolicy() version = %d, want %d", v, version)
	}
	want := append([]gatehouse.Object(nil), objs...)
	gatehouse.SortObjects(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadPolicy() objects (-want +got):\n%s", diff)
	}
	gotPolicy, err := gatehouse.PolicyFromObjects(got)
	if err != nil {
		t.Fatalf("PolicyFromObjects(loaded) = %v", err)
	}
	wantPolicy, err := gatehouse.PolicyFromObjects(want)
	if err != nil {
		t.Fatalf("PolicyFromObjects(want) = %v", err)
	}
	if diff := cmp.Diff(wantPolicy, gotPolicy); diff != "" {
		t.Errorf("loaded policy (-want +got):\n%s", diff)
	}
	if pv, err := s.PolicyVersion(t.Context()); err != nil || pv != version {
		t.Errorf("PolicyVersion() = %d, %v; want %d", pv, err, version)
	}
	if sc, ok := s.(gatehouse.PolicyScanner); ok {
		var scanned []gatehouse.Object
		b := gatehouse.NewPolicyBuilder()
		v, err := sc.ScanPolicy(t.Context(), func(o gatehouse.Object) error {
			o.Body = append([]byte(nil), o.Body...)
			scanned = append(scanned, o)
			return b.Add(o)
		})
		if err != nil || v != version {
			t.Fatalf("ScanPolicy() = %d, %v; want %d", v, err, version)
		}
		gatehouse.SortObjects(scanned)
		if diff := cmp.Diff(want, scanned); diff != "" {
			t.Errorf("ScanPolicy() objects (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantPolicy, b.Policy()); diff != "" {
			t.Errorf("policy built from ScanPolicy (-want +got):\n%s", diff)
		}
		stop := errors.New("stop")
		if len(want) > 0 {
			if _, err := sc.ScanPolicy(t.Context(), func(gatehouse.Object) error { return stop }); !errors.Is(err, stop) {
				t.Errorf("ScanPolicy with fn failing = %v, want its error", err)
			}
		}
	}
}

func testEmpty(t *testing.T, s gatehouse.Store) {
	wantPolicy(t, s, nil, 0)
	if head, err := s.AuditHead(t.Context()); err != nil || head != (gatehouse.AuditHead{}) {
		t.Errorf("AuditHead() = %+v, %v; want zero", head, err)
	}
	if events := list(t, s, gatehouse.AuditFilter{}); len(events) != 0 {
		t.Errorf("ListAudit() = %d events, want none", len(events))
	}
	verify(t, s, 0)
}

func testCreateUpdateDelete(t *testing.T, s gatehouse.Store) {
	p := samplePolicy()
	objs := objectsOf(t, p)
	if v := commit(t, s, 0, creates(objs), nil); v != 1 {
		t.Fatalf("CommitPolicy(create) = version %d, want 1", v)
	}
	wantPolicy(t, s, objs, 1)
	loaded, _, err := s.LoadPolicy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got, err := gatehouse.PolicyFromObjects(loaded)
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Clone()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy after create (-want +got):\n%s", diff)
	}

	// Update a role, and swap two plans' positions.
	p.Roles[0].Description = "Kundendienst"
	p.Plans[0], p.Plans[1] = p.Plans[1], p.Plans[0]
	next := objectsOf(t, p)
	var changes []gatehouse.Change
	for _, o := range next {
		for _, old := range objs {
			if o.Kind == old.Kind && o.ID == old.ID && (string(o.Body) != string(old.Body) || o.Pos != old.Pos) {
				changes = append(changes, gatehouse.Change{Kind: o.Kind, ID: o.ID, Pos: o.Pos, Before: old.Body, After: o.Body})
			}
		}
	}
	if len(changes) != 3 {
		t.Fatalf("test setup: %d updates, want 3", len(changes))
	}
	if v := commit(t, s, 1, changes, nil); v != 2 {
		t.Fatalf("CommitPolicy(update) = version %d, want 2", v)
	}
	wantPolicy(t, s, next, 2)

	// Delete the agent.
	var kept []gatehouse.Object
	changes = nil
	for _, o := range next {
		if o.Kind == gatehouse.KindAgent {
			changes = append(changes, gatehouse.Change{Kind: o.Kind, ID: o.ID, Before: o.Body})
			continue
		}
		kept = append(kept, o)
	}
	if v := commit(t, s, 2, changes, nil); v != 3 {
		t.Fatalf("CommitPolicy(delete) = version %d, want 3", v)
	}
	wantPolicy(t, s, kept, 3)

	// Re-create what was deleted: a deleted object is gone, not hidden.
	if v := commit(t, s, 3, []gatehouse.Change{{Kind: changes[0].Kind, ID: changes[0].ID, After: changes[0].Before}}, nil); v != 4 {
		t.Fatalf("CommitPolicy(re-create) = version %d, want 4", v)
	}
	wantPolicy(t, s, next, 4)
}

// testCommitOnlyChanged: a commit names only the objects it changes (the
// service commits a single-user change of a large policy as one change and
// one event), and leaves every other stored object as it was, byte for
// byte and at its position.
func testCommitOnlyChanged(t *testing.T, s gatehouse.Store) {
	p := samplePolicy()
	for i := range 500 {
		p.Users = append(p.Users, gatehouse.UserEntry{Email: fmt.Sprintf("user%03d@example.com", i), Tenants: []string{"acme"}})
	}
	objs := objectsOf(t, p)
	commit(t, s, 0, creates(objs), nil)
	head, err := s.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Change one user, delete another and create a third, naming only them.
	var (
		changes []gatehouse.Change
		want    []gatehouse.Object
	)
	for _, o := range objs {
		switch o.ID {
		case "user007@example.com":
			after := []byte(`{"email":"user007@example.com","tenants":["acme-berlin"]}`)
			changes = append(changes, gatehouse.Change{Kind: o.Kind, ID: o.ID, Before: o.Body, After: after})
			o.Body = after
		case "user123@example.com":
			changes = append(changes, gatehouse.Change{Kind: o.Kind, ID: o.ID, Before: o.Body})
			continue
		}
		want = append(want, o)
	}
	created := gatehouse.Object{Kind: gatehouse.KindUser, ID: "zoe@example.com", Body: []byte(`{"email":"zoe@example.com"}`)}
	changes = append(changes, gatehouse.Change{Kind: created.Kind, ID: created.ID, After: created.Body})
	want = append(want, created)
	events := []gatehouse.AuditEvent{event("cli:ops", "user.set_tenants", "user/user007@example.com")}
	if v := commit(t, s, 1, changes, events); v != 2 {
		t.Fatalf("CommitPolicy(3 of %d objects) = version %d, want 2", len(objs), v)
	}
	wantPolicy(t, s, want, 2)
	if got := list(t, s, gatehouse.AuditFilter{AfterSeq: head.Seq}); len(got) != 1 {
		t.Errorf("commit appended %d events, want the 1 given", len(got))
	}
}

func testBodyBytesExact(t *testing.T, s gatehouse.Store) {
	bodies := []string{
		"  {\n\t\"name\" :  \"p.spaced\" ,\"title\":\"Tab\\there\"}\n",
		`{"name":"p.unicode","title":"Grüße 日本語 😀 \u00e9 \ud83d\ude00 \u2028","description":"<&>"}`,
		`{"description":"1e3 and 1.0 stay as written","name":"p.keys-out-of-order","module":"m"}`,
	}
	var objs []gatehouse.Object
	var changes []gatehouse.Change
	for _, b := range bodies {
		var perm gatehouse.Permission
		if err := json.Unmarshal([]byte(b), &perm); err != nil {
			t.Fatalf("test setup: %v", err)
		}
		objs = append(objs, gatehouse.Object{Kind: gatehouse.KindPermission, ID: perm.Name, Body: json.RawMessage(b)})
		changes = append(changes, gatehouse.Change{Kind: gatehouse.KindPermission, ID: perm.Name, After: json.RawMessage(b)})
	}
	commit(t, s, 0, changes, nil)
	wantPolicy(t, s, objs, 1)

	// An update names its Before in exactly the stored bytes.
	after := json.RawMessage(`{ "name":"p.spaced" }`)
	commit(t, s, 1, []gatehouse.Change{{Kind: gatehouse.KindPermission, ID: "p.spaced", Before: json.RawMessage(bodies[0]), After: after}}, nil)
	objs[0].Body = after
	wantPolicy(t, s, objs, 2)
}

// setupTwo commits two permissions, a and b, at version 1 with one event.
func setupTwo(t *testing.T, s gatehouse.Store) {
	t.Helper()
	commit(t, s, 0, []gatehouse.Change{
		{Kind: gatehouse.KindPermission, ID: "a", After: json.RawMessage(`{"name":"a"}`)},
		{Kind: gatehouse.KindPermission, ID: "b", After: json.RawMessage(`{"name":"b"}`)},
	}, []gatehouse.AuditEvent{event("system", "policy.apply", "permission/a")})
}

func testStaleBase(t *testing.T, s gatehouse.Store) {
	setupTwo(t, s)
	before := snapshot(t, s)
	changes := []gatehouse.Change{{Kind: gatehouse.KindPermission, ID: "c", After: json.RawMessage(`{"name":"c"}`)}}
	for _, base := range []int64{0, 2, -1} {
		events := []gatehouse.AuditEvent{event("user:ana@example.com", "policy.apply", "permission/c")}
		_, err := s.CommitPolicy(t.Context(), base, changes, events)
		wantErr(t, fmt.Sprintf("CommitPolicy(base %d at version 1)", base), err, gatehouse.ErrConflict)
		if events[0].Seq != 0 || events[0].Hash != "" {
			t.Errorf("CommitPolicy(base %d) failed but filled the caller's event: %+v", base, events[0])
		}
		// A stale base conflicts even when there is nothing to change.
		_, err = s.CommitPolicy(t.Context(), base, nil, events)
		wantErr(t, fmt.Sprintf("CommitPolicy(base %d, events only)", base), err, gatehouse.ErrConflict)
	}
	unchanged(t, s, before, "CommitPolicy with a stale base")
}

func testBeforeMismatch(t *testing.T, s gatehouse.Store) {
	setupTwo(t, s)
	before := snapshot(t, s)
	valid := gatehouse.Change{Kind: gatehouse.KindPermission, ID: "c", After: json.RawMessage(`{"name":"c"}`)}
	tests := []struct {
		name   string
		change gatehouse.Change
	}{
		{"create existing", gatehouse.Change{Kind: gatehouse.KindPermission, ID: "a", After: json.RawMessage(`{"name":"a"}`)}},
		{"update with wrong before", gatehouse.Change{Kind: gatehouse.KindPermission, ID: "a",
			Before: json.RawMessage(`{"name":"a","title":"x"}`), After: json.RawMessage(`{"name":"a"}`)}},
		{"update with before equal only as JSON", gatehouse.Change{Kind: gatehouse.KindPermission, ID: "a",
			Before: json.RawMessage(`{"name": "a"}`), After: json.RawMessage(`{"name":"a","title":"x"}`)}},
		{"update missing", gatehouse.Change{Kind: gatehouse.KindPermission, ID: "z",
			Before: json.RawMessage(`{"name":"z"}`), After: json.RawMessage(`{"name":"z","title":"x"}`)}},
		{"update of another kind", gatehouse.Change{Kind: gatehouse.KindRole, ID: "a",
			Before: json.RawMessage(`{"name":"a"}`), After: json.RawMessage(`{"name":"a"}`)}},
		{"delete missing", gatehouse.Change{Kind: gatehouse.KindPermission, ID: "z", Before: json.RawMessage(`{"name":"z"}`)}},
		{"delete with wrong before", gatehouse.Change{Kind: gatehouse.KindPermission, ID: "b", Before: json.RawMessage(`{"name":"a"}`)}},
		{"create twice in one commit", valid},
	}
	for _, tt := range tests {
		// The valid change first: the bad one must roll it back.
		changes := []gatehouse.Change{valid, tt.change}
		events := []gatehouse.AuditEvent{event("system", "policy.apply", "permission/c")}
		_, err := s.CommitPolicy(t.Context(), 1, changes, events)
		wantErr(t, fmt.Sprintf("CommitPolicy(%s)", tt.name), err, gatehouse.ErrInvalid)
	}
	unchanged(t, s, before, "CommitPolicy with a mismatched before")
}

func testInvalidChange(t *testing.T, s gatehouse.Store) {
	setupTwo(t, s)
	before := snapshot(t, s)
	valid := gatehouse.Change{Kind: gatehouse.KindPermission, ID: "c", After: json.RawMessage(`{"name":"c"}`)}
	ev := event("system", "policy.apply", "permission/c")
	tests := []struct {
		name   string
		change *gatehouse.Change
		event  gatehouse.AuditEvent
	}{
		{"unknown kind", &gatehouse.Change{Kind: "widget", ID: "w", After: json.RawMessage(`{}`)}, ev},
		{"empty kind", &gatehouse.Change{ID: "w", After: json.RawMessage(`{}`)}, ev},
		{"empty id", &gatehouse.Change{Kind: gatehouse.KindRole, After: json.RawMessage(`{}`)}, ev},
		{"neither before nor after", &gatehouse.Change{Kind: gatehouse.KindRole, ID: "r"}, ev},
		{"after not JSON", &gatehouse.Change{Kind: gatehouse.KindRole, ID: "r", After: json.RawMessage(`{"name":`)}, ev},
		{"after empty", &gatehouse.Change{Kind: gatehouse.KindRole, ID: "r", After: json.RawMessage{}}, ev},
		{"event without actor", nil, event("", "policy.apply", "")},
		{"event without action", nil, event("system", "", "")},
		{"event detail not JSON", nil, gatehouse.AuditEvent{Time: ev.Time, Actor: "system", Action: "x", Detail: json.RawMessage(`nope`)}},
	}
	for _, tt := range tests {
		changes := []gatehouse.Change{valid}
		if tt.change != nil {
			changes = append(changes, *tt.change)
		}
		_, err := s.CommitPolicy(t.Context(), 1, changes, []gatehouse.AuditEvent{ev, tt.event})
		wantErr(t, fmt.Sprintf("CommitPolicy(%s)", tt.name), err, gatehouse.ErrInvalid)
	}
	unchanged(t, s, before, "CommitPolicy with an invalid change or event")
}

func testCommitEvents(t *testing.T, s gatehouse.Store) {
	changes := creates(objectsOf(t, samplePolicy()))
	events := []gatehouse.AuditEvent{
		event("user:ana@example.com", "policy.apply", "permission/access_ai_chat"),
		event("user:ana@example.com", "policy.apply", "permission/process_refund"),
		event("user:ana@example.com", "policy.apply", "role/agent"),
	}
	events[1].Detail = json.RawMessage(`{"op":"create","version":1}`)
	commit(t, s, 0, changes, events)
	for i, e := range events {
		if e.Seq != int64(i+1) || e.Hash == "" {
			t.Errorf("event %d after CommitPolicy: seq %d hash %q, want seq %d and a hash", i, e.Seq, e.Hash, i+1)
		}
	}
	if diff := cmp.Diff(events, list(t, s, gatehouse.AuditFilter{})); diff != "" {
		t.Errorf("ListAudit() after CommitPolicy (-filled in +stored):\n%s", diff)
	}
	verify(t, s, 3)

	// Events alone are recorded but make no new version.
	only := []gatehouse.AuditEvent{event("system", "policy.check", "")}
	if v := commit(t, s, 1, nil, only); v != 1 {
		t.Errorf("CommitPolicy(no changes, 1 event) = version %d, want 1", v)
	}
	if only[0].Seq != 4 || only[0].PrevHash != events[2].Hash {
		t.Errorf("event after events-only commit: seq %d prev %q, want 4 chained to %q", only[0].Seq, only[0].PrevHash, events[2].Hash)
	}
	// Changes alone bump the version and leave the log as it is.
	if v := commit(t, s, 1, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "new", After: json.RawMessage(`{"name":"new"}`)}}, nil); v != 2 {
		t.Errorf("CommitPolicy(1 change, no events) = version %d, want 2", v)
	}
	if head, err := s.AuditHead(t.Context()); err != nil || head.Seq != 4 {
		t.Errorf("AuditHead() = %+v, %v; want seq 4", head, err)
	}
	verify(t, s, 4)
}

// A commit of thousands of objects and events — what applying a large
// document writes, and what a store may write another way than a small
// commit — stores exactly the same, and the chain verifies; a create of an
// object that exists among them changes nothing.
func testCommitMany(t *testing.T, s gatehouse.Store) {
	const n = 2500
	var changes []gatehouse.Change
	var events []gatehouse.AuditEvent
	for i := range n {
		id := fmt.Sprintf("user-%04d@example.com", i)
		body := json.RawMessage(fmt.Sprintf(`{"email":%q,"name":"Jürgen <%d> \"q\""}`, id, i))
		changes = append(changes, gatehouse.Change{Kind: gatehouse.KindUser, ID: id, After: body})
		e := event("cli:tester", "policy.apply", "user/"+id)
		e.After = body
		if i%2 == 0 {
			e.Detail = json.RawMessage(`{"op":"create","version":1}`)
		}
		events = append(events, e)
	}
	commit(t, s, 0, changes, events)
	objs, v, err := s.LoadPolicy(t.Context())
	if err != nil || v != 1 || len(objs) != n {
		t.Fatalf("LoadPolicy() = %d objects, version %d, %v; want %d at version 1", len(objs), v, err, n)
	}
	for i, o := range objs {
		if o.ID != changes[i].ID || string(o.Body) != string(changes[i].After) {
			t.Fatalf("object %d = %s %s, want %s %s", i, o.ID, o.Body, changes[i].ID, changes[i].After)
		}
	}
	if diff := cmp.Diff(events, list(t, s, gatehouse.AuditFilter{Limit: n})); diff != "" {
		t.Errorf("ListAudit() after a large commit (-filled in +stored):\n%s", diff)
	}
	verify(t, s, n)

	before := snapshot(t, s)
	again := append([]gatehouse.Change{}, changes[:n-1]...)
	for i := range again {
		again[i].ID = fmt.Sprintf("new-%04d@example.com", i)
	}
	again = append(again, changes[n-1])
	evs := make([]gatehouse.AuditEvent, len(again))
	for i := range evs {
		evs[i] = event("cli:tester", "policy.apply", "user/"+again[i].ID)
	}
	if _, err := s.CommitPolicy(t.Context(), 1, again, evs); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("CommitPolicy(creating an existing object among %d) = %v, want ErrInvalid", len(again), err)
	}
	if diff := cmp.Diff(before, snapshot(t, s)); diff != "" {
		t.Errorf("a refused large commit changed the store (-before +after):\n%s", diff)
	}
}

func testConcurrentCommit(t *testing.T, s gatehouse.Store) {
	const n = 8
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
		vers  = make([]int64, n)
	)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("writer-%d", i)
			changes := []gatehouse.Change{{Kind: gatehouse.KindRole, ID: id, After: json.RawMessage(fmt.Sprintf(`{"name":%q}`, id))}}
			events := []gatehouse.AuditEvent{event("agent:"+id, "policy.apply", "role/"+id)}
			<-start
			vers[i], errs[i] = s.CommitPolicy(t.Context(), 0, changes, events)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both committed at base 0", winner, i)
		case err == nil:
			winner = i
			if vers[i] != 1 {
				t.Errorf("winning CommitPolicy = version %d, want 1", vers[i])
			}
		default:
			wantErr(t, fmt.Sprintf("CommitPolicy(writer %d)", i), err, gatehouse.ErrConflict)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer committed: %v", errs)
	}
	id := fmt.Sprintf("writer-%d", winner)
	wantPolicy(t, s, []gatehouse.Object{{Kind: gatehouse.KindRole, ID: id, Body: json.RawMessage(fmt.Sprintf(`{"name":%q}`, id))}}, 1)
	events := list(t, s, gatehouse.AuditFilter{})
	if len(events) != 1 || events[0].Actor != "agent:"+id {
		t.Errorf("ListAudit() = %+v, want only the winner's event", events)
	}
	verify(t, s, 1)
}

func testContextCanceled(t *testing.T, s gatehouse.Store) {
	setupTwo(t, s)
	before := snapshot(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	changes := []gatehouse.Change{{Kind: gatehouse.KindPermission, ID: "c", After: json.RawMessage(`{"name":"c"}`)}}
	events := []gatehouse.AuditEvent{event("system", "policy.apply", "permission/c")}
	_, err := s.CommitPolicy(ctx, 1, changes, events)
	wantErr(t, "CommitPolicy(canceled)", err, context.Canceled)
	err = s.AppendAudit(ctx, events)
	wantErr(t, "AppendAudit(canceled)", err, context.Canceled)
	if events[0].Seq != 0 {
		t.Errorf("canceled calls filled the caller's event: %+v", events[0])
	}
	if _, _, err := s.LoadPolicy(ctx); err == nil {
		t.Errorf("LoadPolicy(canceled) = nil, want an error")
	}
	if _, err := s.ListAudit(ctx, gatehouse.AuditFilter{}); err == nil {
		t.Errorf("ListAudit(canceled) = nil, want an error")
	}
	if _, err := s.AuditHead(ctx); err == nil {
		t.Errorf("AuditHead(canceled) = nil, want an error")
	}
	unchanged(t, s, before, "calls with a canceled context")
}
