//go:build !unix

package policy

import "time"

// processCPU is unknown here; BenchmarkParse then reports no cpu-ns/op.
func processCPU() time.Duration { return 0 }
