package engine

import (
	"math/bits"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// emailTable finds users by canonical email (gatehouse.NormalizeEmail). It
// is an open-addressing hash table of 8-byte slots, at most half full, that
// hashes and compares emails with ASCII letters folded to lower case, so a
// lookup needs no lower-cased copy of the request's email. A slot holds a
// 32-bit tag of the hash and the user's index; the email itself is read
// from the user's hot record, where it is inline (subjectHot.email), so a
// cold lookup touches the slot's cache line and the hot record's, which
// Check reads anyway. The table never changes after Compile: derived
// snapshots keep every user and email.
type emailTable struct {
	slots []emailSlot
	mask  uint64
}

type emailSlot struct {
	tag uint32
	// user is the user's index plus one; 0 marks an empty slot.
	user int32
}

func newEmailTable(users int) emailTable {
	n := 1 << bits.Len(uint(2*max(users, 1)))
	return emailTable{slots: make([]emailSlot, n), mask: uint64(n - 1)}
}

// emailHashKey seeds the hash; it is fixed so that a compile is
// deterministic.
const emailHashKey = 0x9e3779b97f4a7c15

// foldHash hashes s with its ASCII letters folded to lower case, eight
// bytes at a time (a wyhash-style multiply-fold of each word).
func foldHash(s string) uint64 {
	h := uint64(emailHashKey) ^ uint64(len(s))
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = mix(h, foldWord(w))
		s = s[8:]
	}
	if len(s) > 0 {
		var w uint64
		for i := len(s) - 1; i >= 0; i-- {
			w = w<<8 | uint64(s[i])
		}
		h = mix(h, foldWord(w))
	}
	return mix(h, 0xa0761d6478bd642f)
}

func mix(h, w uint64) uint64 {
	hi, lo := bits.Mul64(h^w, 0xe7037ed1a0b428db)
	return hi ^ lo
}

// foldWord lower-cases the ASCII letters among the eight bytes of w: a byte
// b gets 0x20 added where 'A' <= b <= 'Z', computed on all bytes at once.
func foldWord(w uint64) uint64 {
	const ones = 0x0101010101010101
	low := w & (0x7f * ones)
	geA := low + (0x80-'A')*ones
	gtZ := low + (0x80-'Z'-1)*ones
	upper := geA &^ gtZ &^ w & (0x80 * ones)
	return w | upper>>2
}

// foldEqual reports whether s equals the canonical email email once its
// ASCII letters are folded to lower case.
func foldEqual[T string | []byte](s string, email T) bool {
	if len(s) != len(email) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != email[i] {
			return false
		}
	}
	return true
}

// lookupEmail finds a user by a trimmed email, case-insensitively, without
// allocating for an ASCII email.
func (s *Snapshot) lookupEmail(email string) (int32, bool) {
	for i := 0; i < len(email); i++ {
		if email[i] >= utf8.RuneSelf {
			// Users are keyed by canonical emails; never fold Unicode,
			// which would map look-alikes onto them: canonicalize as the
			// policy's emails were.
			email = gatehouse.NormalizeEmail(email)
			break
		}
	}
	t := &s.emails
	h := foldHash(email)
	tag := uint32(h >> 32)
	for pos := h & t.mask; ; pos = (pos + 1) & t.mask {
		sl := t.slots[pos]
		if sl.user == 0 {
			return 0, false
		}
		if sl.tag == tag && s.userHasEmail(sl.user-1, email) {
			return sl.user - 1, true
		}
	}
}

// userHasEmail reports whether user u's canonical email is email, folded.
func (s *Snapshot) userHasEmail(u int32, email string) bool {
	h := s.hot.at(u)
	if h.emailLen > 0 {
		return foldEqual(email, h.email[:h.emailLen])
	}
	id := s.subjects.at(u).ref.ID
	return foldEqual(email, id)
}

// findUser finds the user with canonical email email while compiling.
func (c *compiler) findUser(email string) (int32, bool) {
	return c.addUser(email, -1)
}

// addUser enters user u with canonical email email, or returns the index of
// the user that already has it; u -1 only looks.
func (c *compiler) addUser(email string, u int32) (dup int32, found bool) {
	t := &c.s.emails
	h := foldHash(email)
	tag := uint32(h >> 32)
	for pos := h & t.mask; ; pos = (pos + 1) & t.mask {
		sl := &t.slots[pos]
		if sl.user == 0 {
			if u >= 0 {
				*sl = emailSlot{tag: tag, user: u + 1}
			}
			return 0, false
		}
		if sl.tag == tag && c.subjects[sl.user-1].ref.ID == email {
			return sl.user - 1, true
		}
	}
}

// setEmail keeps email inline in h if it fits.
func (h *subjectHot) setEmail(email string) {
	if len(email) <= len(h.email) {
		h.emailLen = uint8(copy(h.email[:], email))
	}
}
