package sync

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/peersync/peersync/crypto"
)

// limitPair is a sender a and a receiver b sharing "docs", each telling
// of its ended transfers on a channel.
type limitPair struct {
	a, b       *node
	sent, recv chan transferEnded
}

type transferEnded struct {
	p       Progress
	elapsed time.Duration
}

func newLimitPair(tb testing.TB) *limitPair {
	lp := &limitPair{sent: make(chan transferEnded, 16), recv: make(chan transferEnded, 16)}
	hook := func(ch chan transferEnded) *testHooks {
		return &testHooks{transferred: func(p Progress, elapsed time.Duration) {
			select {
			case ch <- transferEnded{p, elapsed}:
			default:
			}
		}}
	}
	lp.a = newNodeCfg(tb, "a", func(c *Config) { c.test = hook(lp.sent) })
	lp.b = newNodeCfg(tb, "b", func(c *Config) { c.test = hook(lp.recv) })
	lp.a.start(tb)
	require.NoError(tb, lp.a.e.AddPeer(PeerConfig{Device: lp.b.e.DeviceID(), Name: "b", Folders: []string{"docs"}}))
	require.NoError(tb, lp.b.e.AddPeer(PeerConfig{Device: lp.a.e.DeviceID(), Name: "a", Addrs: []string{lp.a.e.Addr().String()}, Folders: []string{"docs"}}))
	lp.b.start(tb)
	return lp
}

// send writes a new file of size random bytes on a and returns the
// receiver's and the sender's view of its bundle's transfer.
func (lp *limitPair) send(tb testing.TB, name string, size int) (recv, sent transferEnded) {
	tb.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	write(tb, lp.a.dir, name, string(data))
	deadline := time.After(2 * time.Minute)
	for recv.p.Bytes == 0 || sent.p.Bytes == 0 {
		select {
		case r := <-lp.recv:
			if r.p.Direction == "receive" && r.p.Bytes > int64(size) {
				recv = r
			}
		case s := <-lp.sent:
			if s.p.Direction == "send" && s.p.Bytes > int64(size) {
				sent = s
			}
		case <-deadline:
			tb.Fatalf("the bundle of %s did not arrive", name)
		}
	}
	return recv, sent
}

// rate is a transfer's achieved rate in bytes per second.
func (te transferEnded) rate() float64 { return float64(te.p.Bytes) / te.elapsed.Seconds() }

// minFlow is the least time n bytes take to flow under a limit: the
// bucket starts empty, but the first frame's wait comes before the data
// flows (the sender waits, then writes) and a stream that stalled may
// catch up by one bucket.
func minFlow(n, limit int64) time.Duration {
	slack := int64(burst(limit)) + int64(throttle{[]*rate.Limiter{rate.NewLimiter(rate.Limit(limit), 1)}}.chunk())
	return time.Duration(float64(n-slack) / float64(limit) * float64(time.Second))
}

// TestRateLimits: the global and per-peer limits, up and down, pace the
// bundle streams (a transfer of N bytes under a limit L takes about N/L,
// and never much less); removing a limit lifts it.
func TestRateLimits(t *testing.T) {
	lp := newLimitPair(t)
	const size = 640 << 10
	const limit = 256 << 10
	cases := []struct {
		name string
		set  func() error
	}{
		{"peer up", func() error { return lp.a.e.SetLimits(lp.b.e.DeviceID(), RateLimit{Up: limit}) }},
		{"global up", func() error { return lp.a.e.SetLimits(crypto.DeviceID{}, RateLimit{Up: limit}) }},
		{"peer down", func() error { return lp.b.e.SetLimits(lp.a.e.DeviceID(), RateLimit{Down: limit}) }},
		{"global down", func() error { return lp.b.e.SetLimits(crypto.DeviceID{}, RateLimit{Down: limit}) }},
	}
	for i, c := range cases {
		require.NoError(t, c.set(), c.name)
		recv, _ := lp.send(t, fmt.Sprintf("f%d.bin", i), size)
		assert.GreaterOrEqual(t, recv.elapsed, minFlow(recv.p.Bytes, limit), "%s: %d bytes at %d B/s", c.name, recv.p.Bytes, limit)
		t.Logf("%s: %d bytes in %s: %.0f B/s (limit %d)", c.name, recv.p.Bytes, recv.elapsed, recv.rate(), limit)
		// Lift it again.
		for _, e := range []*Engine{lp.a.e, lp.b.e} {
			require.NoError(t, e.SetLimits(crypto.DeviceID{}, RateLimit{}))
		}
		require.NoError(t, lp.a.e.SetLimits(lp.b.e.DeviceID(), RateLimit{}))
		require.NoError(t, lp.b.e.SetLimits(lp.a.e.DeviceID(), RateLimit{}))
	}
	// The stricter of the two applies.
	require.NoError(t, lp.a.e.SetLimits(crypto.DeviceID{}, RateLimit{Up: 4 * limit}))
	require.NoError(t, lp.a.e.SetLimits(lp.b.e.DeviceID(), RateLimit{Up: limit}))
	recv, _ := lp.send(t, "strict.bin", size)
	assert.GreaterOrEqual(t, recv.elapsed, minFlow(recv.p.Bytes, limit))
}

// BenchmarkRateLimit measures the rate a limited bundle stream achieves
// against its limit, on loopback (recorded in BENCHMARKS.md): each
// iteration sends a new file of 3 s worth of random bytes, and the rate
// is the bundle's bytes over the time its data flowed (first data frame
// to trailer) at the receiver. none-8MiB is the same without a limit.
func BenchmarkRateLimit(b *testing.B) {
	for _, c := range []struct {
		name  string
		up    bool
		limit int64
	}{
		{"up-1MiB", true, 1 << 20},
		{"down-1MiB", false, 1 << 20},
		{"up-8MiB", true, 8 << 20},
		{"down-8MiB", false, 8 << 20},
		{"none-8MiB", false, 0}, // the reference: no limit, same size
	} {
		b.Run(c.name, func(b *testing.B) {
			lp := newLimitPair(b)
			if c.up {
				require.NoError(b, lp.a.e.SetLimits(crypto.DeviceID{}, RateLimit{Up: c.limit}))
			} else {
				require.NoError(b, lp.b.e.SetLimits(crypto.DeviceID{}, RateLimit{Down: c.limit}))
			}
			var bytes int64
			var elapsed time.Duration
			i := 0
			for b.Loop() {
				recv, _ := lp.send(b, fmt.Sprintf("f%d.bin", i), int(3*cmp.Or(c.limit, 8<<20)))
				bytes += recv.p.Bytes
				elapsed += recv.elapsed
				i++
			}
			achieved := float64(bytes) / elapsed.Seconds()
			b.ReportMetric(achieved, "B/s")
			if c.limit > 0 {
				b.ReportMetric(achieved/float64(c.limit), "achieved/limit")
			}
		})
	}
}
