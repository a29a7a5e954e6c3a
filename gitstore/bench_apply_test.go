package gitstore

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// heapPeak samples runtime.MemStats.HeapInuse until stop is called and
// returns the largest value seen, in bytes.
func heapPeak() (stop func() uint64) {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		if prof := os.Getenv("PEERSYNC_BENCH_HEAP_PROFILE"); prof != "" && ms.HeapInuse > peak+8<<20 {
			// Debugging aid: the heap profile near the peak.
			if f, err := os.Create(prof); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// BenchmarkApplyBundleMemory applies the bundle of a whole N-commit history
// (a first sync of N small files, PEERSYNC_BENCH_FILES in
// PEERSYNC_BENCH_DIRS folders) from a file to an empty store, and reports
// the peak heap in use (HeapInuse, sampled every 20 ms) and the process's
// peak RSS (VmHWM) during the apply alone: the source store is closed and
// the generated data dropped before it starts (target: under 150 MiB).
// With PEERSYNC_BENCH_BUNDLE_OUT set, the bundle is written (and left)
// there, for scripts/bench-gitstore.sh to clone it with git.
// writeHistoryBundle writes to path the bundle of a whole history of n
// generated files in dirs folders, one commit each. Not openBenchStore:
// nothing keeps the source store (or its files) alive after it.
func writeHistoryBundle(b *testing.B, n, dirs int, path string) {
	ctx := context.Background()
	dir := b.TempDir()
	writeBenchFiles(b, dir, genBenchFiles(n, dirs))
	src, err := Open(Config{Dir: dir, Create: true, AuthorName: "bench", AuthorEmail: "bench@peersync",
		Now: newClock(benchMtime).Now})
	require.NoError(b, err)
	_, err = src.Scan(ctx)
	require.NoError(b, err)
	writeBundleFile(b, ctx, src, path)
	require.NoError(b, src.Close())
	require.NoError(b, os.RemoveAll(dir))
}

func BenchmarkApplyBundleMemory(b *testing.B) {
	n, dirs := benchSizes()
	ctx := context.Background()
	bundlePath := filepath.Join(b.TempDir(), "full.bundle")
	if p := os.Getenv("PEERSYNC_BENCH_BUNDLE_OUT"); p != "" {
		bundlePath = p // kept, for the script's git side
	}
	writeHistoryBundle(b, n, dirs, bundlePath)
	fi, err := os.Stat(bundlePath)
	require.NoError(b, err)
	b.ResetTimer()
	var heap uint64
	var rss int64
	var apply time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dst := openBenchStore(b, nil)
		f, err := os.Open(bundlePath)
		require.NoError(b, err)
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
		stop := heapPeak()
		b.StartTimer()
		t0 := time.Now()
		res, err := dst.ApplyBundle(ctx, bufio.NewReaderSize(f, 1<<20), peerA)
		apply += time.Since(t0)
		b.StopTimer()
		heap = max(heap, stop())
		rss = max(rss, peakRSS())
		f.Close()
		require.NoError(b, err)
		require.Equal(b, FastForward, res.Kind)
		require.Len(b, res.Changed, n)
		require.NoError(b, dst.Close())
		require.NoError(b, os.RemoveAll(dst.Dir()))
		b.StartTimer()
	}
	b.ReportMetric(float64(fi.Size()), "bundle-bytes")
	b.ReportMetric(apply.Seconds()/float64(b.N), "apply-s")
	b.ReportMetric(float64(heap)/(1<<20), "heap-peak-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "apply-peak-MiB")
}
