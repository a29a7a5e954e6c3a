package gitstore

// Benchmarks of the scale hazards of docs/design.md section 3. They only run with
// -bench; scripts/bench-gitstore.sh runs them beside the git CLI on the same
// data and writes the ratios into BENCHMARKS.md.
//
// Sizes come from the environment so the same code serves a quick run and
// the full-size one:
//
//	PEERSYNC_BENCH_FILES  number of files (default 10000)
//	PEERSYNC_BENCH_DIRS   number of folders they are spread over (default 1)
//
// The data is deterministic (genBenchFiles), so TestBenchGenerate writes
// exactly the same files, plus the git fast-import stream making the same
// one-commit-per-file history, for the script's git side.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchSizes() (files, dirs int) {
	return benchEnvInt("PEERSYNC_BENCH_FILES", 10000), benchEnvInt("PEERSYNC_BENCH_DIRS", 1)
}

// benchFile is one generated file.
type benchFile struct {
	path string // slash path
	data []byte
}

// benchMtime is the modification time of every generated file: far enough
// in the past that neither our stat cache nor git's index sees it as racy.
var benchMtime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// genBenchFiles returns n files of 1-4 KiB of random bytes spread round-robin
// over dirs folders (d0000/f000000 ...; at the root when dirs == 1), sorted
// by path. The same n and dirs always give the same files.
func genBenchFiles(n, dirs int) []benchFile {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(dirs)))
	out := make([]benchFile, n)
	for i := range out {
		p := fmt.Sprintf("f%06d", i)
		if dirs > 1 {
			p = fmt.Sprintf("d%04d/f%06d", i%dirs, i)
		}
		b := make([]byte, 1024+rng.IntN(3073))
		for j := 0; j < len(b); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < len(b); k++ {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		out[i] = benchFile{p, b}
	}
	// Paths sort as generated when dirs == 1; otherwise sort by folder.
	if dirs > 1 {
		byDir := make([]benchFile, 0, n)
		for d := 0; d < dirs; d++ {
			for i := d; i < n; i += dirs {
				byDir = append(byDir, out[i])
			}
		}
		out = byDir
	}
	return out
}

// writeBenchFiles writes files under root with mtime benchMtime.
func writeBenchFiles(tb testing.TB, root string, files []benchFile) {
	tb.Helper()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		require.NoError(tb, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(tb, os.WriteFile(p, f.data, 0o644))
		require.NoError(tb, os.Chtimes(p, benchMtime, benchMtime))
	}
}

// writeFastImport writes the git fast-import stream making one commit per
// file, in the order Scan commits them, on refs/heads/main.
// from, if not empty, is the parent of the first commit (an incremental
// import).
func writeFastImport(w io.Writer, files []benchFile, t0 int64, from string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	for i, f := range files {
		msg := "add " + f.path + "\n"
		fmt.Fprintf(bw, "commit refs/heads/main\ncommitter bench <bench@peersync> %d +0000\ndata %d\n%s", t0+int64(i), len(msg), msg)
		if i == 0 && from != "" {
			fmt.Fprintf(bw, "from %s\n", from)
		}
		fmt.Fprintf(bw, "M 100644 inline %s\ndata %d\n", f.path, len(f.data))
		bw.Write(f.data)
		bw.WriteString("\n")
	}
	return bw.Flush()
}

// TestBenchGenerate writes the benchmark data for scripts/bench-gitstore.sh
// when PEERSYNC_BENCH_GEN_DIR is set: <dir>/tree (the files),
// <dir>/import.stream (fast-import, one commit per file) and
// <dir>/one.stream (one more commit adding the file "extra").
func TestBenchGenerate(t *testing.T) {
	dir := os.Getenv("PEERSYNC_BENCH_GEN_DIR")
	if dir == "" {
		t.Skip("PEERSYNC_BENCH_GEN_DIR not set")
	}
	n, dirs := benchSizes()
	files := genBenchFiles(n, dirs)
	writeBenchFiles(t, filepath.Join(dir, "tree"), files)
	f, err := os.Create(filepath.Join(dir, "import.stream"))
	require.NoError(t, err)
	require.NoError(t, writeFastImport(f, files, benchMtime.Unix(), ""))
	require.NoError(t, f.Close())
	extra := []benchFile{{"extra", bytes.Repeat([]byte("extra\n"), 100)}}
	f, err = os.Create(filepath.Join(dir, "one.stream"))
	require.NoError(t, err)
	require.NoError(t, writeFastImport(f, extra, benchMtime.Unix()+int64(n), "refs/heads/main^0"))
	require.NoError(t, f.Close())
}

// dirSize returns the total size of the regular files under dir.
func dirSize(tb testing.TB, dir string) int64 {
	tb.Helper()
	var n int64
	require.NoError(tb, filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	}))
	return n
}

// openBenchStore opens a new store on a fresh folder holding files.
func openBenchStore(tb testing.TB, files []benchFile) *Store {
	tb.Helper()
	dir := tb.TempDir()
	writeBenchFiles(tb, dir, files)
	s, err := Open(Config{Dir: dir, Create: true, AuthorName: "bench", AuthorEmail: "bench@peersync",
		Now: newClock(benchMtime).Now})
	require.NoError(tb, err)
	tb.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkScanNewFiles commits N new files, one commit each (the initial
// import). It reports the size of .peersync, of its objects alone, and the
// ratio of .peersync to the folder size (the disk overhead).
func BenchmarkScanNewFiles(b *testing.B) {
	n, dirs := benchSizes()
	files := genBenchFiles(n, dirs)
	var folderBytes int64
	for _, f := range files {
		folderBytes += int64(len(f.data))
	}
	var repoBytes, objBytes int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := openBenchStore(b, files)
		b.StartTimer()
		ch, err := s.Scan(context.Background())
		require.NoError(b, err)
		require.Len(b, ch, n)
		b.StopTimer()
		repoBytes = dirSize(b, filepath.Join(s.Dir(), GitDirName))
		objBytes = dirSize(b, filepath.Join(s.Dir(), GitDirName, "objects"))
		require.NoError(b, s.Close())
		require.NoError(b, os.RemoveAll(s.Dir()))
		b.StartTimer()
	}
	b.ReportMetric(float64(repoBytes), "repo-bytes")
	b.ReportMetric(float64(objBytes), "objects-bytes")
	b.ReportMetric(float64(repoBytes)/float64(folderBytes), "repo/folder")
}

// BenchmarkRescanUnchanged scans N unchanged files (stat cache hits only).
func BenchmarkRescanUnchanged(b *testing.B) {
	n, dirs := benchSizes()
	s := openBenchStore(b, genBenchFiles(n, dirs))
	_, err := s.Scan(context.Background())
	require.NoError(b, err)
	b.ResetTimer()
	best := time.Duration(1 << 62)
	for i := 0; i < b.N; i++ {
		for r := 0; r < benchReps; r++ {
			t0 := time.Now()
			ch, err := s.Scan(context.Background())
			best = min(best, time.Since(t0))
			require.NoError(b, err)
			require.Empty(b, ch)
		}
	}
	b.ReportMetric(float64(best.Nanoseconds()), "best-ns")
}

// benchReps is how many times the rescan and bundle benchmarks repeat the
// operation per iteration; they report the fastest as best-ns (the setup,
// an N-commit history, is too slow to repeat the way b.N would).
const benchReps = 5

// BenchmarkBundleOneCommit writes the bundle of the one commit made on top
// of an N-commit history, since the previous head.
func BenchmarkBundleOneCommit(b *testing.B) {
	n, dirs := benchSizes()
	s := openBenchStore(b, genBenchFiles(n, dirs))
	ctx := context.Background()
	_, err := s.Scan(ctx)
	require.NoError(b, err)
	prev, err := s.Head()
	require.NoError(b, err)
	require.NoError(b, os.WriteFile(filepath.Join(s.Dir(), "extra"), bytes.Repeat([]byte("extra\n"), 100), 0o644))
	ch, err := s.Scan(ctx)
	require.NoError(b, err)
	require.Len(b, ch, 1)
	b.ResetTimer()
	var size int
	best := time.Duration(1 << 62)
	for i := 0; i < b.N; i++ {
		for r := 0; r < benchReps; r++ {
			var buf bytes.Buffer
			t0 := time.Now()
			info, err := s.WriteBundle(ctx, &buf, []Hash{prev})
			best = min(best, time.Since(t0))
			require.NoError(b, err)
			require.Equal(b, 3, info.Objects) // commit, root tree, blob
			size = buf.Len()
		}
	}
	b.ReportMetric(float64(size), "bundle-bytes")
	b.ReportMetric(float64(best.Nanoseconds()), "best-ns")
}

// BenchmarkBundleFull writes the bundle of a whole N-commit history (a first
// sync) into memory and applies it to an empty store, reporting the peak RSS
// of the apply (the in-memory bundle included).
func BenchmarkBundleFull(b *testing.B) {
	n, dirs := benchSizes()
	s := openBenchStore(b, genBenchFiles(n, dirs))
	ctx := context.Background()
	_, err := s.Scan(ctx)
	require.NoError(b, err)
	b.ResetTimer()
	var size int
	var write, apply time.Duration
	var applyPeak int64
	for i := 0; i < b.N; i++ {
		var buf bytes.Buffer
		t0 := time.Now()
		info, err := s.WriteBundle(ctx, &buf, nil)
		write += time.Since(t0)
		require.NoError(b, err)
		require.Greater(b, info.Objects, 2*n)
		size = buf.Len()
		b.StopTimer()
		dst := openBenchStore(b, nil)
		b.StartTimer()
		resetPeakRSS()
		t0 = time.Now()
		res, err := dst.ApplyBundle(ctx, &buf, peerA)
		apply += time.Since(t0)
		applyPeak = max(applyPeak, peakRSS())
		require.NoError(b, err)
		require.Equal(b, FastForward, res.Kind)
	}
	b.ReportMetric(float64(size), "bundle-bytes")
	b.ReportMetric(write.Seconds()/float64(b.N), "write-s")
	b.ReportMetric(apply.Seconds()/float64(b.N), "apply-s")
	b.ReportMetric(float64(applyPeak)/(1<<20), "apply-peak-MiB") // includes the bundle in memory
}
