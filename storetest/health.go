package storetest

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

// healthTests cover CheckWritable on a store that can take writes; each
// backend tests its own faults (a deleted file, a read-only server).
var healthTests = []test{
	{"WritableWritesNothing", testWritableWritesNothing},
}

func testWritableWritesNothing(t *testing.T, s gatehouse.Store) {
	if err := s.CheckWritable(t.Context()); err != nil {
		t.Fatalf("CheckWritable(empty store) = %v, want nil", err)
	}
	commit(t, s, 0, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "r", After: []byte(`{"name":"r"}`)}},
		[]gatehouse.AuditEvent{{Actor: "system", Action: "policy.apply"}})
	before := snapshot(t, s)
	if err := s.CheckWritable(t.Context()); err != nil {
		t.Errorf("CheckWritable() = %v, want nil", err)
	}
	unchanged(t, s, before, "CheckWritable")
}
