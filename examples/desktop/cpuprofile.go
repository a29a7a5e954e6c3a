package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"time"
)

// cpuProfileEnv names an environment variable for measurements: when it
// holds a path prefix, the process writes CPU profiles of itself, one per
// 30 s window, to PREFIX.000, PREFIX.001, … (`go tool pprof` merges any
// number of them: `go tool pprof -top desktop PREFIX.0*`), and a heap
// profile at the end of each window to PREFIX.heap.000, … A window is
// written when it ends, so a process stopped mid-window loses at most its
// last 30 s. scripts/bench-bigsync.py sets it with --profile. Unset (the
// normal case), nothing happens; like debugstats.go it is a probe, not a
// service, so nothing stops it.
const cpuProfileEnv = "PEERSYNC_CPUPROFILE"

// cpuProfileWindow is the length of one profile file's window.
const cpuProfileWindow = 30 * time.Second

func init() {
	prefix := os.Getenv(cpuProfileEnv)
	if prefix == "" {
		return
	}
	go func() {
		for i := 0; ; i++ {
			f, err := os.Create(fmt.Sprintf("%s.%03d", prefix, i))
			if err != nil {
				fmt.Fprintln(os.Stderr, "cpu profile:", err)
				return
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintln(os.Stderr, "cpu profile:", err)
				f.Close()
				return
			}
			time.Sleep(cpuProfileWindow) // the window's length, not a wait for readiness
			pprof.StopCPUProfile()
			f.Close()
			if h, err := os.Create(fmt.Sprintf("%s.heap.%03d", prefix, i)); err == nil {
				_ = pprof.WriteHeapProfile(h)
				h.Close()
			}
		}
	}()
}
