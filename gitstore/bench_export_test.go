package gitstore

// The full-bundle export benchmark: the bundle of a whole N-commit history
// (a first sync to a peer that has nothing), written by WriteBundle and by
// `git bundle create` on the same .peersync in the same run.
//
//	PEERSYNC_BENCH_FILES=100000 PEERSYNC_BENCH_DIRS=20 \
//	  go test -run '^$' -bench '^BenchmarkBundleExportFull$' -benchtime 1x ./gitstore
//
// PEERSYNC_BENCH_STORE_DIR, when set, keeps the scanned store there
// (<dir>/store-<files>-<dirs>) and reuses it on the next run: the scan of
// 100,000 files takes a while and is not what this measures.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// benchScannedStore returns a store holding the N-commit history of
// genBenchFiles(n, dirs), made by one Scan (or reused, see above).
func benchScannedStore(b *testing.B, n, dirs int) *Store {
	b.Helper()
	keep := os.Getenv("PEERSYNC_BENCH_STORE_DIR")
	if keep == "" {
		s := openBenchStore(b, genBenchFiles(n, dirs))
		_, err := s.Scan(context.Background())
		require.NoError(b, err)
		return s
	}
	dir := filepath.Join(keep, fmt.Sprintf("store-%d-%d", n, dirs))
	done := filepath.Join(keep, fmt.Sprintf("store-%d-%d.done", n, dirs))
	if _, err := os.Stat(done); err != nil {
		require.NoError(b, os.RemoveAll(dir))
		require.NoError(b, os.MkdirAll(dir, 0o755))
		writeBenchFiles(b, dir, genBenchFiles(n, dirs))
		s, err := Open(Config{Dir: dir, Create: true, AuthorName: "bench", AuthorEmail: "bench@peersync",
			Now: newClock(benchMtime).Now})
		require.NoError(b, err)
		_, err = s.Scan(context.Background())
		require.NoError(b, err)
		require.NoError(b, s.Close())
		require.NoError(b, os.WriteFile(done, nil, 0o644))
	}
	s, err := Open(Config{Dir: dir, AuthorName: "bench", AuthorEmail: "bench@peersync",
		Now: newClock(benchMtime.Add(time.Duration(n) * time.Second)).Now})
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	return s
}

// countingWriter counts the bytes written and when the first one came.
type countingWriter struct {
	w     io.Writer
	n     int64
	start time.Time
	first time.Duration
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n == 0 && len(p) > 0 {
		c.first = time.Since(c.start)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// BenchmarkBundleExportFull writes the full bundle of an N-commit history
// to a file and runs `git bundle create` of the same history (.peersync,
// main) in the same iteration. It reports ours-s, git-s, their ratio, the
// CPU time of each (user + system: on a loaded machine the fairer
// comparison; ours includes this process's garbage collector), the
// time to our first byte, and our peak RSS (VmHWM) and peak heap in use
// (HeapInuse, sampled every 20 ms) during the export.
// PEERSYNC_BENCH_CPUPROFILE names a file for a CPU profile of our side.
func BenchmarkBundleExportFull(b *testing.B) {
	n, dirs := benchSizes()
	s := benchScannedStore(b, n, dirs)
	ctx := context.Background()
	out := b.TempDir()
	b.ResetTimer()
	var ours, gits, first, oursCPU, gitCPU time.Duration
	var size, gitSize int64
	var peak int64
	var heap uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		resetPeakRSS()
		f, err := os.Create(filepath.Join(out, "ours.bundle"))
		require.NoError(b, err)
		if p := os.Getenv("PEERSYNC_BENCH_CPUPROFILE"); p != "" && i == 0 {
			pf, err := os.Create(p)
			require.NoError(b, err)
			require.NoError(b, pprof.StartCPUProfile(pf))
			defer func() { pprof.StopCPUProfile(); pf.Close() }()
		}
		stopHeap := heapPeak()
		cpu0 := testutil.ProcessCPU()
		b.StartTimer()
		t0 := time.Now()
		cw := &countingWriter{w: f, start: t0} // WriteBundle buffers
		_, err = s.WriteBundle(ctx, cw, nil)
		require.NoError(b, err)
		require.NoError(b, f.Close())
		ours += time.Since(t0)
		b.StopTimer()
		oursCPU += testutil.ProcessCPU() - cpu0
		heap = max(heap, stopHeap())
		if p := os.Getenv("PEERSYNC_BENCH_CPUPROFILE"); p != "" && i == 0 {
			pprof.StopCPUProfile()
		}
		peak = max(peak, peakRSS())
		first += cw.first
		size = cw.n

		gitOut := filepath.Join(out, "git.bundle")
		os.Remove(gitOut)
		cmd := exec.Command("git", "--git-dir", filepath.Join(s.Dir(), GitDirName), "bundle", "create", "-q", gitOut, "main")
		cmd.Env = gitEnv()
		t0 = time.Now()
		o, err := cmd.CombinedOutput()
		gits += time.Since(t0)
		require.NoError(b, err, "%s", o)
		gitCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		fi, err := os.Stat(gitOut)
		require.NoError(b, err)
		gitSize = fi.Size()
		if os.Getenv("PEERSYNC_BENCH_VERIFY") != "" {
			cmd := exec.Command("git", "--git-dir", filepath.Join(s.Dir(), GitDirName), "bundle", "verify", "-q", filepath.Join(out, "ours.bundle"))
			cmd.Env = gitEnv()
			o, err := cmd.CombinedOutput()
			require.NoError(b, err, "%s", o)
		}
		b.StartTimer()
	}
	b.ReportMetric(ours.Seconds()/float64(b.N), "ours-s")
	b.ReportMetric(gits.Seconds()/float64(b.N), "git-s")
	b.ReportMetric(ours.Seconds()/gits.Seconds(), "ours/git")
	b.ReportMetric(oursCPU.Seconds()/float64(b.N), "ours-cpu-s")
	b.ReportMetric(gitCPU.Seconds()/float64(b.N), "git-cpu-s")
	b.ReportMetric(first.Seconds()/float64(b.N), "first-byte-s")
	b.ReportMetric(float64(size), "bundle-bytes")
	b.ReportMetric(float64(gitSize), "git-bundle-bytes")
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(heap)/(1<<20), "heap-peak-MiB")
}
