package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// ChangeDetail is the Detail of a change event: one per changed object, its
// Target "KIND/ID", Before and After the object's bodies.
type ChangeDetail struct {
	Op      gatehouse.Op `json:"op"`
	Version int64        `json:"version"`
	// ObjectHash is ObjectHash of the object as the commit stored it; empty
	// for a delete. Events written before it existed lack it, and the
	// verifier compares After with the stored body instead.
	ObjectHash string `json:"object_hash,omitempty"`
}

// ObjectHash returns the hex SHA-256 of an object as stored: its kind, id,
// position and body, byte for byte, so editing any of them in the store
// changes it.
func ObjectHash(o gatehouse.Object) string {
	h := sha256.New()
	h.Write([]byte("gatehouse object v1\n" + string(o.Kind) + "\n" + o.ID + "\n" + strconv.Itoa(o.Pos) + "\n"))
	h.Write(o.Body)
	return hex.EncodeToString(h.Sum(nil))
}

// written is what the last change event of an object says it left.
type written struct {
	seq     int64
	deleted bool
	hash    string
	// after is the body, for events without an object hash.
	after json.RawMessage
}

// stateTracker remembers the last change event of every object.
type stateTracker struct {
	last map[string]written
}

func newStateTracker() *stateTracker { return &stateTracker{last: map[string]written{}} }

// see records e if it is a change event of a policy object at version
// upTo or before.
func (s *stateTracker) see(e gatehouse.AuditEvent, upTo int64) {
	kind, id, ok := strings.Cut(e.Target, "/")
	if !ok || !slices.Contains(gatehouse.Kinds, gatehouse.Kind(kind)) || id == "" || len(e.Detail) == 0 {
		return
	}
	var d ChangeDetail
	if json.Unmarshal(e.Detail, &d) != nil || d.Version == 0 || d.Version > upTo {
		return
	}
	switch d.Op {
	case gatehouse.OpCreate, gatehouse.OpUpdate:
		s.last[e.Target] = written{seq: e.Seq, hash: d.ObjectHash, after: e.After}
	case gatehouse.OpDelete:
		s.last[e.Target] = written{seq: e.Seq, deleted: true}
	}
}

// check compares the stored objects with the last events; it returns how
// many objects an event explains, and a *StateError for the others.
func (s *stateTracker) check(objects []gatehouse.Object) (int, error) {
	var bad []UnexplainedObject
	explained := 0
	stored := make(map[string]bool, len(objects))
	for _, o := range objects {
		target := string(o.Kind) + "/" + o.ID
		stored[target] = true
		w, ok := s.last[target]
		switch {
		case !ok:
			bad = append(bad, UnexplainedObject{Target: target, Detail: "stored, but no event wrote it"})
		case w.deleted:
			bad = append(bad, UnexplainedObject{Target: target, Seq: w.seq, Detail: "stored, but the last event deleted it"})
		case w.hash != "" && w.hash != ObjectHash(o):
			bad = append(bad, UnexplainedObject{Target: target, Seq: w.seq, Detail: "stored state differs from what the last event wrote"})
		case w.hash == "" && !jsonEqual(w.after, o.Body):
			bad = append(bad, UnexplainedObject{Target: target, Seq: w.seq, Detail: "stored body differs from the last event's after"})
		default:
			explained++
		}
	}
	for target, w := range s.last {
		if !w.deleted && !stored[target] {
			bad = append(bad, UnexplainedObject{Target: target, Seq: w.seq, Detail: "written by the last event, but not stored"})
		}
	}
	if len(bad) == 0 {
		return explained, nil
	}
	slices.SortFunc(bad, func(a, b UnexplainedObject) int { return strings.Compare(a.Target, b.Target) })
	return explained, &StateError{Objects: bad}
}

// jsonEqual compares two JSON texts ignoring insignificant whitespace.
func jsonEqual(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// UnexplainedObject is a stored object whose state no event explains.
type UnexplainedObject struct {
	// Target is "KIND/ID".
	Target string `json:"target"`
	// Seq is the last change event of the object; 0 if there is none.
	Seq    int64  `json:"seq,omitempty"`
	Detail string `json:"detail"`
}

// StateError names the stored objects no change event explains: they were
// edited in the store, outside Gatehouse. It wraps gatehouse.ErrCorrupt.
type StateError struct {
	Objects []UnexplainedObject
}

// Error names every unexplained object.
func (e *StateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d stored objects no audit event explains:", len(e.Objects))
	for _, o := range e.Objects {
		fmt.Fprintf(&b, " %s (%s", o.Target, o.Detail)
		if o.Seq > 0 {
			fmt.Fprintf(&b, ", last event %d", o.Seq)
		}
		b.WriteString(");")
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap returns gatehouse.ErrCorrupt.
func (e *StateError) Unwrap() error { return gatehouse.ErrCorrupt }
