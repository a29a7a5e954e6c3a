package gitstore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkConflicts lists the conflict copies of a folder of
// PEERSYNC_BENCH_FILES files in PEERSYNC_BENCH_DIRS folders plus one
// conflict copy (whose original was edited twice since, as the two sides
// of a conflict are), as the History page does at each refresh, beside the
// same-run reference `git ls-tree -r main` (which lists every file as
// Conflicts walks them). Both report their fastest of benchReps runs;
// ratio = conflicts-best-ns / ls-tree-best-ns.
func BenchmarkConflicts(b *testing.B) {
	n, dirs := benchSizes()
	files := genBenchFiles(n, dirs)
	orig := files[len(files)/2].path
	files = append(files, benchFile{orig + ".sync-conflict-20260301-120000-AAAAAAA", []byte("the losing side")})
	s := openBenchStore(b, files)
	_, err := s.Scan(context.Background())
	require.NoError(b, err)
	// The original's two newest changes are recent, as after a conflict.
	for _, v := range []string{"one side", "other side"} {
		require.NoError(b, os.WriteFile(filepath.Join(s.Dir(), filepath.FromSlash(orig)), []byte(v), 0o644))
		_, err = s.Scan(context.Background())
		require.NoError(b, err)
	}
	b.ResetTimer()
	best, ref := time.Duration(1<<62), time.Duration(1<<62)
	for i := 0; i < b.N; i++ {
		for r := 0; r < benchReps; r++ {
			t0 := time.Now()
			cs, err := s.Conflicts(context.Background())
			best = min(best, time.Since(t0))
			require.NoError(b, err)
			require.Len(b, cs, 1)
			t0 = time.Now()
			out, err := exec.Command("git", "--git-dir="+filepath.Join(s.Dir(), GitDirName), "ls-tree", "-r", "main").Output()
			ref = min(ref, time.Since(t0))
			require.NoError(b, err)
			require.NotEmpty(b, out)
		}
	}
	b.ReportMetric(float64(best.Nanoseconds()), "conflicts-best-ns")
	b.ReportMetric(float64(ref.Nanoseconds()), "ls-tree-best-ns")
	b.ReportMetric(float64(best)/float64(ref), "ratio")
}
