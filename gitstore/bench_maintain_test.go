package gitstore

// BenchmarkMaintainedStore: a 1,000-file store (10 folders) after
// PEERSYNC_BENCH_EDITS (default 10,000; 1,000 with -short) single-file
// edits, one Scan each, maintained by nothing but the background
// maintenance, against a copy of the same store freshly consolidated (every
// object in one pack). Both are copies of the store as the edits left it,
// opened afresh. The four operations run alternately on the aged store and
// the fresh copy (A/B/A/B, PEERSYNC_BENCH_ROUNDS rounds, default 5, each
// time the mean over 100 ms of runs; the median of the rounds reported) so
// that load drift on a shared machine cancels; each op after a garbage
// collection, the first store alternating between rounds. Beside the wall
// time ratio, *-cpu-vs-fresh is the ratio of the process's CPU time.
//
//	nice -n 10 go test ./gitstore -run '^$' -bench '^BenchmarkMaintainedStore$' -benchtime 1x
//	nice -n 10 go test ./gitstore -short -run '^$' -bench '^BenchmarkMaintainedStore$' -benchtime 1x

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// storeOps returns History of one file, a full bundle, a no-op rescan and
// a 1-commit bundle of s, as functions.
func storeOps(b *testing.B, s *Store, prev Hash, file string) []func() {
	ctx := context.Background()
	return []func(){
		func() {
			h, err := s.History(ctx, file, 0)
			require.NoError(b, err)
			require.NotEmpty(b, h)
		},
		func() {
			_, err := s.WriteBundle(ctx, &bytes.Buffer{}, nil)
			require.NoError(b, err)
		},
		func() {
			ch, err := s.Scan(ctx)
			require.NoError(b, err)
			require.Empty(b, ch)
		},
		func() {
			_, err := s.WriteBundle(ctx, &bytes.Buffer{}, []Hash{prev})
			require.NoError(b, err)
		},
	}
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// ageStore makes a 1,000-file store (10 folders) with a first Scan, then
// edits single-file edits, one Scan each (the timer reset before them),
// calling each (if set) after every scan with its time. It returns the store, its
// head before the last edit and the files.
func ageStore(b *testing.B, edits int, each func(s *Store, e int, took time.Duration)) (*Store, Hash, []benchFile) {
	s := openBenchStore(b, genBenchFiles(1000, 10))
	ctx := context.Background()
	_, err := s.Scan(ctx)
	require.NoError(b, err)
	files := genBenchFiles(1000, 10)
	var prev Hash
	b.ResetTimer()
	for e := 0; e < edits; e++ {
		if prev, err = s.Head(); err != nil {
			b.Fatal(err)
		}
		f := files[(e*7919)%len(files)]
		p := filepath.Join(s.Dir(), filepath.FromSlash(f.path))
		require.NoError(b, os.WriteFile(p, fmt.Appendf(nil, "edit %d\n", e), 0o644))
		t0 := time.Now()
		ch, err := s.Scan(ctx)
		took := time.Since(t0)
		require.NoError(b, err)
		require.Len(b, ch, 1)
		if each != nil {
			each(s, e, took)
		}
	}
	return s, prev, files
}

func BenchmarkMaintainedStore(b *testing.B) {
	edits := benchEnvInt("PEERSYNC_BENCH_EDITS", 10000)
	if testing.Short() {
		edits = min(edits, 1000)
	}
	rounds := benchEnvInt("PEERSYNC_BENCH_ROUNDS", 5)
	for i := 0; i < b.N; i++ {
		ctx := context.Background()
		scans := make([]time.Duration, 0, edits)
		maxLoose, maxPacks := 0, 0
		s, prev, files := ageStore(b, edits, func(s *Store, e int, took time.Duration) {
			scans = append(scans, took)
			if e%100 == 99 {
				packs, loose := countObjectFiles(filepath.Join(s.Dir(), GitDirName, "objects"))
				maxLoose, maxPacks = max(maxLoose, loose), max(maxPacks, packs)
			}
		})
		b.StopTimer()
		waitMaintained(s)
		loose, packs := storeFiles(b, s)
		s.maint.mu.Lock()
		runs, held := s.maint.runs, s.maint.held
		s.maint.mu.Unlock()
		fsck(b, s)
		require.NoError(b, s.Close())

		// The aged store and the reference, each a copy of the store as
		// the edits left it, opened afresh (same process state, same
		// inodes treatment); the reference has every object in one pack.
		aged, fresh := copyStore(b, s.Dir()), copyStore(b, s.Dir())
		_, err := fresh.maintain(ctx, maintainAll)
		require.NoError(b, err)
		_, freshPacks := storeFiles(b, fresh)
		for _, c := range []*Store{aged, fresh} {
			_, err := c.Scan(ctx) // new inodes: refill the stat cache
			require.NoError(b, err)
		}

		file := files[((edits-1)*7919)%len(files)].path
		opsA, opsB := storeOps(b, aged, prev, file), storeOps(b, fresh, prev, file)
		// Each op starts after a collection (so that it pays for no
		// garbage of the op before it, a full bundle on the other store
		// say), and the store that goes first alternates between rounds.
		times, cpus := [2][4][]time.Duration{}, [2][4][]time.Duration{}
		for r := 0; r < rounds; r++ {
			for k := range opsA {
				for i := range 2 {
					j := (i + r) % 2
					runtime.GC()
					wall, cpu := timeOp([][]func(){opsA, opsB}[j][k])
					times[j][k] = append(times[j][k], wall)
					cpus[j][k] = append(cpus[j][k], cpu)
				}
			}
		}
		names := []string{"history", "full-bundle", "rescan", "1-commit-bundle"}
		for k, n := range names {
			a, f := median(times[0][k]), median(times[1][k])
			b.ReportMetric(a.Seconds()*1e3, n+"-ms")
			b.ReportMetric(f.Seconds()*1e3, n+"-fresh-ms")
			b.ReportMetric(a.Seconds()/f.Seconds(), n+"-vs-fresh")
			if ca, cf := median(cpus[0][k]), median(cpus[1][k]); cf > 0 {
				b.ReportMetric(ca.Seconds()/cf.Seconds(), n+"-cpu-vs-fresh")
			}
		}
		b.ReportMetric(float64(loose), "loose")
		b.ReportMetric(float64(packs), "packs")
		b.ReportMetric(float64(maxLoose), "max-loose-est")
		b.ReportMetric(float64(maxPacks), "max-packs")
		b.ReportMetric(float64(freshPacks), "fresh-packs")
		b.ReportMetric(float64(runs), "maint-runs")
		b.ReportMetric(held.Seconds()*1e3, "max-held-ms")
		b.ReportMetric(median(scans).Seconds()*1e3, "scan-p50-ms")
		slices.Sort(scans)
		b.ReportMetric(scans[len(scans)*99/100].Seconds()*1e3, "scan-p99-ms")
		b.ReportMetric(scans[len(scans)-1].Seconds()*1e3, "scan-max-ms")
	}
}

// copyStore copies the folder dir and opens the copy (closed at cleanup).
func copyStore(b *testing.B, dir string) *Store {
	to := b.TempDir()
	out, err := exec.Command("cp", "-a", dir+"/.", to).CombinedOutput()
	require.NoError(b, err, "%s", out)
	s, err := Open(Config{Dir: to})
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	return s
}

// timeOp returns the mean time of op over as many runs as fill 100 ms
// (at least one), and the mean CPU time of this process (user + system)
// over them: on a loaded machine the wall time swings with what else
// runs, the CPU time much less.
func timeOp(op func()) (wall, cpu time.Duration) {
	t0, c0 := time.Now(), testutil.ProcessCPU()
	n := 0
	for n == 0 || time.Since(t0) < 100*time.Millisecond {
		op()
		n++
	}
	return time.Since(t0) / time.Duration(n), (testutil.ProcessCPU() - c0) / time.Duration(n)
}

// BenchmarkOneCommitBundle: the 1-commit bundle of BenchmarkMaintainedStore
// alone, on a store aged by PEERSYNC_BENCH_EDITS (default 300) single-file
// edits and on a consolidated copy, one sub-benchmark each (to profile
// one side: -bench 'OneCommitBundle/aged' -cpuprofile FILE). cpu-ns/op is
// the process's CPU time per bundle.
func BenchmarkOneCommitBundle(b *testing.B) {
	s, prev, _ := ageStore(b, benchEnvInt("PEERSYNC_BENCH_EDITS", 300), nil)
	ctx := context.Background()
	waitMaintained(s)
	require.NoError(b, s.Close())
	aged, fresh := copyStore(b, s.Dir()), copyStore(b, s.Dir())
	_, err := fresh.maintain(ctx, maintainAll)
	require.NoError(b, err)
	for _, c := range []struct {
		name string
		s    *Store
	}{{"aged", aged}, {"fresh", fresh}} {
		b.Run(c.name, func(b *testing.B) {
			c0 := testutil.ProcessCPU()
			for range b.N {
				_, err := c.s.WriteBundle(ctx, &bytes.Buffer{}, []Hash{prev})
				require.NoError(b, err)
			}
			b.ReportMetric(float64(testutil.ProcessCPU()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}
