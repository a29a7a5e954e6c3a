//go:build !unix

package gitstore

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
