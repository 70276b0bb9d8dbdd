package engine

import (
	"testing"

	"github.com/gatehouse/gatehouse/engine/enginetest"
)

// TestUserPlaces: Compile places nearly every user of a generated policy
// at the place the hash of its email computes, and the lookup finds each
// user there, the same user and record the email table finds.
func TestUserPlaces(t *testing.T) {
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Grants, cfg.Tenants = 20_000, 10, 10_000
	p := enginetest.Generate(cfg)
	s, err := Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	u := &s.places
	if u.stride == 0 {
		t.Fatal("no users placed")
	}
	placed := 0
	for i := range int32(len(p.Users)) {
		off := *s.recOff.at(i)
		if off < int32(u.places)*u.stride {
			placed++
			if want, moved := u.lookup(foldHash(s.subjects.at(i).ref.ID)); off != want || moved {
				t.Fatalf("user %d placed at %d, want %d (moved %v)", i, off, want, moved)
			}
		}
		pos, found := s.emails.slot(s, s.subjects.at(i).ref.ID)
		if !found || s.emails.slots.at(pos).rec-1 != off {
			t.Fatalf("user %d: email table slot does not lead to its record", i)
		}
		if got, rec, ok := s.lookupEmail(s.subjects.at(i).ref.ID); !ok || got != i || rec != off {
			t.Fatalf("lookupEmail(user %d) = %d, %d, %v; want %d, %d", i, got, rec, ok, i, off)
		}
	}
	if placed*1000 < len(p.Users)*995 {
		t.Errorf("%d of %d users placed, want 99.5%%", placed, len(p.Users))
	}
}
