package engine

// pageShift sizes the pages of a paged array: 1024 records.
const (
	pageShift = 10
	pageMask  = 1<<pageShift - 1
)

// paged is an array of per-subject records cut into fixed-size pages, so
// that a snapshot derived from another (Snapshot.Derive) copies only
// the list of pages and the pages it changes, and shares the rest.
type paged[T any] struct {
	pages [][]T
	n     int32
}

// pagedOf cuts flat into pages that share its memory. Every page's capacity
// is its length, so that no page is ever appended to in place.
func pagedOf[T any](flat []T) paged[T] {
	p := paged[T]{n: int32(len(flat))}
	for off := 0; off < len(flat); off += 1 << pageShift {
		end := min(off+1<<pageShift, len(flat))
		p.pages = append(p.pages, flat[off:end:end])
	}
	return p
}

// at returns record i, which must be below len.
func (p *paged[T]) at(i int32) *T { return &p.pages[i>>pageShift][i&pageMask] }

// len is the number of records.
func (p *paged[T]) len() int32 { return p.n }

// cloneList returns p with its own list of pages, which still shares every
// page with p.
func (p *paged[T]) cloneList() paged[T] {
	return paged[T]{pages: append([][]T(nil), p.pages...), n: p.n}
}

// put sets record i of p, whose list of pages p must own (cloneList),
// copying the page first unless owned says this p already copied it.
func (p *paged[T]) put(i int32, v T, owned map[int32]bool) {
	pg := i >> pageShift
	if !owned[pg] {
		p.pages[pg] = append([]T(nil), p.pages[pg]...)
		owned[pg] = true
	}
	p.pages[pg][i&pageMask] = v
}

// push appends v to p, whose list of pages p must own (cloneList), copying
// the last page first unless owned says this p already copied it or made
// it.
func (p *paged[T]) push(v T, owned map[int32]bool) {
	pg := p.n >> pageShift
	if p.n&pageMask == 0 {
		p.pages = append(p.pages, make([]T, 0, 1<<pageShift))
		owned[pg] = true
	} else if !owned[pg] {
		p.pages[pg] = append(make([]T, 0, 1<<pageShift), p.pages[pg]...)
		owned[pg] = true
	}
	p.pages[pg] = append(p.pages[pg], v)
	p.n++
}
