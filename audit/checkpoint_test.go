package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

func newKey(t *testing.T) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	privPEM, pubPEM, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := audit.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatalf("ParsePrivateKey(GenerateKey) = %v", err)
	}
	pub, err := audit.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatalf("ParsePublicKey(GenerateKey) = %v", err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("GenerateKey: the public key is not the private key's")
	}
	return priv, pub
}

func TestParseKeyInvalid(t *testing.T) {
	privPEM, pubPEM, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not PEM", []byte("hello")},
		{"swapped", nil},
		{"damaged", bytes.Replace(privPEM, []byte("\n"), []byte("\nAAAA"), 2)},
	} {
		b := tt.b
		if tt.name == "swapped" {
			b = pubPEM
		}
		if _, err := audit.ParsePrivateKey(b); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("ParsePrivateKey(%s) = %v, want ErrInvalid", tt.name, err)
		}
		if tt.name == "swapped" {
			b = privPEM
		}
		if _, err := audit.ParsePublicKey(b); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("ParsePublicKey(%s) = %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestCheckpointSignature(t *testing.T) {
	priv, pub := newKey(t)
	_, other := newKey(t)
	c := audit.Sign(priv, gatehouse.AuditHead{Seq: 7, Hash: "abc"}, time.Now(), audit.CheckpointManual)
	if err := c.VerifySignature(pub); err != nil {
		t.Fatalf("VerifySignature(own key) = %v", err)
	}
	// A checkpoint survives its export as a JSON line.
	var line bytes.Buffer
	if err := json.NewEncoder(&line).Encode(c); err != nil {
		t.Fatal(err)
	}
	read, err := audit.ReadCheckpoints(&line)
	if err != nil || len(read) != 1 || read[0].VerifySignature(pub) != nil {
		t.Fatalf("ReadCheckpoints(export) = %+v, %v", read, err)
	}
	for _, tt := range []struct {
		name   string
		change func(c *audit.Checkpoint)
	}{
		{"seq", func(c *audit.Checkpoint) { c.Seq++ }},
		{"hash", func(c *audit.Checkpoint) { c.Hash = "abd" }},
		{"time", func(c *audit.Checkpoint) { c.Time = c.Time.Add(time.Microsecond) }},
		{"reason", func(c *audit.Checkpoint) { c.Reason = audit.CheckpointShutdown }},
		{"key id", func(c *audit.Checkpoint) { c.KeyID = "0000" }},
		{"signature", func(c *audit.Checkpoint) { c.Signature = "AAAA" + c.Signature[4:] }},
		{"signature not base64", func(c *audit.Checkpoint) { c.Signature = "!" }},
	} {
		bad := c
		tt.change(&bad)
		if err := bad.VerifySignature(pub); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("VerifySignature(changed %s) = %v, want ErrInvalid", tt.name, err)
		}
	}
	if err := c.VerifySignature(other); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("VerifySignature(another key) = %v, want ErrInvalid", err)
	}
	if _, err := audit.ReadCheckpoints(strings.NewReader(`{"seq":1,"extra":2}`)); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("ReadCheckpoints(unknown field) = %v, want ErrInvalid", err)
	}
}

// reseal recomputes the chain from seq on, as someone who rewrites the
// store would, and moves the head.
func reseal(l *memLog, from int64) {
	head := gatehouse.AuditHead{}
	for i := range l.events {
		e := &l.events[i]
		if e.Seq >= from {
			audit.Seal(head, e)
		}
		head = gatehouse.AuditHead{Seq: e.Seq, Hash: e.Hash}
	}
	l.head = head
}

// TestVerifyCheckpoints: a chain truncated or rewritten consistently (hashes
// and head recomputed) verifies as a chain, and the signed checkpoints kept
// outside catch it, naming the last good one.
func TestVerifyCheckpoints(t *testing.T) {
	priv, pub := newKey(t)
	build := func() (*memLog, []audit.Checkpoint) {
		l := sealed(t, mrand.New(mrand.NewPCG(3, 4)), 30)
		var cps []audit.Checkpoint
		for _, seq := range []int64{10, 20, 30} {
			e := l.events[seq-1]
			cps = append(cps, audit.Sign(priv, gatehouse.AuditHead{Seq: e.Seq, Hash: e.Hash}, time.Now(), audit.CheckpointInterval))
		}
		return l, cps
	}
	tests := []struct {
		name   string
		tamper func(l *memLog, cps []audit.Checkpoint) []audit.Checkpoint
		// reason is the CheckpointError reason, "chain" a ChainError, ""
		// none; good the last good checkpoint's seq.
		reason string
		good   int64
	}{
		{"intact", nil, "", 30},
		{"tail truncated, head moved", func(l *memLog, cps []audit.Checkpoint) []audit.Checkpoint {
			l.events = l.events[:25]
			reseal(l, 26)
			return cps
		}, audit.ReasonTruncated, 20},
		{"event rewritten, chain resealed", func(l *memLog, cps []audit.Checkpoint) []audit.Checkpoint {
			l.events[14].Actor = "user:someone-else"
			reseal(l, 15)
			return cps
		}, audit.ReasonRewritten, 10},
		{"checkpoint forged", func(l *memLog, cps []audit.Checkpoint) []audit.Checkpoint {
			cps[1].Hash = l.events[18].Hash
			cps[1].Seq = 19
			return cps
		}, audit.ReasonBadSignature, 10},
		{"event edited, chain broken", func(l *memLog, cps []audit.Checkpoint) []audit.Checkpoint {
			l.events[24].Actor = "user:someone-else"
			return cps
		}, "chain", 20},
		{"checkpoints in any order", func(l *memLog, cps []audit.Checkpoint) []audit.Checkpoint {
			return []audit.Checkpoint{cps[2], cps[0], cps[1]}
		}, "", 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, cps := build()
			if tt.tamper != nil {
				cps = tt.tamper(l, cps)
			}
			// Without the checkpoints, only the broken chain is caught.
			_, plain := audit.Verify(context.Background(), l)
			if (plain != nil) != (tt.reason == "chain") {
				t.Errorf("Verify() without checkpoints = %v", plain)
			}
			rep, err := audit.VerifyWith(context.Background(), l, audit.Options{Checkpoints: cps, PublicKey: pub})
			var ce *audit.CheckpointError
			var chain *audit.ChainError
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("VerifyWith() = %v, want nil", err)
			case tt.reason == "chain" && !errors.As(err, &chain):
				t.Fatalf("VerifyWith() = %v, want a ChainError", err)
			case tt.reason != "" && tt.reason != "chain" && (!errors.As(err, &ce) || ce.Reason != tt.reason):
				t.Fatalf("VerifyWith() = %v, want a CheckpointError %s", err, tt.reason)
			}
			if err != nil && !errors.Is(err, gatehouse.ErrCorrupt) {
				t.Errorf("VerifyWith() = %v, want it to wrap ErrCorrupt", err)
			}
			if rep.LastCheckpoint == nil || rep.LastCheckpoint.Seq != tt.good {
				t.Errorf("last good checkpoint = %+v, want seq %d", rep.LastCheckpoint, tt.good)
			}
			if ce != nil && (ce.LastGood == nil || ce.LastGood.Seq != tt.good || !strings.Contains(err.Error(), "last good checkpoint at seq")) {
				t.Errorf("VerifyWith() = %v, want it to name the last good checkpoint %d", err, tt.good)
			}
		})
	}
	l, cps := build()
	if _, err := audit.VerifyWith(context.Background(), l, audit.Options{Checkpoints: cps}); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("VerifyWith(checkpoints, no key) = %v, want ErrInvalid", err)
	}
}

// change returns the change event of o as the service writes it; a nil body
// is a delete.
func change(o gatehouse.Object, version int64, withHash bool) gatehouse.AuditEvent {
	d := audit.ChangeDetail{Op: gatehouse.OpUpdate, Version: version}
	if o.Body == nil {
		d.Op = gatehouse.OpDelete
	} else if withHash {
		d.ObjectHash = audit.ObjectHash(o)
	}
	detail, _ := json.Marshal(d)
	return gatehouse.AuditEvent{Time: time.Now(), Actor: "cli:test", Action: "policy.apply",
		Target: string(o.Kind) + "/" + o.ID, After: o.Body, Detail: detail}
}

// TestVerifyState: every stored object must be what the last change event of
// it wrote; an object edited, added or removed in the store directly is
// named.
func TestVerifyState(t *testing.T) {
	carl := gatehouse.Object{Kind: gatehouse.KindUser, ID: "carl@acme.example", Body: json.RawMessage(`{"email":"carl@acme.example"}`)}
	role := gatehouse.Object{Kind: gatehouse.KindRole, ID: "r", Pos: 1, Body: json.RawMessage(`{"name":"r"}`)}
	gone := gatehouse.Object{Kind: gatehouse.KindRole, ID: "gone", Body: json.RawMessage(`{"name":"gone"}`)}
	events := []gatehouse.AuditEvent{
		change(carl, 1, true), change(role, 1, false), change(gone, 1, true),
		change(gatehouse.Object{Kind: gone.Kind, ID: gone.ID}, 2, true),
		{Time: time.Now(), Actor: "user:x", Action: "decision", Target: "user:carl@acme.example", Detail: json.RawMessage(`{"op":"create","version":1}`)},
	}
	super := carl
	super.Body = json.RawMessage(`{"email":"carl@acme.example","superuser":true}`)
	moved := role
	moved.Pos = 2
	tests := []struct {
		name    string
		objects []gatehouse.Object
		version int64
		// bad are the targets named, in order.
		bad []string
	}{
		{"as written", []gatehouse.Object{carl, role}, 2, nil},
		{"legacy event, whitespace aside", []gatehouse.Object{carl, {Kind: role.Kind, ID: role.ID, Pos: 3, Body: json.RawMessage(`{ "name": "r" }`)}}, 2, nil},
		{"user made superuser in the store", []gatehouse.Object{super, role}, 2, []string{"user/carl@acme.example"}},
		{"object added in the store", []gatehouse.Object{carl, role, {Kind: gatehouse.KindRole, ID: "new", Body: json.RawMessage(`{}`)}}, 2, []string{"role/new"}},
		{"deleted object back in the store", []gatehouse.Object{carl, role, gone}, 2, []string{"role/gone"}},
		{"object removed from the store", []gatehouse.Object{role}, 2, []string{"user/carl@acme.example"}},
		{"later versions ignored", []gatehouse.Object{carl, role, gone}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &memLog{}
			evs := append([]gatehouse.AuditEvent(nil), events...)
			if err := l.AppendAudit(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.VerifyWith(context.Background(), l, audit.Options{Objects: tt.objects, StateVersion: tt.version, CheckState: true})
			var se *audit.StateError
			if tt.bad == nil {
				if err != nil {
					t.Fatalf("VerifyWith() = %v, want nil", err)
				}
				if rep.Objects != len(tt.objects) {
					t.Errorf("Objects = %d, want %d", rep.Objects, len(tt.objects))
				}
				return
			}
			if !errors.As(err, &se) || !errors.Is(err, gatehouse.ErrCorrupt) {
				t.Fatalf("VerifyWith() = %v, want a StateError", err)
			}
			var got []string
			for _, o := range se.Objects {
				got = append(got, o.Target)
			}
			if strings.Join(got, ",") != strings.Join(tt.bad, ",") {
				t.Errorf("unexplained objects %v, want %v", got, tt.bad)
			}
		})
	}
	// Moving an object is a change of its stored state too.
	l := &memLog{}
	if err := l.AppendAudit(context.Background(), []gatehouse.AuditEvent{change(role, 1, true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.VerifyWith(context.Background(), l, audit.Options{Objects: []gatehouse.Object{moved}, StateVersion: 1, CheckState: true}); err == nil {
		t.Error("VerifyWith(object moved in the store) = nil, want a StateError")
	}
}

// FuzzReadCheckpoints reads arbitrary input: it never panics, and what it
// reads survives the export encoding unchanged, signature checks included.
func FuzzReadCheckpoints(f *testing.F) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	good, err := json.Marshal(audit.SignFrom(priv, gatehouse.AuditBase{Seq: 3, Hash: "h", Retained: "r"},
		gatehouse.AuditHead{Seq: 9, Hash: "abc"}, time.Unix(1e9, 0), audit.CheckpointRetention))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(good), string(good) + "\n\n" + string(good), `{"seq":1}`, `{"seq":"1"}`, "[", `{"base":null}`, "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cps, err := audit.ReadCheckpoints(strings.NewReader(s))
		if err != nil {
			return
		}
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		for _, c := range cps {
			if err := enc.Encode(c); err != nil {
				t.Fatal(err)
			}
		}
		again, err := audit.ReadCheckpoints(&out)
		if err != nil || len(again) != len(cps) {
			t.Fatalf("ReadCheckpoints(export of %d) = %d, %v", len(cps), len(again), err)
		}
		for i := range cps {
			if (cps[i].VerifySignature(pub) == nil) != (again[i].VerifySignature(pub) == nil) {
				t.Fatalf("checkpoint %d: the signature check changed across the export", i)
			}
		}
	})
}
