// Package storetest is the conformance suite every gatehouse.Store passes.
//
// A backend's test calls Run with a function that opens a fresh, empty
// store; a backend is done when the suite passes. The suite is a list of
// groups of named tests: a new concern of the store (limit reservations,
// confirmations) adds a group to suites, and every backend runs it.
package storetest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// test is one conformance test; it gets a fresh, empty store.
type test struct {
	name string
	run  func(t *testing.T, s gatehouse.Store)
}

// storesTests need several stores: they get a function that opens a fresh,
// empty one each time it is called, and run in the suite they name.
var storesTests = []struct {
	suite, name string
	run         func(t *testing.T, open func() gatehouse.Store)
}{
	{"Backup", "RestoreNotEmpty", testRestoreNotEmpty},
	{"Audit", "PrunedRoundTrip", testPrunedRoundTrip},
}

// suites are the groups of tests Run runs, each a subtest of its own.
var suites = []struct {
	name  string
	tests []test
}{
	{"Policy", policyTests},
	{"Audit", auditTests},
	{"Action", actionTests},
	{"Backup", backupTests},
	{"Billing", billingTests},
	{"APIKey", apiKeyTests},
	{"Thread", threadTests},
	{"Health", healthTests},
}

// Run runs the whole suite. open must return a fresh, empty store for each
// test, for example in t.TempDir() or a new schema, and may register its own
// cleanup with t; Run closes the store when the test ends, before open's
// cleanups run, and fails the test if Close fails.
func Run(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	for _, suite := range suites {
		t.Run(suite.name, func(t *testing.T) {
			for _, tt := range suite.tests {
				t.Run(tt.name, func(t *testing.T) { tt.run(t, fresh(t, open)()) })
			}
			for _, tt := range storesTests {
				if tt.suite == suite.name {
					t.Run(tt.name, func(t *testing.T) { tt.run(t, fresh(t, open)) })
				}
			}
		})
	}
}

// fresh returns a function that opens a store with open and closes it when
// t ends, failing t if Close fails.
func fresh(t *testing.T, open func(t *testing.T) gatehouse.Store) func() gatehouse.Store {
	return func() gatehouse.Store {
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		})
		return s
	}
}

// state is everything a store holds, for checking that a failed call
// changed nothing.
type state struct {
	Objects []gatehouse.Object
	Version int64
	Head    gatehouse.AuditHead
	Events  []gatehouse.AuditEvent
}

func snapshot(t *testing.T, s gatehouse.Store) state {
	t.Helper()
	ctx := t.Context()
	var st state
	var err error
	if st.Objects, st.Version, err = s.LoadPolicy(ctx); err != nil {
		t.Fatalf("LoadPolicy() = %v", err)
	}
	if st.Head, err = s.AuditHead(ctx); err != nil {
		t.Fatalf("AuditHead() = %v", err)
	}
	if st.Events, err = s.ListAudit(ctx, gatehouse.AuditFilter{Limit: 10000}); err != nil {
		t.Fatalf("ListAudit() = %v", err)
	}
	return st
}

// unchanged fails t if the store's state differs from before.
func unchanged(t *testing.T, s gatehouse.Store, before state, what string) {
	t.Helper()
	if diff := cmp.Diff(before, snapshot(t, s)); diff != "" {
		t.Errorf("%s changed the store (-before +after):\n%s", what, diff)
	}
}

func commit(t *testing.T, s gatehouse.Store, base int64, changes []gatehouse.Change, events []gatehouse.AuditEvent) int64 {
	t.Helper()
	v, err := s.CommitPolicy(t.Context(), base, changes, events)
	if err != nil {
		t.Fatalf("CommitPolicy(base %d, %d changes, %d events) = %v", base, len(changes), len(events), err)
	}
	return v
}

func appendEvents(t *testing.T, s gatehouse.Store, events ...gatehouse.AuditEvent) []gatehouse.AuditEvent {
	t.Helper()
	if err := s.AppendAudit(t.Context(), events); err != nil {
		t.Fatalf("AppendAudit(%d events) = %v", len(events), err)
	}
	return events
}

func list(t *testing.T, s gatehouse.Store, f gatehouse.AuditFilter) []gatehouse.AuditEvent {
	t.Helper()
	events, err := s.ListAudit(t.Context(), f)
	if err != nil {
		t.Fatalf("ListAudit(%+v) = %v", f, err)
	}
	return events
}

// verify checks the whole chain with audit.Verify and that it holds n events.
func verify(t *testing.T, s gatehouse.Store, n int64) {
	t.Helper()
	rep, err := audit.Verify(t.Context(), s)
	if err != nil {
		t.Fatalf("audit.Verify() = %v", err)
	}
	if rep.Events != n {
		t.Errorf("audit.Verify() checked %d events, want %d", rep.Events, n)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", what, err, want)
	}
}
