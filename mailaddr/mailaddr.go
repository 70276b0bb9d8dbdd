// Package mailaddr holds the one rule by which Gatehouse normalizes an
// email address, in policies, in the store and on every credential path:
//
//   - surrounding white space is trimmed and the address is split at its
//     one '@' into a local part and a domain, both non-empty;
//   - the local part must be printable ASCII and is ASCII case-folded;
//     a non-ASCII local part is refused rather than normalized, because no
//     Unicode rule makes "аdmin" (Cyrillic а) and "admin" safely distinct
//     or equal;
//   - the domain is ASCII case-folded, then checked and converted to its
//     IDNA A-label ("xn--…") form with the IDNA 2008 registration profile
//     (golang.org/x/net/idna), which maps nothing: a character such as the
//     Kelvin sign (U+212A) that other rules fold into "k" is refused; every
//     label's letters must come from one script (Chinese, Japanese and
//     Korean scripts count as one and may mix with Latin).
//
// Unicode case-folding is never applied: strings.ToLower("admİn") is
// "admin", which let a token for a look-alike name become another user.
// The result is ASCII, so gatehouse.NormalizeEmail (trim and ASCII fold)
// leaves it unchanged and may be used to compare canonical addresses.
package mailaddr

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Canonical returns the canonical form of the address addr, or an error
// saying why addr is not an address Gatehouse accepts.
func Canonical(addr string) (string, error) { return canonical(addr, nil) }

// A Cache canonicalizes many addresses, converting each domain once: a
// policy's users share a few domains, and IDNA conversion is most of the
// cost of Canonical. The zero Cache is ready; it is not safe for concurrent
// use.
type Cache struct {
	domains map[string]string
}

// Canonical is the package's Canonical, remembering the A-label form of
// each valid domain.
func (c *Cache) Canonical(addr string) (string, error) { return canonical(addr, c) }

func canonical(addr string, c *Cache) (string, error) {
	addr = strings.TrimSpace(addr)
	if !utf8.ValidString(addr) {
		return "", fmt.Errorf("email %q is not valid UTF-8", addr)
	}
	local, domain, ok := strings.Cut(addr, "@")
	switch {
	case !ok || local == "" || domain == "":
		return "", fmt.Errorf("email %q: want LOCAL@DOMAIN", addr)
	case strings.Contains(domain, "@"):
		return "", fmt.Errorf("email %q has more than one @", addr)
	}
	for _, c := range []byte(local) {
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("email %q: the part before @ must be printable ASCII without spaces", addr)
		}
	}
	folded := foldASCII(domain)
	if ascii, ok := c.domain(folded); ok {
		return foldASCII(local) + "@" + ascii, nil
	}
	ascii, err := idna.Registration.ToASCII(folded)
	if err != nil {
		return "", fmt.Errorf("email %q: domain: %v", addr, err)
	}
	unicodeDomain, err := idna.Registration.ToUnicode(ascii)
	if err != nil {
		return "", fmt.Errorf("email %q: domain: %v", addr, err)
	}
	for label := range strings.SplitSeq(unicodeDomain, ".") {
		if a, b, mixed := mixedScripts(label); mixed {
			return "", fmt.Errorf("email %q: domain label %q mixes the %s and %s scripts", addr, label, a, b)
		}
	}
	c.remember(folded, ascii)
	return foldASCII(local) + "@" + ascii, nil
}

// domain returns the A-label form of a folded domain c found valid before.
func (c *Cache) domain(folded string) (string, bool) {
	if c == nil {
		return "", false
	}
	ascii, ok := c.domains[folded]
	return ascii, ok
}

// remember records that folded is a valid domain whose A-label form is
// ascii.
func (c *Cache) remember(folded, ascii string) {
	if c == nil {
		return
	}
	if c.domains == nil {
		c.domains = map[string]string{}
	}
	c.domains[folded] = ascii
}

// foldASCII lower-cases the ASCII letters of s and nothing else.
func foldASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// cjk are the scripts that one label may combine, with Latin, as Chinese,
// Japanese and Korean text does.
var cjk = map[string]bool{"Han": true, "Hiragana": true, "Katakana": true, "Hangul": true, "Bopomofo": true}

// mixedScripts reports whether the letters of label come from more than
// one script, and names two of them.
func mixedScripts(label string) (string, string, bool) {
	var seen []string
	for _, r := range label {
		if r < utf8.RuneSelf && !unicode.IsLetter(r) {
			continue
		}
		sc := scriptOf(r)
		if sc == "" {
			continue
		}
		if !slices.Contains(seen, sc) {
			seen = append(seen, sc)
		}
	}
	if len(seen) < 2 {
		return "", "", false
	}
	for i, a := range seen {
		for _, b := range seen[i+1:] {
			if !compatible(a, b) {
				return a, b, true
			}
		}
	}
	return "", "", false
}

// compatible reports whether scripts a and b may share a label.
func compatible(a, b string) bool {
	return (cjk[a] || a == "Latin") && (cjk[b] || b == "Latin")
}

// scriptOf names r's script, or "" for the Common and Inherited ones
// (digits, hyphens, combining marks) that any script may use.
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		return "Latin"
	}
	for name, table := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
			return name
		}
	}
	return ""
}
