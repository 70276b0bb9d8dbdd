package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestRecoverInternalError: a snapshot that breaks its own invariants (here
// an index past the end of the subjects) denies with internal_error instead
// of panicking.
func TestRecoverInternalError(t *testing.T) {
	s, err := Compile(&gatehouse.Policy{
		Permissions: []gatehouse.Permission{{Name: "p"}},
		Tools:       []gatehouse.Tool{{Name: "t", Permission: "p"}},
		Users:       []gatehouse.UserEntry{{Email: "u@example.com"}},
	}, 4)
	if err != nil {
		t.Fatal(err)
	}
	s.agentIdx["broken"] = 99
	req := &gatehouse.Request{Subject: gatehouse.AgentRef("broken"), Permission: "p"}
	want := gatehouse.Decision{Reason: gatehouse.ReasonInternalError, Version: 4}
	if d := s.Check(req); d != want {
		t.Errorf("Check(broken) = %+v, want %+v", d, want)
	}
	if d := s.CheckTool(req, "t"); d != want {
		t.Errorf("CheckTool(broken) = %+v, want %+v", d, want)
	}
	if e := s.Explain(req); e.Decision != want || len(e.Steps) == 0 {
		t.Errorf("Explain(broken) = %+v, want %+v with steps", e, want)
	}
	if _, err := s.Effective(req.Subject, ""); gatehouse.ErrorCode(err) != gatehouse.CodeInternal {
		t.Errorf("Effective(broken) = %v, want an internal error", err)
	}
}

// TestSetTable: sets are interned across chunk boundaries and read back
// after seal.
func TestSetTable(t *testing.T) {
	const nperms = 1 << 17 // 2048 words a set, so a chunk holds 32 sets
	tab := newSetTable(nperms)
	rng := rand.New(rand.NewPCG(3, 4))
	bits := make([]uint64, tab.words)
	var members [][]int32
	for range 100 {
		clearWords(bits)
		var m []int32
		for range 1 + rng.IntN(5) {
			p := int32(rng.IntN(nperms))
			setBit(bits, p)
			m = append(m, p)
		}
		i := tab.intern(bits)
		if again := tab.intern(bits); again != i {
			t.Fatalf("intern of an equal set = %d, first %d", again, i)
		}
		if int(i) != len(members)+1 {
			t.Fatalf("intern of a new set = %d, want %d", i, len(members)+1)
		}
		members = append(members, m)
	}
	tab.seal()
	for k, m := range members {
		for _, p := range m {
			if !tab.has(int32(k+1), p) {
				t.Errorf("set %d lacks permission %d after seal", k+1, p)
			}
		}
		if tab.has(0, m[0]) {
			t.Errorf("the empty set holds permission %d", m[0])
		}
	}
}

// TestTenantSubtree compares the Euler-tour subtree test with walking
// parents, on a random forest listed in random order.
func TestTenantSubtree(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 300
	parent := make([]int, n)
	p := &gatehouse.Policy{}
	for i := range n {
		parent[i] = -1
		if i > 0 && rng.IntN(6) != 0 {
			parent[i] = rng.IntN(i)
		}
	}
	order := rng.Perm(n)
	for _, i := range order {
		tn := gatehouse.Tenant{ID: fmt.Sprintf("t%d", i)}
		if parent[i] >= 0 {
			tn.Parent = fmt.Sprintf("t%d", parent[i])
		}
		p.Tenants = append(p.Tenants, tn)
	}
	s, err := Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	isAncestorOrSelf := func(a, d int) bool {
		for ; d >= 0; d = parent[d] {
			if d == a {
				return true
			}
		}
		return false
	}
	for a := range n {
		ai := s.tenantIdx[fmt.Sprintf("t%d", a)]
		for d := range n {
			di := s.tenantIdx[fmt.Sprintf("t%d", d)]
			if got, want := s.applies(ai, s.tenants[di].in), isAncestorOrSelf(a, d); got != want {
				t.Fatalf("applies(t%d, t%d) = %v, want %v", a, d, got, want)
			}
		}
	}
}

// TestFoldWord: the eight-bytes-at-once fold lower-cases exactly the ASCII
// letters, whatever the other bytes are.
func TestFoldWord(t *testing.T) {
	for b := range 256 {
		for _, pos := range []int{0, 3, 7} {
			w := uint64(0x4142435a5b60617a) // "zaa`[ZCBA" little-endian, mixed
			w = w&^(0xff<<(8*pos)) | uint64(b)<<(8*pos)
			var want uint64
			for k := range 8 {
				c := byte(w >> (8 * k))
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				want |= uint64(c) << (8 * k)
			}
			if got := foldWord(w); got != want {
				t.Fatalf("foldWord(%#x) = %#x, want %#x", w, got, want)
			}
		}
	}
}

// TestEmailTable: users are found by email whatever its case and length,
// and only by their own email.
func TestEmailTable(t *testing.T) {
	p := &gatehouse.Policy{Permissions: []gatehouse.Permission{{Name: "p"}}}
	var emails []string
	for i := range 3000 {
		e := fmt.Sprintf("user%d@example.com", i)
		switch i % 5 {
		case 1:
			e = strings.Repeat("long", 10+i%70) + e
		case 2:
			e = "Ünïcode" + e
		}
		emails = append(emails, gatehouse.NormalizeEmail(e))
		p.Users = append(p.Users, gatehouse.UserEntry{Email: strings.ToUpper(e[:2]) + e[2:]})
	}
	s, err := Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range emails {
		upper := strings.Map(func(r rune) rune {
			if 'a' <= r && r <= 'z' {
				return r - ('a' - 'A')
			}
			return r
		}, e)
		for _, q := range []string{e, upper, " " + e + " "} {
			if got, ok := s.lookupUser(q); !ok || got != int32(i) {
				t.Fatalf("lookupUser(%q) = %d, %v; want %d", q, got, ok, i)
			}
		}
		for _, q := range []string{e + "x", e[1:], "x" + e, upper + "\x00", strings.ToUpper(e[:len(e)-1])} {
			if got, ok := s.lookupUser(q); ok {
				t.Fatalf("lookupUser(%q) = %d, want none", q, got)
			}
		}
	}
}
