package engine

import "unsafe"

// hugeMin is the size from which a snapshot's array asks for huge pages:
// two of them, so that at least one whole aligned page lies inside it.
const hugeMin = 4 << 20

// hugeMake returns make([]T, n, c), asking the kernel to back its memory
// with transparent huge pages when it is large (adviseHuge). A check at
// 1M users reads an email slot and then the user's record, each at a
// random place in an array of tens or hundreds of megabytes: with 4 KiB
// pages each read also misses the TLB, and a page walk (under a
// hypervisor, a nested one) costs about as much as the read. Huge pages
// cover those arrays with a few hundred TLB entries instead of tens of
// thousands (docs/benchmarks.md, "Check at 1M users").
func hugeMake[T any](n, c int) []T {
	s := make([]T, n, c)
	if size := uintptr(c) * unsafe.Sizeof(*new(T)); size >= hugeMin {
		adviseHuge(unsafe.Pointer(unsafe.SliceData(s)), size)
	}
	return s
}
