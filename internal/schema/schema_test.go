package schema

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	good := fstest.MapFS{
		"migrations/0002_more.sql": {Data: []byte("B")},
		"migrations/0001_init.sql": {Data: []byte("A")},
	}
	ms, err := Load(good)
	if err != nil || len(ms) != 2 || ms[0].String() != "0001_init" || ms[1].SQL != "B" {
		t.Fatalf("Load = %+v, %v", ms, err)
	}
	bad := []fstest.MapFS{
		{"migrations/0002_gap.sql": {}},
		{"migrations/0001.sql": {}},
		{"migrations/one_init.sql": {}},
		{"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}},
	}
	for _, fsys := range bad {
		if ms, err := Load(fsys); err == nil {
			t.Errorf("Load(%v) = %+v, want an error", fsys, ms)
		}
	}
}
