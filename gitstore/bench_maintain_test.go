package gitstore

// BenchmarkMaintainedStore: a store after PEERSYNC_BENCH_EDITS (default
// 2000) single-file edits, one Scan each with Maintain after each (as the
// sync engine calls it), against the same store freshly consolidated.
//
//	PEERSYNC_BENCH_EDITS=10000 go test -run '^$' -bench '^BenchmarkMaintainedStore$' -benchtime 1x ./gitstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// storeOps times (best of 3) History, a full bundle, a no-op rescan and a
// 1-commit bundle.
func storeOps(b *testing.B, s *Store, prev Hash) [4]time.Duration {
	b.Helper()
	ctx := context.Background()
	ops := []func(){
		func() {
			_, err := s.History(ctx, "", 0)
			require.NoError(b, err)
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
	var best [4]time.Duration
	for i, op := range ops {
		best[i] = time.Duration(1 << 62)
		for r := 0; r < 3; r++ {
			t0 := time.Now()
			op()
			best[i] = min(best[i], time.Since(t0))
		}
	}
	return best
}

func BenchmarkMaintainedStore(b *testing.B) {
	edits := benchEnvInt("PEERSYNC_BENCH_EDITS", 2000)
	for i := 0; i < b.N; i++ {
		s := openBenchStore(b, genBenchFiles(1000, 10))
		ctx := context.Background()
		_, err := s.Scan(ctx)
		require.NoError(b, err)
		files := genBenchFiles(1000, 10)
		var prev Hash
		b.ResetTimer()
		for e := 0; e < edits; e++ {
			if e == edits-1 {
				prev, err = s.Head()
				require.NoError(b, err)
			}
			f := files[(e*7919)%len(files)]
			p := filepath.Join(s.Dir(), filepath.FromSlash(f.path))
			require.NoError(b, os.WriteFile(p, fmt.Appendf(nil, "edit %d\n", e), 0o644))
			ch, err := s.Scan(ctx)
			require.NoError(b, err)
			require.Len(b, ch, 1)
			_, err = s.Maintain(ctx)
			require.NoError(b, err)
		}
		b.StopTimer()
		loose, packs := storeFiles(b, s)
		aged := storeOps(b, s, prev)
		_, err = maintainForced(b, s)
		require.NoError(b, err)
		fresh := storeOps(b, s, prev)
		names := []string{"history", "full-bundle", "rescan", "1-commit-bundle"}
		for k, n := range names {
			b.ReportMetric(aged[k].Seconds()*1e3, n+"-ms")
			b.ReportMetric(aged[k].Seconds()/fresh[k].Seconds(), n+"-vs-fresh")
		}
		b.ReportMetric(float64(loose), "loose")
		b.ReportMetric(float64(packs), "packs")
	}
}
