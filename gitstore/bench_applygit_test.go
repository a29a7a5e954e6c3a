package gitstore

// BenchmarkApplyVsGit: a first sync's import (issue 15 item 4): the bundle
// of a whole N-commit history (PEERSYNC_BENCH_FILES files, default 20,000,
// in PEERSYNC_BENCH_DIRS folders, default 20; one commit per file) applied
// by ApplyBundle to an empty store, against `git fetch` of the same bundle
// into an empty repository plus `git checkout` of main into an empty work
// tree, alternately (A/B/A/B, PEERSYNC_BENCH_ROUNDS rounds, default 3) so
// that load drift cancels. PEERSYNC_BENCH_CPUPROFILE writes a CPU profile
// of our applies.
//
//	nice -n 10 go test ./gitstore -run '^$' -bench '^BenchmarkApplyVsGit$' -benchtime 1x

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func BenchmarkApplyVsGit(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git not installed")
	}
	n, dirs := benchEnvInt("PEERSYNC_BENCH_FILES", 20000), benchEnvInt("PEERSYNC_BENCH_DIRS", 20)
	rounds := benchEnvInt("PEERSYNC_BENCH_ROUNDS", 3)
	ctx := context.Background()
	work := b.TempDir()
	bundlePath := filepath.Join(work, "full.bundle")
	writeHistoryBundle(b, n, dirs, bundlePath)
	var prof *os.File
	if p := os.Getenv("PEERSYNC_BENCH_CPUPROFILE"); p != "" {
		var err error
		prof, err = os.Create(p)
		require.NoError(b, err)
		defer prof.Close()
	}
	env := append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	gitRun := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, "git %v: %s", args, out)
	}
	var ours, fetch, checkout []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			// A: ours.
			dir := filepath.Join(work, "ours")
			require.NoError(b, os.Mkdir(dir, 0o755))
			dst, err := Open(Config{Dir: dir, Create: true})
			require.NoError(b, err)
			f, err := os.Open(bundlePath)
			require.NoError(b, err)
			if prof != nil && r == 0 {
				require.NoError(b, pprof.StartCPUProfile(prof))
			}
			t0 := time.Now()
			res, err := dst.ApplyBundle(ctx, bufio.NewReaderSize(f, 1<<20), peerA)
			ours = append(ours, time.Since(t0))
			if prof != nil && r == 0 {
				pprof.StopCPUProfile()
			}
			f.Close()
			require.NoError(b, err)
			require.Len(b, res.Changed, n)
			require.NoError(b, dst.Close())
			require.NoError(b, os.RemoveAll(dir))

			// B: git fetch + git checkout.
			repo, tree := filepath.Join(work, "git.git"), filepath.Join(work, "tree")
			require.NoError(b, os.Mkdir(tree, 0o755))
			gitRun("init", "-q", "--bare", repo)
			t0 = time.Now()
			gitRun("--git-dir="+repo, "fetch", "-q", bundlePath, "refs/heads/main:refs/heads/main")
			t1 := time.Now()
			gitRun("--git-dir="+repo, "--work-tree="+tree, "checkout", "-q", "-f", "main")
			checkout = append(checkout, time.Since(t1))
			fetch = append(fetch, t1.Sub(t0))
			require.NoError(b, os.RemoveAll(repo))
			require.NoError(b, os.RemoveAll(tree))
		}
	}
	b.StopTimer()
	o, fe, co := median(ours), median(fetch), median(checkout)
	b.ReportMetric(o.Seconds(), "apply-s")
	b.ReportMetric(fe.Seconds(), "git-fetch-s")
	b.ReportMetric(co.Seconds(), "git-checkout-s")
	b.ReportMetric(o.Seconds()/(fe+co).Seconds(), "apply-vs-git")
}
