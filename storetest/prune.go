package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/backup"
)

// pruneStart is when the events of appendPrunable begin.
var pruneStart = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// appendPrunable appends n events a minute apart from pruneStart: every
// third a change, the others decisions.
func appendPrunable(t *testing.T, s gatehouse.Store, n int) {
	t.Helper()
	events := make([]gatehouse.AuditEvent, n)
	for i := range events {
		action := "decision"
		if i%3 == 0 {
			action = "user.promote"
		}
		events[i] = gatehouse.AuditEvent{Time: pruneStart.Add(time.Duration(i) * time.Minute), Actor: "system", Action: action, Target: "user/x"}
	}
	appendEvents(t, s, events...)
}

// PruneAudit deletes the pruned action's events up to the last one older
// than the cutoff, keeps every other event, and the chain verifies from the
// recorded base; a cutoff that adds nothing is a no-op; appends go on.
func testPruneKeepsChain(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	if base, n, err := s.PruneAudit(ctx, "decision", pruneStart); err != nil || n != 0 || base != (gatehouse.AuditBase{}) {
		t.Fatalf("PruneAudit(empty) = %+v, %d, %v; want nothing", base, n, err)
	}
	appendPrunable(t, s, 30)
	head, err := s.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base, n, err := s.PruneAudit(ctx, "decision", pruneStart.Add(10*time.Minute))
	if err != nil || n != 6 || base.Seq != 10 || base.Hash == "" || base.Retained == "" {
		t.Fatalf("PruneAudit(10 min) = %+v, %d, %v; want base 10, 6 pruned", base, n, err)
	}
	if got, err := s.AuditBase(ctx); err != nil || got != base {
		t.Errorf("AuditBase() = %+v, %v; want %+v", got, err, base)
	}
	if again, n, err := s.PruneAudit(ctx, "decision", pruneStart.Add(5*time.Minute)); err != nil || n != 0 || again != base {
		t.Errorf("PruneAudit(earlier) = %+v, %d, %v; want %+v, 0", again, n, err, base)
	}
	for _, e := range list(t, s, gatehouse.AuditFilter{Limit: 100}) {
		if e.Seq <= 10 && e.Action == "decision" {
			t.Errorf("event %d, a decision before the cutoff, is still stored", e.Seq)
		}
	}
	if got, err := s.AuditHead(ctx); err != nil || got != head {
		t.Errorf("AuditHead() after pruning = %+v, %v; want %+v", got, err, head)
	}
	verify(t, s, 24)
	appendEvents(t, s, gatehouse.AuditEvent{Time: pruneStart.Add(time.Hour), Actor: "system", Action: "decision"})
	if _, n, err := s.PruneAudit(ctx, "decision", pruneStart.Add(20*time.Minute)); err != nil || n != 7 {
		t.Errorf("PruneAudit(20 min) = %d, %v; want 7 pruned", n, err)
	}
	verify(t, s, 18)
	if _, _, err := s.PruneAudit(ctx, "", pruneStart); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("PruneAudit(no action) = %v, want ErrInvalid", err)
	}
}

// A pruned store backs up and restores: the archive carries the base.
func testPrunedRoundTrip(t *testing.T, open func() gatehouse.Store) {
	src := open()
	appendPrunable(t, src, 12)
	base, _, err := src.PruneAudit(t.Context(), "decision", pruneStart.Add(6*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	h, err := backup.Write(t.Context(), &archive, backupOf(t, src), pruneStart)
	if err != nil {
		t.Fatalf("backup.Write(pruned) = %v", err)
	}
	if h.AuditBase == nil || *h.AuditBase != base || h.Counts.Events != 8 {
		t.Errorf("header base %+v, %d events; want %+v, 8", h.AuditBase, h.Counts.Events, base)
	}
	dst := open()
	if _, rep, err := backup.Restore(t.Context(), &archive, backupOf(t, dst)); err != nil || rep.Events != 8 {
		t.Fatalf("backup.Restore(pruned) = %+v, %v; want 8 events", rep, err)
	}
	if got, err := dst.AuditBase(t.Context()); err != nil || got != base {
		t.Errorf("restored AuditBase() = %+v, %v; want %+v", got, err, base)
	}
	if diff := cmp.Diff(list(t, src, gatehouse.AuditFilter{}), list(t, dst, gatehouse.AuditFilter{})); diff != "" {
		t.Errorf("restored events (-source +restored):\n%s", diff)
	}
	if _, err := audit.Verify(t.Context(), dst); err != nil {
		t.Errorf("audit.Verify(restored) = %v", err)
	}
}
