package engine

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on amd64 and on arm64
// with 4 KiB base pages; where it is larger, fewer pages are advised.
const hugePage = 2 << 20

// adviseHuge marks the whole huge pages inside the size bytes at p
// MADV_HUGEPAGE, so that the kernel backs them with huge pages as they are
// first written (and khugepaged collapses them if they were written
// before). It is advice: where transparent huge pages are off (the
// kernel answers EINVAL) the memory keeps base pages and works the same.
// It is called on memory the Go heap has just allocated; the runtime
// itself leaves heap memory's huge-page advice alone.
func adviseHuge(p unsafe.Pointer, size uintptr) {
	start := (uintptr(p) + hugePage - 1) &^ (hugePage - 1)
	end := (uintptr(p) + size) &^ (hugePage - 1)
	if end <= start {
		return
	}
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start), unix.MADV_HUGEPAGE)
}
