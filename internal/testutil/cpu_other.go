//go:build !unix

package testutil

import "time"

// ProcessCPU is not measured on this system: it returns 0, and benchmarks
// report no CPU figures.
func ProcessCPU() time.Duration { return 0 }
