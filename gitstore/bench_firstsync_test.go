package gitstore

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkFirstSyncApply is the receiving half of a first sync (issue 12,
// target 1): ApplyBundle of a whole history of 2,000 files of 1-4 KiB in 20
// folders plus one PEERSYNC_BENCH_BIG_MIB (default 256) MiB random file into
// an empty folder, read from a bundle file. Each round also times the
// reference on the same data: `cp -r` of the folder and `sync`, in
// alternating order. It reports apply-s, cp-s and their ratio (a git design
// writes the data twice, pack and checkout: the floor is about 2).
func BenchmarkFirstSyncApply(b *testing.B) {
	ctx := context.Background()
	big := int64(benchEnvInt("PEERSYNC_BENCH_BIG_MIB", 256)) << 20
	files := genBenchFiles(benchEnvInt("PEERSYNC_BENCH_FILES", 2000), 20)
	src := openBenchStore(b, files)
	plain := b.TempDir() // the same data without .peersync, for cp
	writeBenchFiles(b, plain, files)
	if big > 0 {
		writeLargeFile(b, filepath.Join(src.Dir(), "big.bin"), big)
		writeLargeFile(b, filepath.Join(plain, "big.bin"), big)
	}
	_, err := src.Scan(ctx)
	require.NoError(b, err)
	bundle := filepath.Join(b.TempDir(), "first.bundle")
	writeBundleFile(b, ctx, src, bundle)
	var apply, cp time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dst := openBenchStore(b, nil)
		ref := filepath.Join(b.TempDir(), "copy")
		runApply := func() {
			f, err := os.Open(bundle)
			require.NoError(b, err)
			defer f.Close()
			t0 := time.Now()
			b.StartTimer()
			res, err := dst.ApplyBundle(ctx, bufio.NewReaderSize(f, 1<<20), peerA)
			b.StopTimer()
			apply += time.Since(t0)
			require.NoError(b, err)
			require.Equal(b, FastForward, res.Kind)
		}
		runCp := func() {
			t0 := time.Now()
			require.NoError(b, exec.Command("cp", "-r", plain, ref).Run())
			require.NoError(b, exec.Command("sync").Run())
			cp += time.Since(t0)
		}
		if i%2 == 0 {
			runApply()
			runCp()
		} else {
			runCp()
			runApply()
		}
		os.RemoveAll(ref)
	}
	b.ReportMetric(apply.Seconds()/float64(b.N), "apply-s")
	b.ReportMetric(cp.Seconds()/float64(b.N), "cp-s")
	b.ReportMetric(float64(apply)/float64(cp), "apply/cp")
}
