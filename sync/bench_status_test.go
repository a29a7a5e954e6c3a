package sync

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// BenchmarkStatusDuringApply: how long Engine.Status takes (what the web UI
// and runtime.json ask every second) while the folder applies a bundle
// holding one large file (PEERSYNC_BENCH_STATUS_MIB, default 1024 MiB of
// random bytes). Status is called every 20 ms from the moment the import
// starts until it returns; the same calls on the idle engine, just before,
// are the reference. Reported: the median, 99th percentile and worst
// Status during the apply, the idle median, and the apply's time.
func BenchmarkStatusDuringApply(b *testing.B) {
	mib := int64(1024)
	if v, err := strconv.ParseInt(os.Getenv("PEERSYNC_BENCH_STATUS_MIB"), 10, 64); err == nil && v > 0 {
		mib = v
	}
	ctx := context.Background()
	x := newNodeScan(b, "x", time.Hour)
	testutil.WriteRandomFile(b, filepath.Join(x.dir, "big.bin"), mib<<20, 11)
	_, err := x.e.Scan(ctx, "docs")
	require.NoError(b, err)
	bundle := filepath.Join(b.TempDir(), "big.bundle")
	f, err := os.Create(bundle)
	require.NoError(b, err)
	_, err = x.e.ExportBundle(ctx, "docs", nil, f)
	require.NoError(b, err)
	require.NoError(b, f.Close())

	var during, idle []time.Duration
	var applyTime time.Duration
	for i := 0; i < b.N; i++ {
		y := newNodeScan(b, "y", time.Hour)
		y.start(b)
		for range 25 {
			start := time.Now()
			y.e.Status()
			idle = append(idle, time.Since(start))
		}
		in, err := os.Open(bundle)
		require.NoError(b, err)
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := y.e.ImportBundle(ctx, "docs", in, ImportPeer)
			done <- err
		}()
		tick := time.NewTicker(20 * time.Millisecond)
	poll:
		for {
			t0 := time.Now()
			st := y.e.Status()
			during = append(during, time.Since(t0))
			require.Len(b, st.Folders, 1)
			select {
			case err := <-done:
				require.NoError(b, err)
				break poll
			case <-tick.C:
			}
		}
		applyTime += time.Since(start)
		tick.Stop()
		in.Close()
		fi, err := os.Stat(filepath.Join(y.dir, "big.bin"))
		require.NoError(b, err)
		require.Equal(b, mib<<20, fi.Size())
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	slices.Sort(during)
	slices.Sort(idle)
	b.ReportMetric(ms(during[len(during)/2]), "status-p50-ms")
	b.ReportMetric(ms(during[len(during)*99/100]), "status-p99-ms")
	b.ReportMetric(ms(during[len(during)-1]), "status-max-ms")
	b.ReportMetric(ms(idle[len(idle)/2]), "idle-p50-ms")
	b.ReportMetric(float64(len(during))/float64(b.N), "calls/apply")
	b.ReportMetric(applyTime.Seconds()/float64(b.N), "apply-s")
}
