package engine

import (
	"math/bits"

	"github.com/gatehouse/gatehouse"
)

// emailTable finds users by canonical email (gatehouse.NormalizeEmail). It
// is an open-addressing hash table of 8-byte slots, at most half full, that
// hashes and compares emails with ASCII letters folded to lower case, so a
// lookup needs no lower-cased copy of the request's email. A slot holds a
// 32-bit tag of the hash and the offset of the user's record in
// Snapshot.records, which holds the user's email: a cold lookup touches
// the slot's cache line and then the record's, which Check reads anyway,
// and nothing in between. Check first looks where userPlaces puts the
// record, which saves the slot's read for nearly every compiled user; the
// table finds the others, and leads Derive to a user's slot and record
// wherever they are. The slots are paged like the records, so that a
// derived snapshot (Derive) that moves a user's record copies one page of
// slots. The table is sized at Compile and holds the compiled users; the
// users derivations add are in the snapshot's overlay.
type emailTable struct {
	slots paged[emailSlot]
	mask  uint64
}

type emailSlot struct {
	tag uint32
	// rec is the offset of the user's record plus one; 0 marks an empty
	// slot.
	rec int32
}

func newEmailTable(users int) emailTable {
	n := 1 << bits.Len(uint(2*max(users, 1)))
	return emailTable{slots: pagedOf(hugeMake[emailSlot](n, n)), mask: uint64(n - 1)}
}

// emailHashKey seeds the hash; it is fixed so that a compile is
// deterministic.
const emailHashKey = 0x9e3779b97f4a7c15

// foldHash hashes s with its ASCII letters folded to lower case, eight
// bytes at a time (a wyhash-style multiply-fold of each word).
func foldHash(s string) uint64 {
	h := uint64(emailHashKey) ^ uint64(len(s))
	for i := 0; i < len(s); i += 8 {
		h = mix(h, foldWord(word(s, i)))
	}
	return mix(h, 0xa0761d6478bd642f)
}

// hashEmailWords is foldHash of the string of n bytes whose folded words are
// words.
func hashEmailWords(n int, words []uint64) uint64 {
	h := uint64(emailHashKey) ^ uint64(n)
	for _, w := range words {
		h = mix(h, w)
	}
	return mix(h, 0xa0761d6478bd642f)
}

// stackWords bounds the emails lookupEmail folds on the stack: 256 bytes.
const stackWords = 32

func mix(h, w uint64) uint64 {
	hi, lo := bits.Mul64(h^w, 0xe7037ed1a0b428db)
	return hi ^ lo
}

// word returns the eight bytes of s from i, little-endian, padded with
// zeros past the end of s.
func word(s string, i int) uint64 {
	if i+8 <= len(s) {
		return fullWord(s[i : i+8])
	}
	return tailWord(s, i)
}

// fullWord is the eight bytes of b, little-endian, which the compiler
// loads at once.
func fullWord(b string) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// tailWord is word for the last, short word of s.
func tailWord(s string, i int) uint64 {
	var w uint64
	for k := len(s) - 1; k >= i; k-- {
		w = w<<8 | uint64(s[k])
	}
	return w
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

// lookupEmail finds a user by a trimmed email, case-insensitively, without
// allocating for an ASCII email of up to 8*stackWords bytes. It returns
// the user's index and the offset of its record.
func (s *Snapshot) lookupEmail(email string) (user, rec int32, ok bool) {
	var buf [stackWords]uint64
	words, ascii := foldWords(email, buf[:0])
	if !ascii {
		// Users are keyed by canonical emails; never fold Unicode, which
		// would map look-alikes onto them: canonicalize as the policy's
		// emails were.
		email = gatehouse.NormalizeEmail(email)
		words, _ = foldWords(email, buf[:0])
	}
	h := hashEmailWords(len(email), words)
	if u := &s.places; u.stride > 0 && len(email) > 0 {
		off, moved := u.lookup(h)
		if !moved && s.recordHas(off, len(email), words) {
			return s.records[off+recSubject].ref, off, true
		}
	}
	t := &s.emails
	tag := uint32(h >> 32)
	for pos := h & t.mask; ; pos = (pos + 1) & t.mask {
		sl := *t.slots.at(int32(pos))
		if sl.rec == 0 {
			return 0, 0, false
		}
		if sl.tag == tag && s.recordHas(sl.rec-1, len(email), words) {
			return s.records[sl.rec-1+recSubject].ref, sl.rec - 1, true
		}
	}
}

// foldWords appends the folded words of email to words and reports whether
// email is ASCII.
func foldWords(email string, words []uint64) ([]uint64, bool) {
	var high uint64
	i := 0
	for ; i+8 <= len(email); i += 8 {
		w := fullWord(email[i : i+8])
		high |= w
		words = append(words, foldWord(w))
	}
	if i < len(email) {
		w := tailWord(email, i)
		high |= w
		words = append(words, foldWord(w))
	}
	return words, high&0x8080808080808080 == 0
}

// recordHas reports whether the user whose record is at off has the
// canonical email of n bytes whose folded words are words.
func (s *Snapshot) recordHas(off int32, n int, words []uint64) bool {
	r := s.records[off:]
	if int(r[recFlags].ref>>recLenShift) != n {
		return false
	}
	for k, e := range r[recEmail : recEmail+len(words)] {
		if words[k] != uint64(uint32(e.ref))|uint64(uint32(e.tenant))<<32 {
			return false
		}
	}
	return true
}

// hasEmail reports whether the user whose record is at off has canonical
// email email, folded.
func (s *Snapshot) hasEmail(off int32, email string) bool {
	var buf [stackWords]uint64
	words, _ := foldWords(email, buf[:0])
	return s.recordHas(off, len(email), words)
}

// slot finds the slot of the user with canonical email email, or the empty
// slot where it belongs.
func (t *emailTable) slot(s *Snapshot, email string) (pos int32, found bool) {
	h := foldHash(email)
	tag := uint32(h >> 32)
	for p := h & t.mask; ; p = (p + 1) & t.mask {
		sl := *t.slots.at(int32(p))
		if sl.rec == 0 {
			return int32(p), false
		}
		if sl.tag == tag && s.hasEmail(sl.rec-1, email) {
			return int32(p), true
		}
	}
}

// setSlot points the slot at pos, of the user with canonical email email,
// at the record at off; owned is as for paged.put.
func (t *emailTable) setSlot(pos int32, email string, off int32, owned map[int32]bool) {
	sl := emailSlot{tag: uint32(foldHash(email) >> 32), rec: off + 1}
	if owned == nil {
		*t.slots.at(pos) = sl
		return
	}
	t.slots.put(pos, sl, owned)
}
