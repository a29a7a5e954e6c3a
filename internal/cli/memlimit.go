package cli

import (
	"os"
	"runtime/debug"
)

// DaemonMemoryLimit is the soft memory limit the desktop and the server set
// for themselves (SoftMemoryLimit): the garbage collector then works harder
// as the process nears it instead of letting the heap grow to twice what is
// live. A first sync of 100,000 files kept about 100 MiB live on the
// receiving side but reached 348 MiB of RSS, and the sender's scan and
// export together peaked near 300 MiB live (see BENCHMARKS.md, "Peak RSS of
// a 100,000-file first sync"). It is soft: a process that needs more gets
// more (the collector's CPU share is capped at about half), so nothing fails
// for want of memory; the limit bounds the garbage, not the work.
const DaemonMemoryLimit = 240 << 20

// SoftMemoryLimit sets limit as the process's soft memory limit
// (runtime/debug.SetMemoryLimit), unless the environment sets GOMEMLIMIT
// (which the runtime has read already; GOMEMLIMIT=off gives the runtime's
// default, no limit). It reports whether it set the limit.
func SoftMemoryLimit(limit int64) bool {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return false
	}
	debug.SetMemoryLimit(limit)
	return true
}
