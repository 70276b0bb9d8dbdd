//go:build !linux

package engine

import "unsafe"

// adviseHuge does nothing where the kernel takes no huge-page advice.
func adviseHuge(unsafe.Pointer, uintptr) {}
