//go:build !linux

package engine_test

import "time"

// threadCPU is the CPU time the calling OS thread has used; 0 where it
// cannot be read, as here.
func threadCPU() time.Duration { return 0 }
