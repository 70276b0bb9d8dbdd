package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

func TestCanonical(t *testing.T) {
	e := gatehouse.AuditEvent{
		Seq:      7,
		Time:     time.Date(2026, 3, 1, 12, 34, 56, 789012345, time.FixedZone("CEST", 2*3600)),
		Actor:    "user:ana@example.com",
		Action:   "policy.update",
		Target:   "role/<admin>&",
		Before:   json.RawMessage(" { \"a\" :\n 1 } "),
		Detail:   json.RawMessage(`[1, "é", "\u00e9"]`),
		PrevHash: "abc",
		Hash:     "not covered",
	}
	want := `{"seq":7,"time":"2026-03-01T10:34:56.789012Z","actor":"user:ana@example.com",` +
		`"action":"policy.update","target":"role/<admin>&","before":{"a":1},"after":null,` +
		`"detail":[1,"é","\u00e9"],"prev_hash":"abc"}`
	if got := string(audit.Canonical(e)); got != want {
		t.Errorf("Canonical() =\n%s\nwant\n%s", got, want)
	}
	sum := sha256.Sum256([]byte(want))
	if got, want := audit.Hash(e), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Hash() = %s, want %s", got, want)
	}
	if !json.Valid(audit.Canonical(e)) {
		t.Errorf("Canonical() is not valid JSON")
	}
}

func TestCanonicalCoversEveryField(t *testing.T) {
	base := gatehouse.AuditEvent{Seq: 1, Time: time.Unix(1, 0), Actor: "a", Action: "b", Target: "c",
		Before: json.RawMessage(`1`), After: json.RawMessage(`2`), Detail: json.RawMessage(`3`), PrevHash: "d"}
	edits := map[string]func(e *gatehouse.AuditEvent){
		"seq":       func(e *gatehouse.AuditEvent) { e.Seq = 2 },
		"time":      func(e *gatehouse.AuditEvent) { e.Time = e.Time.Add(time.Microsecond) },
		"actor":     func(e *gatehouse.AuditEvent) { e.Actor = "A" },
		"action":    func(e *gatehouse.AuditEvent) { e.Action = "B" },
		"target":    func(e *gatehouse.AuditEvent) { e.Target = "C" },
		"before":    func(e *gatehouse.AuditEvent) { e.Before = json.RawMessage(`"1"`) },
		"after":     func(e *gatehouse.AuditEvent) { e.After = nil },
		"detail":    func(e *gatehouse.AuditEvent) { e.Detail = json.RawMessage(`[3]`) },
		"prev_hash": func(e *gatehouse.AuditEvent) { e.PrevHash = "D" },
	}
	for name, edit := range edits {
		e := base
		edit(&e)
		if audit.Hash(e) == audit.Hash(base) {
			t.Errorf("editing %s does not change the hash", name)
		}
	}
	e := base
	e.Hash = "other"
	e.Time = e.Time.Add(999 * time.Nanosecond)
	if audit.Hash(e) != audit.Hash(base) {
		t.Errorf("Hash covers the Hash field or sub-microsecond time")
	}
}

func TestSeal(t *testing.T) {
	e := gatehouse.AuditEvent{Time: time.Date(2026, 1, 2, 3, 4, 5, 6007, time.FixedZone("X", -3600)), Actor: "system", Action: "x"}
	audit.Seal(gatehouse.AuditHead{}, &e)
	if e.Seq != 1 || e.PrevHash != "" {
		t.Errorf("first Seal: seq %d prev %q, want 1 and empty", e.Seq, e.PrevHash)
	}
	if want := time.Date(2026, 1, 2, 4, 4, 5, 6000, time.UTC); !e.Time.Equal(want) || e.Time.Location() != time.UTC {
		t.Errorf("Seal time = %v, want %v in UTC", e.Time, want)
	}
	if e.Hash != audit.Hash(e) || len(e.Hash) != 64 {
		t.Errorf("Seal hash = %q, want hex SHA-256 of the event", e.Hash)
	}
	next := gatehouse.AuditEvent{Time: e.Time, Actor: "system", Action: "x"}
	audit.Seal(gatehouse.AuditHead{Seq: e.Seq, Hash: e.Hash}, &next)
	if next.Seq != 2 || next.PrevHash != e.Hash {
		t.Errorf("second Seal: seq %d prev %q, want 2 and %q", next.Seq, next.PrevHash, e.Hash)
	}
}

func TestValidate(t *testing.T) {
	ok := gatehouse.AuditEvent{Time: time.Unix(1, 0), Actor: "system", Action: "x"}
	tests := []struct {
		name string
		edit func(e *gatehouse.AuditEvent)
		ok   bool
	}{
		{"minimal", func(*gatehouse.AuditEvent) {}, true},
		{"full", func(e *gatehouse.AuditEvent) {
			e.Target, e.Before, e.After, e.Detail = "role/x", json.RawMessage(`{}`), json.RawMessage(` null `), json.RawMessage(`"ü"`)
		}, true},
		{"zero time", func(e *gatehouse.AuditEvent) { e.Time = time.Time{} }, false},
		{"year 9999", func(e *gatehouse.AuditEvent) { e.Time = time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC) }, true},
		{"year 10000", func(e *gatehouse.AuditEvent) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"year 10000 in UTC only", func(e *gatehouse.AuditEvent) {
			e.Time = time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("W", -2*3600))
		}, false},
		{"before year 1", func(e *gatehouse.AuditEvent) { e.Time = time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC) }, false},
		{"no actor", func(e *gatehouse.AuditEvent) { e.Actor = "" }, false},
		{"no action", func(e *gatehouse.AuditEvent) { e.Action = "" }, false},
		{"bad utf-8 target", func(e *gatehouse.AuditEvent) { e.Target = "\xff" }, false},
		{"nul in actor", func(e *gatehouse.AuditEvent) { e.Actor = "a\x00b" }, false},
		{"invalid before", func(e *gatehouse.AuditEvent) { e.Before = json.RawMessage(`{`) }, false},
		{"invalid after", func(e *gatehouse.AuditEvent) { e.After = json.RawMessage(`nope`) }, false},
		{"bad utf-8 detail", func(e *gatehouse.AuditEvent) { e.Detail = json.RawMessage("\"\xff\"") }, false},
	}
	for _, tt := range tests {
		e := ok
		tt.edit(&e)
		err := audit.Validate(e)
		if tt.ok && err != nil {
			t.Errorf("Validate(%s) = %v, want nil", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("Validate(%s) = %v, want ErrInvalid", tt.name, err)
		}
	}
}

// memLog is an in-memory gatehouse.AuditLog.
type memLog struct {
	events []gatehouse.AuditEvent
	head   gatehouse.AuditHead
	base   gatehouse.AuditBase
	lists  int
	// onHead runs before AuditHead answers.
	onHead func(l *memLog)
	err    error
}

func (l *memLog) AppendAudit(_ context.Context, events []gatehouse.AuditEvent) error {
	for i := range events {
		audit.Seal(l.head, &events[i])
		l.head = gatehouse.AuditHead{Seq: events[i].Seq, Hash: events[i].Hash}
		l.events = append(l.events, events[i])
	}
	return nil
}

func (l *memLog) ListAudit(_ context.Context, f gatehouse.AuditFilter) ([]gatehouse.AuditEvent, error) {
	l.lists++
	if l.err != nil {
		return nil, l.err
	}
	var out []gatehouse.AuditEvent
	for _, e := range l.events {
		if e.Seq > f.AfterSeq && len(out) < f.Limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *memLog) AuditHead(context.Context) (gatehouse.AuditHead, error) {
	if l.onHead != nil {
		l.onHead(l)
	}
	return l.head, nil
}

func (l *memLog) AuditBase(context.Context) (gatehouse.AuditBase, error) { return l.base, nil }

// PruneAudit is the reference prune: every store does the same in SQL.
func (l *memLog) PruneAudit(_ context.Context, action string, before time.Time) (gatehouse.AuditBase, int64, error) {
	var through int64
	for _, e := range l.events {
		if e.Time.Before(before) {
			through = max(through, e.Seq)
		}
	}
	if through <= l.base.Seq {
		return l.base, 0, nil
	}
	var kept []gatehouse.AuditEvent
	d := audit.NewRetainedDigest()
	base := gatehouse.AuditBase{Seq: through}
	var pruned int64
	for _, e := range l.events {
		if e.Seq == through {
			base.Hash = e.Hash
		}
		if e.Seq <= through && e.Action == action {
			pruned++
			continue
		}
		if e.Seq <= through {
			d.Add(e.Seq, e.Hash)
		}
		kept = append(kept, e)
	}
	base.Retained = d.Sum()
	l.events, l.base = kept, base
	return base, pruned, nil
}

func randomEvent(r *rand.Rand) gatehouse.AuditEvent {
	words := []string{"a", "ü", "日本", `"q"`, "<&>", " ", "\\", "\u2028"}
	word := func() string { return words[r.IntN(len(words))] + words[r.IntN(len(words))] }
	raw := func() json.RawMessage {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			b, _ := json.Marshal(map[string]any{word(): word(), "n": r.Float64()})
			return b
		case 2:
			return json.RawMessage(fmt.Sprintf(" [ %d ,\n\t%q ] ", r.Int64(), word()))
		}
		return json.RawMessage(`null`)
	}
	return gatehouse.AuditEvent{
		Time:   time.Unix(r.Int64N(4e9)-2e9, r.Int64N(1e9)).In(time.FixedZone("z", r.IntN(24)*3600)),
		Actor:  "user:" + word(),
		Action: word(),
		Target: word(),
		Before: raw(),
		After:  raw(),
		Detail: raw(),
	}
}

// sealed returns a log of n random events sealed in order.
func sealed(t *testing.T, r *rand.Rand, n int) *memLog {
	t.Helper()
	l := &memLog{}
	events := make([]gatehouse.AuditEvent, n)
	for i := range events {
		events[i] = randomEvent(r)
	}
	if err := l.AppendAudit(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestVerifySealedChains(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 60 {
		l := sealed(t, r, n)
		rep, err := audit.Verify(context.Background(), l)
		if err != nil {
			t.Fatalf("Verify(%d sealed events) = %v", n, err)
		}
		if rep.Events != int64(n) || rep.Head != l.head {
			t.Fatalf("Verify(%d sealed events) = %+v, want %d events ending at %+v", n, rep, n, l.head)
		}
	}
}

func TestVerifyPages(t *testing.T) {
	l := sealed(t, rand.New(rand.NewPCG(3, 4)), 2500)
	rep, err := audit.Verify(context.Background(), l)
	if err != nil || rep.Events != 2500 {
		t.Fatalf("Verify(2500 events) = %+v, %v; want 2500 events", rep, err)
	}
	// Three pages, then the empty read that ends the log.
	if l.lists != 4 {
		t.Errorf("Verify(2500 events) listed %d times, want 4", l.lists)
	}
}

func TestVerifyConcurrentAppend(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	l := sealed(t, r, 10)
	appended := false
	l.onHead = func(l *memLog) {
		if !appended {
			appended = true
			if err := l.AppendAudit(context.Background(), []gatehouse.AuditEvent{randomEvent(r), randomEvent(r)}); err != nil {
				t.Error(err)
			}
		}
	}
	rep, err := audit.Verify(context.Background(), l)
	if err != nil || rep.Events != 12 {
		t.Fatalf("Verify(10 events + 2 appended during verify) = %+v, %v; want 12 events", rep, err)
	}
}

func TestVerifyLogError(t *testing.T) {
	boom := errors.New("boom")
	l := &memLog{err: boom}
	if _, err := audit.Verify(context.Background(), l); !errors.Is(err, boom) {
		t.Fatalf("Verify(failing log) = %v, want %v", err, boom)
	}
}

func TestVerifyTampered(t *testing.T) {
	rehash := func(e *gatehouse.AuditEvent) { e.Hash = audit.Hash(*e) }
	tests := []struct {
		name   string
		tamper func(l *memLog)
		seq    int64
		reason string
	}{
		{"untouched", func(*memLog) {}, 0, ""},
		{"whitespace in raw JSON is not covered", func(l *memLog) {
			for i := range l.events {
				for _, raw := range []*json.RawMessage{&l.events[i].Before, &l.events[i].After, &l.events[i].Detail} {
					if len(*raw) > 0 {
						*raw = json.RawMessage(" \n\t" + string(*raw) + " ")
					}
				}
			}
		}, 0, ""},
		{"edited actor", func(l *memLog) { l.events[2].Actor = "user:mallory" }, 3, audit.ReasonHashMismatch},
		{"edited time", func(l *memLog) { l.events[0].Time = l.events[0].Time.Add(time.Second) }, 1, audit.ReasonHashMismatch},
		{"edited detail", func(l *memLog) { l.events[4].Detail = json.RawMessage(`{"x":2}`) }, 5, audit.ReasonHashMismatch},
		{"edited hash", func(l *memLog) { l.events[2].Hash = strings.Repeat("0", 64) }, 3, audit.ReasonHashMismatch},
		{"invalid raw JSON", func(l *memLog) { l.events[1].After = json.RawMessage(`{`); rehash(&l.events[1]) }, 2, audit.ReasonHashMismatch},
		{"edited and rehashed", func(l *memLog) {
			l.events[2].Actor = "user:mallory"
			rehash(&l.events[2])
		}, 4, audit.ReasonPrevHashMismatch},
		{"first event chained to something", func(l *memLog) {
			l.events[0].PrevHash = "x"
			rehash(&l.events[0])
		}, 1, audit.ReasonPrevHashMismatch},
		{"deleted", func(l *memLog) { l.events = append(l.events[:2], l.events[3:]...) }, 3, audit.ReasonSeqGap},
		{"deleted and renumbered", func(l *memLog) {
			l.events = append(l.events[:2], l.events[3:]...)
			for i := 2; i < len(l.events); i++ {
				l.events[i].Seq--
			}
			l.head.Seq--
		}, 3, audit.ReasonHashMismatch},
		{"reordered", func(l *memLog) { l.events[1], l.events[2] = l.events[2], l.events[1] }, 2, audit.ReasonSeqGap},
		{"reordered with seqs kept", func(l *memLog) {
			l.events[1], l.events[2] = l.events[2], l.events[1]
			l.events[1].Seq, l.events[2].Seq = 2, 3
		}, 2, audit.ReasonHashMismatch},
		{"tail truncated", func(l *memLog) { l.events = l.events[:4] }, 5, audit.ReasonHeadMismatch},
		{"all truncated", func(l *memLog) { l.events = nil }, 1, audit.ReasonHeadMismatch},
		{"head hash altered", func(l *memLog) { l.head.Hash = "x" }, 6, audit.ReasonHeadMismatch},
		{"head behind the chain", func(l *memLog) { l.head = gatehouse.AuditHead{Seq: 3, Hash: l.events[2].Hash} }, 4, audit.ReasonHeadMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := sealed(t, rand.New(rand.NewPCG(7, 8)), 6)
			tt.tamper(l)
			rep, err := audit.Verify(context.Background(), l)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify() = %v, want nil", err)
				}
				return
			}
			var ce *audit.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, gatehouse.ErrCorrupt) {
				t.Fatalf("Verify() = %v, want a *ChainError wrapping ErrCorrupt", err)
			}
			if ce.Seq != tt.seq || ce.Reason != tt.reason {
				t.Errorf("Verify() = seq %d %s, want seq %d %s (%v)", ce.Seq, ce.Reason, tt.seq, tt.reason, err)
			}
			if want := fmt.Sprintf("seq %d:", tt.seq); !strings.Contains(err.Error(), want) {
				t.Errorf("Verify() error %q does not name %q", err, want)
			}
			if tt.reason != audit.ReasonHeadMismatch && rep.Events >= tt.seq {
				t.Errorf("Verify() report counts %d good events, want fewer than %d", rep.Events, tt.seq)
			}
		})
	}
}

func TestVerifierSticky(t *testing.T) {
	l := sealed(t, rand.New(rand.NewPCG(9, 10)), 3)
	v := audit.NewVerifier()
	if err := v.Next(l.events[0]); err != nil {
		t.Fatal(err)
	}
	first := v.Next(l.events[2])
	if first == nil {
		t.Fatal("Next(event 3 after event 1) = nil, want a seq gap")
	}
	if err := v.Next(l.events[1]); err != first {
		t.Errorf("Next after an error = %v, want the first error %v", err, first)
	}
	if err := v.Finish(l.head); err != first {
		t.Errorf("Finish after an error = %v, want the first error %v", err, first)
	}
	if got, want := v.Head(), (gatehouse.AuditHead{Seq: 1, Hash: l.events[0].Hash}); got != want {
		t.Errorf("Head() = %+v, want the last good event %+v", got, want)
	}
}

func TestListLimit(t *testing.T) {
	for _, tt := range []struct {
		in, want int
		err      bool
	}{{0, audit.DefaultListLimit, false}, {1, 1, false}, {audit.MaxListLimit + 1, audit.MaxListLimit, false}, {-1, 0, true}} {
		got, err := audit.ListLimit(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ListLimit(%d) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestVerified(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		edit   func(events []gatehouse.AuditEvent, head *gatehouse.AuditHead) []gatehouse.AuditEvent
		srcErr bool // the source fails after the events
		good   int
		seq    int64
		reason string
	}{
		{"whole chain", func(ev []gatehouse.AuditEvent, _ *gatehouse.AuditHead) []gatehouse.AuditEvent { return ev }, false, 5, 0, ""},
		{"empty", func(_ []gatehouse.AuditEvent, h *gatehouse.AuditHead) []gatehouse.AuditEvent {
			*h = gatehouse.AuditHead{}
			return nil
		}, false, 0, 0, ""},
		{"edited", func(ev []gatehouse.AuditEvent, _ *gatehouse.AuditHead) []gatehouse.AuditEvent {
			ev[2].Actor = "user:mallory"
			return ev
		}, false, 2, 3, audit.ReasonHashMismatch},
		{"gap", func(ev []gatehouse.AuditEvent, _ *gatehouse.AuditHead) []gatehouse.AuditEvent {
			return append(ev[:1], ev[2:]...)
		}, false, 1, 2, audit.ReasonSeqGap},
		{"truncated", func(ev []gatehouse.AuditEvent, _ *gatehouse.AuditHead) []gatehouse.AuditEvent { return ev[:3] }, false, 3, 4, audit.ReasonHeadMismatch},
		{"source fails", func(ev []gatehouse.AuditEvent, _ *gatehouse.AuditHead) []gatehouse.AuditEvent { return ev[:2] }, true, 2, 0, ""},
	}
	for _, tt := range tests {
		l := sealed(t, rand.New(rand.NewPCG(11, 12)), 5)
		head := l.head
		events := tt.edit(l.events, &head)
		src := func(yield func(gatehouse.AuditEvent, error) bool) {
			for _, e := range events {
				if !yield(e, nil) {
					return
				}
			}
			if tt.srcErr {
				yield(gatehouse.AuditEvent{}, boom)
			}
		}
		var good int
		var err error
		for e, eerr := range audit.Verified(src, head) {
			if eerr != nil {
				err = eerr
				break
			}
			if e.Seq != int64(good+1) {
				t.Errorf("Verified(%s) yielded seq %d as event %d", tt.name, e.Seq, good+1)
			}
			good++
		}
		if good != tt.good {
			t.Errorf("Verified(%s) yielded %d good events, want %d", tt.name, good, tt.good)
		}
		var ce *audit.ChainError
		switch {
		case tt.srcErr:
			if !errors.Is(err, boom) {
				t.Errorf("Verified(%s) = %v, want the source's error", tt.name, err)
			}
		case tt.reason == "":
			if err != nil {
				t.Errorf("Verified(%s) = %v, want no error", tt.name, err)
			}
		case !errors.As(err, &ce) || ce.Seq != tt.seq || ce.Reason != tt.reason:
			t.Errorf("Verified(%s) = %v, want seq %d %s", tt.name, err, tt.seq, tt.reason)
		}
	}
}
