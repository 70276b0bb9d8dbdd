package engine

// setTable holds every distinct permission set of a snapshot in one slab of
// words: set i occupies slab[i*words : (i+1)*words]. Identical sets are
// stored once, so 100k users holding a handful of distinct role
// combinations share a handful of sets.
type setTable struct {
	words int
	slab  []uint64
	// index maps a set's hash to the sets with that hash; Compile only.
	index map[uint64][]int32
}

func newSetTable(nperms int) *setTable {
	// At least one word, so that a policy without permissions still has an
	// addressable empty set.
	t := &setTable{words: max(1, (nperms+63)/64), index: make(map[uint64][]int32)}
	t.intern(make([]uint64, t.words)) // set 0 is the empty set
	return t
}

// intern returns the index of the set equal to bits, adding it if new. The
// table keeps no reference to bits.
func (t *setTable) intern(bits []uint64) int32 {
	h := hashWords(bits)
	for _, i := range t.index[h] {
		if equalWords(t.set(i), bits) {
			return i
		}
	}
	i := int32(t.count())
	t.slab = append(t.slab, bits...)
	t.index[h] = append(t.index[h], i)
	return i
}

func (t *setTable) count() int { return len(t.slab) / t.words }

// set returns the words of set i.
func (t *setTable) set(i int32) []uint64 {
	off := int(i) * t.words
	return t.slab[off : off+t.words]
}

// has reports whether set i holds permission p.
func (t *setTable) has(i, p int32) bool {
	return t.slab[int(i)*t.words+int(p>>6)]&(1<<(uint(p)&63)) != 0
}

// orInto adds the members of set i to dst.
func (t *setTable) orInto(dst []uint64, i int32) {
	for k, w := range t.set(i) {
		dst[k] |= w
	}
}

// seal drops the compile-time index.
func (t *setTable) seal() { t.index = nil }

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
