package sync

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkMailbox measures a 32 MiB incompressible file going from a to b
// through the server's mailbox (a starts, scans, seals and deposits, and
// stops; then b starts, fetches, verifies and applies), against the same
// file going directly from a to b, both online, in the same run (the
// "direct" sub-benchmark). Both times run from a's start, so both include
// a's first scan of the file. Loopback; one round per iteration.
func BenchmarkMailbox(b *testing.B) {
	const size = 32 << 20
	data := make([]byte, size)
	_, _ = rand.Read(data)
	arrived := func(n *node) func() bool {
		return func() bool {
			fi, err := os.Stat(filepath.Join(n.dir, "big.bin"))
			return err == nil && fi.Size() == size
		}
	}
	b.Run("direct", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			x, y := newNode(b, "x"), newNode(b, "y")
			require.NoError(b, os.WriteFile(filepath.Join(x.dir, "big.bin"), data, 0o644))
			start := time.Now()
			x.start(b)
			require.NoError(b, x.e.AddPeer(PeerConfig{Device: y.e.DeviceID(), Folders: []string{"docs"}}))
			require.NoError(b, y.e.AddPeer(PeerConfig{Device: x.e.DeviceID(), Addrs: []string{x.e.Addr().String()}, Folders: []string{"docs"}}))
			y.start(b)
			require.Eventually(b, arrived(y), 5*time.Minute, 5*time.Millisecond)
			total += time.Since(start)
			stop(b, x)
			stop(b, y)
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/file")
	})
	b.Run("mailbox", func(b *testing.B) {
		var total, deposit time.Duration
		for range b.N {
			n := newMailNet(b, nil)
			require.NoError(b, os.WriteFile(filepath.Join(n.a.dir, "big.bin"), data, 0o644))
			ev := collect(n.a.e)
			start := time.Now()
			n.a.start(b)
			require.Eventually(b, func() bool { _, ok := ev.find(deposited); return ok }, 5*time.Minute, 5*time.Millisecond)
			deposit += time.Since(start)
			stop(b, n.a)
			n.b.start(b)
			require.Eventually(b, arrived(n.b), 5*time.Minute, 5*time.Millisecond)
			total += time.Since(start)
			stop(b, n.b)
			stop(b, n.srv)
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/file")
		b.ReportMetric(float64(deposit.Milliseconds())/float64(b.N), "deposit-ms")
	})
}
