//go:build !unix

package transport

import "time"

// processCPU is not measured here: the benchmark reports no CPU figures.
func processCPU() time.Duration { return 0 }
