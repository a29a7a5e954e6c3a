package gitstore

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// peakRSS returns the process's peak resident set size (VmHWM) in bytes,
// and resetPeakRSS restarts it (Linux; 0 elsewhere).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func resetPeakRSS() {
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM
}

// writeLargeFile writes size bytes of incompressible data to p.
func writeLargeFile(tb testing.TB, p string, size int64) {
	tb.Helper()
	testutil.WriteRandomFile(tb, p, size, 7)
}

// BenchmarkLargeFileRSS commits one large file (PEERSYNC_BENCH_LARGE_MIB,
// default 1024 MiB of random bytes), writes its bundle to a file and applies
// it to a second store, reporting the peak RSS of each step (target: under
// 150 MiB each, docs/design.md section 9).
func BenchmarkLargeFileRSS(b *testing.B) {
	size := int64(benchEnvInt("PEERSYNC_BENCH_LARGE_MIB", 1024)) << 20
	ctx := context.Background()
	var scanPeak, bundlePeak, applyPeak int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		src := openBenchStore(b, nil)
		dst := openBenchStore(b, nil)
		writeLargeFile(b, filepath.Join(src.Dir(), "large.bin"), size)
		bundlePath := filepath.Join(b.TempDir(), "large.bundle")
		b.StartTimer()

		resetPeakRSS()
		ch, err := src.Scan(ctx)
		require.NoError(b, err)
		require.Len(b, ch, 1)
		scanPeak = max(scanPeak, peakRSS())

		resetPeakRSS()
		writeBundleFile(b, ctx, src, bundlePath)
		bundlePeak = max(bundlePeak, peakRSS())

		resetPeakRSS()
		f, err := os.Open(bundlePath)
		require.NoError(b, err)
		res, err := dst.ApplyBundle(ctx, bufio.NewReaderSize(f, 1<<20), peerA)
		f.Close()
		require.NoError(b, err)
		require.Equal(b, FastForward, res.Kind)
		applyPeak = max(applyPeak, peakRSS())

		b.StopTimer()
		fi, err := os.Stat(filepath.Join(dst.Dir(), "large.bin"))
		require.NoError(b, err)
		require.Equal(b, size, fi.Size())
		b.StartTimer()
	}
	b.ReportMetric(float64(scanPeak)/(1<<20), "scan-peak-MiB")
	b.ReportMetric(float64(bundlePeak)/(1<<20), "bundle-peak-MiB")
	b.ReportMetric(float64(applyPeak)/(1<<20), "apply-peak-MiB")
}
