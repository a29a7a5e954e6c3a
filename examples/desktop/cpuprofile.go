package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"
)

// cpuProfileEnv names an environment variable for measurements: when it
// holds a path prefix, the process writes CPU profiles of itself, one per
// 30 s window, to PREFIX.000, PREFIX.001, … (`go tool pprof` merges any
// number of them: `go tool pprof -top desktop PREFIX.0*`), and a heap
// profile at the end of each window to PREFIX.heap.000, … A window is
// written when it ends, or when the process exits after a signal
// (flushProfile). PREFIX.heappeak is the heap profile taken when the heap was
// largest (see watchHeapPeak), with PREFIX.heappeak.txt saying how large and
// when: what held the memory at the daemon's peak RSS. scripts/bench-bigsync.py sets it with --profile. Unset (the
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
	go watchHeapPeak(prefix)
	go profileWindows(prefix)
}

// profileMu serialises the windows with flushProfile, so the window that
// runs when the process exits is written whole.
var profileMu sync.Mutex

// profileDone, once set, stops the windows (the process is exiting).
var profileDone bool

func profileWindows(prefix string) {
	for i := 0; ; i++ {
		profileMu.Lock()
		if profileDone {
			profileMu.Unlock()
			return
		}
		f, err := os.Create(fmt.Sprintf("%s.%03d", prefix, i))
		if err != nil {
			profileMu.Unlock()
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			profileMu.Unlock()
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
			f.Close()
			return
		}
		profileFile = f
		profileMu.Unlock()
		time.Sleep(cpuProfileWindow) // the window's length, not a wait for readiness
		profileMu.Lock()
		if profileDone {
			profileMu.Unlock()
			return
		}
		pprof.StopCPUProfile()
		f.Close()
		profileFile = nil
		profileMu.Unlock()
		if h, err := os.Create(fmt.Sprintf("%s.heap.%03d", prefix, i)); err == nil {
			_ = pprof.WriteHeapProfile(h)
			h.Close()
		}
	}
}

// profileFile is the window being written, if any.
var profileFile *os.File

// flushProfile ends the current CPU profile window, so a daemon stopped
// mid-window (SIGTERM from a benchmark script) keeps its last seconds. It
// does nothing when no profile is being written.
func flushProfile() {
	profileMu.Lock()
	defer profileMu.Unlock()
	profileDone = true
	if profileFile != nil {
		pprof.StopCPUProfile()
		profileFile.Close()
		profileFile = nil
	}
}

// heapPeakPeriod is how often watchHeapPeak samples the heap's size.
const heapPeakPeriod = 500 * time.Millisecond

// watchHeapPeak samples the heap's size (objects plus the garbage not yet
// collected, and the process's total Go memory beside it) twice a second
// and, each time it exceeds the largest seen by an eighth, rewrites
// prefix.heappeak with a heap profile (live objects as of the last
// collection: what the peak is made of) and prefix.heappeak.txt with the
// figures. Reading runtime/metrics does not stop the world, so the probe
// costs little between peaks.
func watchHeapPeak(prefix string) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	start := time.Now()
	var peak uint64
	for {
		time.Sleep(heapPeakPeriod) // a sampling period, not a wait for readiness
		metrics.Read(samples)
		heap := samples[0].Value.Uint64()
		if heap < 16<<20 || heap < peak+peak/8 {
			continue
		}
		peak = heap
		runtime.GC() // the profile then names what is live at the peak
		metrics.Read(samples)
		if h, err := os.Create(prefix + ".heappeak"); err == nil {
			_ = pprof.WriteHeapProfile(h)
			h.Close()
		}
		note := fmt.Sprintf("at %.1fs: heap objects before GC %d MiB, live after GC %d MiB, Go total %d MiB\n",
			time.Since(start).Seconds(), heap>>20, samples[2].Value.Uint64()>>20, samples[1].Value.Uint64()>>20)
		_ = os.WriteFile(prefix+".heappeak.txt", []byte(note), 0o600)
	}
}
