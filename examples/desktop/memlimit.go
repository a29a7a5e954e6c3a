package main

import (
	"os"
	"runtime/debug"
)

// daemonMemoryLimit is the soft memory limit the desktop sets for itself
// (runtime/debug.SetMemoryLimit) unless GOMEMLIMIT is set: the garbage
// collector then works harder as the process nears it instead of letting
// the heap grow to twice what is live. A first sync of 100,000 files kept
// about 100 MiB live on the receiving side but reached 348 MiB of RSS, and
// the sender's scan and export together peaked near 300 MiB live (see
// BENCHMARKS.md, "Peak RSS of a 100,000-file first sync"). It is soft: a
// process that needs more gets more (the collector's CPU share is capped
// at about half), so nothing fails for want of memory; the limit bounds
// the garbage, not the work. GOMEMLIMIT=off gives the runtime's default
// (no limit).
const daemonMemoryLimit = 240 << 20

func init() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return // the runtime read it already
	}
	debug.SetMemoryLimit(daemonMemoryLimit)
}
