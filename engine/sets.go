package engine

import "math/bits"

// setTable holds every distinct permission set of a snapshot: the roles'
// and the merged sets of subjects with many sources. Identical sets are
// stored once.
//
// Compile builds the table in chunks of 2^shift sets, so that growing it
// never copies what it holds; seal flattens them into one slab, in which set
// i occupies slab[i*words : (i+1)*words], because the extra indirection of
// chunks costs Check a measurable few nanoseconds.
type setTable struct {
	words int
	slab  []uint64

	// Compile only: chunks[i>>shift] holds set i at words*(i&mask), and a
	// hash index whose collisions chain through next.
	shift  uint
	mask   int32
	chunks [][]uint64
	n      int32
	index  map[uint64]int32
	next   []int32
}

// chunkWords bounds a chunk: 512 KiB.
const chunkWords = 1 << 16

func newSetTable(nperms int) *setTable {
	// At least one word, so that a policy without permissions still has an
	// addressable empty set.
	words := max(1, (nperms+63)/64)
	shift := uint(bits.Len(uint(max(1, chunkWords/words)))) - 1
	t := &setTable{words: words, shift: shift, mask: 1<<shift - 1, index: make(map[uint64]int32)}
	t.intern(make([]uint64, words)) // set 0 is the empty set
	return t
}

// intern returns the index of the set equal to bits, adding it if new. The
// table keeps no reference to bits.
func (t *setTable) intern(bits []uint64) int32 {
	h := hashWords(bits)
	first, seen := t.index[h]
	if seen {
		for i := first; i >= 0; i = t.next[i] {
			if equalWords(t.set(i), bits) {
				return i
			}
		}
	} else {
		first = -1
	}
	i := t.n
	if i&t.mask == 0 {
		t.chunks = append(t.chunks, make([]uint64, 0, (int(t.mask)+1)*t.words))
	}
	last := &t.chunks[len(t.chunks)-1]
	*last = append(*last, bits...)
	t.next = append(t.next, first)
	t.index[h] = i
	t.n++
	return i
}

// set returns the words of set i while compiling.
func (t *setTable) set(i int32) []uint64 {
	off := int(i&t.mask) * t.words
	return t.chunks[i>>t.shift][off : off+t.words]
}

// seal flattens the chunks into the slab. The hash index stays: a derived
// snapshot (Snapshot.Derive) looks up the sets it needs in it.
func (t *setTable) seal() {
	t.slab = make([]uint64, 0, int(t.n)*t.words)
	for _, c := range t.chunks {
		t.slab = append(t.slab, c...)
	}
	t.chunks = nil
}

// sealedSet returns the words of set i after seal.
func (t *setTable) sealedSet(i int32) []uint64 {
	off := int(i) * t.words
	return t.slab[off : off+t.words : off+t.words]
}

// internSealed is intern after seal, for a table a derived snapshot owns:
// a set that Compile interned is found through the index, any other is
// appended to the slab (not indexed; the next Compile dedups it again).
func (t *setTable) internSealed(bits []uint64) int32 {
	if first, ok := t.index[hashWords(bits)]; ok {
		for i := first; i >= 0; i = t.next[i] {
			if equalWords(t.sealedSet(i), bits) {
				return i
			}
		}
	}
	t.slab = append(t.slab, bits...)
	t.n++
	return t.n - 1
}

// has reports whether set i holds permission p; only after seal.
func (t *setTable) has(i, p int32) bool {
	return t.slab[int(i)*t.words+int(p>>6)]&(1<<(uint(p)&63)) != 0
}

func setBit(bits []uint64, p int32) { bits[p>>6] |= 1 << (uint(p) & 63) }

func clearWords(bits []uint64) {
	for i := range bits {
		bits[i] = 0
	}
}

func equalWords(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hashWords is FNV-1a over the words.
func hashWords(bits []uint64) uint64 {
	h := uint64(14695981039346656037)
	for _, w := range bits {
		h ^= w
		h *= 1099511628211
	}
	return h
}
