package mailaddr_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mailaddr"
)

var canonicalTests = []struct {
	in, want string
}{
	{"admin@example.com", "admin@example.com"},
	{"  Admin@EXAMPLE.com ", "admin@example.com"},
	{"first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"},
	{"ADMIN@bücher.EXAMPLE", "admin@xn--bcher-kva.example"},
	{"admin@xn--bcher-kva.example", "admin@xn--bcher-kva.example"},
	{"user@例え.jp", "user@xn--r8jz45g.jp"},
}

// refused are addresses Canonical refuses.
var refused = []string{
	"admİn@example.com",         // U+0130 would lower-case to i
	"ADMİN@example.com",         // as an email claim
	"admin@example.co\u212a",    // the Kelvin sign would lower-case to k
	"admin@BÜCHER.example",      // only ASCII letters are folded
	"\u212aarl@example.com",     // in the local part
	"аdmin@example.com",         // Cyrillic а
	"admin@exаmple.com",         // Cyrillic а in a Latin domain label
	"admin@\u0440aypal.example", // Cyrillic р mixed with Latin
	"ad\u202emin@example.com",   // a bidi override
	"ad min@example.com",        // a space
	"ad\x00min@example.com",     // a control character
	"admin@ex ample.com",
	"admin@exa\u202emple.com",
	"admin",
	"@example.com",
	"admin@",
	"a@b@example.com",
	"admin@example..com",
	"admin@-example.com",
	"admin@xn--bcher-kva-invalid-.example",
	"\xffadmin@example.com",
}

// A Cache gives what Canonical gives, address by address, whatever it
// saw before: valid and refused addresses on the same domains, twice.
func TestCache(t *testing.T) {
	var c mailaddr.Cache
	var all []string
	for _, tt := range canonicalTests {
		all = append(all, tt.in, "Other."+strings.TrimSpace(tt.in))
	}
	all = append(all, refused...)
	for range 2 {
		for _, in := range all {
			want, wantErr := mailaddr.Canonical(in)
			got, err := c.Canonical(in)
			if got != want || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Errorf("Cache.Canonical(%q) = %q, %v; Canonical gives %q, %v", in, got, err, want, wantErr)
			}
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, tt := range canonicalTests {
		got, err := mailaddr.Canonical(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Canonical(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	for _, in := range refused {
		if got, err := mailaddr.Canonical(in); err == nil {
			t.Errorf("Canonical(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzCanonical checks the properties every caller relies on: a canonical
// address is ASCII, canonical again, unchanged by gatehouse.NormalizeEmail,
// and its local part is the input's with ASCII letters folded and nothing
// else changed, so no character ever folds into another user's name.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"admin@example.com", "ADMİN@example.com", "k@example.co\u212a", "a@bücher.example",
		"a@xn--bcher-kva.example", "аdmin@example.com", " a@b.c ", "a@例え.jp", "a@b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := mailaddr.Canonical(in)
		if err != nil {
			return
		}
		for i := 0; i < len(got); i++ {
			if got[i] >= utf8.RuneSelf {
				t.Fatalf("Canonical(%q) = %q, not ASCII", in, got)
			}
		}
		if again, err := mailaddr.Canonical(got); err != nil || again != got {
			t.Fatalf("Canonical(Canonical(%q)) = %q, %v, want %q", in, again, err, got)
		}
		if n := gatehouse.NormalizeEmail(got); n != got {
			t.Fatalf("NormalizeEmail(%q) = %q", got, n)
		}
		local, _, _ := strings.Cut(strings.TrimSpace(in), "@")
		gotLocal, _, _ := strings.Cut(got, "@")
		if !strings.EqualFold(local, gotLocal) || len(local) != len(gotLocal) {
			t.Fatalf("Canonical(%q) = %q: the local part changed beyond ASCII case", in, got)
		}
	})
}
