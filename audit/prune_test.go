package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// prunable returns a log of n events a minute apart from t0: every third a
// change, the others decisions.
func prunable(t *testing.T, n int, t0 time.Time) *memLog {
	t.Helper()
	l := &memLog{}
	for i := range n {
		action := "decision"
		if i%3 == 0 {
			action = "policy.apply"
		}
		if err := l.AppendAudit(context.Background(), []gatehouse.AuditEvent{{
			Time: t0.Add(time.Duration(i) * time.Minute), Actor: "user:x", Action: action}}); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// TestVerifyPruned: pruning decisions keeps the chain verifiable, twice over;
// an event kept before the base that is later edited, removed or added is
// caught; and with a key, only a prune a checkpoint signs is trusted.
func TestVerifyPruned(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	priv, pub := newKey(t)
	tests := []struct {
		name   string
		tamper func(l *memLog)
		reason string
	}{
		{"intact", nil, ""},
		{"kept change edited and resealed", func(l *memLog) {
			l.events[1].Actor = "user:y"
			l.events[1].Hash = audit.Hash(l.events[1])
		}, audit.ReasonRetainedMismatch},
		{"kept change deleted", func(l *memLog) { l.events = append(l.events[:1], l.events[2:]...) }, audit.ReasonRetainedMismatch},
		{"event after the base edited", func(l *memLog) { l.events[len(l.events)-1].Actor = "user:y" }, audit.ReasonHashMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := prunable(t, 30, t0)
			base, n, err := l.PruneAudit(context.Background(), "decision", t0.Add(10*time.Minute))
			if err != nil || base.Seq != 10 || n != 6 {
				t.Fatalf("PruneAudit(10 min) = %+v, %d, %v; want base 10, 6 pruned", base, n, err)
			}
			// A second prune further on, then one that adds nothing.
			if base, n, _ = l.PruneAudit(context.Background(), "decision", t0.Add(20*time.Minute)); base.Seq != 20 || n != 7 {
				t.Fatalf("PruneAudit(20 min) = %+v, %d; want base 20, 7 pruned", base, n)
			}
			if again, n, _ := l.PruneAudit(context.Background(), "decision", t0.Add(5*time.Minute)); again != base || n != 0 {
				t.Errorf("PruneAudit(earlier) = %+v, %d; want the base unchanged", again, n)
			}
			head := l.head
			cp := audit.SignFrom(priv, base, head, t0, audit.CheckpointInterval)
			if tt.tamper != nil {
				tt.tamper(l)
			}
			rep, err := audit.Verify(context.Background(), l)
			var ce *audit.ChainError
			if tt.reason == "" {
				if err != nil || rep.Events != 30-13 || rep.Head != head {
					t.Fatalf("Verify(pruned) = %+v, %v; want 17 events up to %+v", rep, err, head)
				}
			} else if !errors.As(err, &ce) || ce.Reason != tt.reason {
				t.Fatalf("Verify() = %v, want a ChainError %s", err, tt.reason)
			}
			if tt.reason != "" {
				return
			}
			if _, err := audit.VerifyWith(context.Background(), l, audit.Options{PublicKey: pub, Checkpoints: []audit.Checkpoint{cp}}); err != nil {
				t.Errorf("VerifyWith(a checkpoint signing the base) = %v", err)
			}
			// A checkpoint from before the prune, of a pruned event.
			old := audit.Sign(priv, gatehouse.AuditHead{Seq: 8, Hash: "whatever it was"}, t0, audit.CheckpointInterval)
			if _, err := audit.VerifyWith(context.Background(), l, audit.Options{PublicKey: pub, Checkpoints: []audit.Checkpoint{old, cp}}); err != nil {
				t.Errorf("VerifyWith(old checkpoint of a pruned event, signed base) = %v", err)
			}
			var cpe *audit.CheckpointError
			if _, err := audit.VerifyWith(context.Background(), l, audit.Options{PublicKey: pub, Checkpoints: []audit.Checkpoint{old}}); !errors.As(err, &cpe) || cpe.Reason != audit.ReasonUnattestedPrune {
				t.Errorf("VerifyWith(no checkpoint signs the base) = %v, want %s", err, audit.ReasonUnattestedPrune)
			}
			// The pruned base event itself, signed earlier with another hash.
			other := audit.Sign(priv, gatehouse.AuditHead{Seq: base.Seq, Hash: "another"}, t0, audit.CheckpointInterval)
			if _, err := audit.VerifyWith(context.Background(), l, audit.Options{PublicKey: pub, Checkpoints: []audit.Checkpoint{other, cp}}); !errors.As(err, &cpe) || cpe.Reason != audit.ReasonRewritten {
				t.Errorf("VerifyWith(base event signed with another hash) = %v, want %s", err, audit.ReasonRewritten)
			}
		})
	}
}
