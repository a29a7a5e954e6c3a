package transport

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// liveHeap is the live heap after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestTCPStreamFloodBounded: an allowed device opens 150 streams on the
// TCP path, each a request and then 16 MiB of junk, while the victim
// answers each request and reads nothing more (as the sync engine does).
// The victim's memory stays bounded by the per-connection limits (streams,
// windows), not by what the attacker offers (2.4 GiB), and a second, good
// connection still works.
func TestTCPStreamFloodBounded(t *testing.T) {
	const (
		streams   = 150
		junk      = 16 << 20
		chunk     = 64 << 10
		heapBound = 200 << 20
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vID, aID, gID := newIdentity(t), newIdentity(t), newIdentity(t)
	victim := newTransport(t, vID, allow(aID, gID), nil)
	attacker := newTransport(t, aID, allow(vID), nil)
	good := newTransport(t, gID, allow(vID), nil)

	// The victim: answer every request, then leave the stream unread.
	var serving sync.WaitGroup
	serve := func(c *Conn) {
		serving.Go(func() {
			for {
				s, err := c.AcceptStream(ctx)
				if err != nil {
					return
				}
				if _, err := ReadFrame(s, 0); err != nil {
					s.Abort()
					continue
				}
				if WriteFrame(s, []byte("answer")) == nil {
					s.Close() //nolint:errcheck // the answer is on its way
				}
			}
		})
	}
	accepted := make(chan *Conn, 2)
	serving.Go(func() {
		for {
			c, err := victim.Accept(ctx)
			if err != nil {
				return
			}
			serve(c)
			accepted <- c
		}
	})

	// The victim's heap (this process holds both ends: the attacker's
	// side stays small, see garbage), sampled all along.
	base := liveHeap()
	var peak atomic.Uint64
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if h := liveHeap(); h > base {
				peak.Store(max(peak.Load(), h-base))
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer func() {
		close(stopSampling)
		<-sampled
	}()
	checkHeap := func() {
		t.Helper()
		require.Less(t, peak.Load(), uint64(heapBound), "victim's heap grew by %d MiB under the flood", peak.Load()>>20)
	}

	ac, err := attacker.DialTCP(ctx, victim.TCPAddr().String(), vID.DeviceID())
	require.NoError(t, err)
	<-accepted

	garbage := make([]byte, chunk) // shared by every writer: the attacker's own memory stays small
	var progress [streams]atomic.Int64
	var failed atomic.Int64
	var writers sync.WaitGroup
	for i := range streams {
		s, err := ac.OpenStream(ctx)
		checkHeap()
		require.NoError(t, err)
		writers.Go(func() {
			if WriteFrame(s, []byte("want")) != nil {
				failed.Add(1)
				return
			}
			for progress[i].Load() < junk {
				n, err := s.Write(garbage)
				progress[i].Add(int64(n))
				if err != nil {
					failed.Add(1)
					return
				}
			}
		})
	}

	// Wait until the flood has settled: every stream refused or stuck
	// behind its window after half its first 256 KiB, and no byte
	// moved for a while. The heap is checked all along.
	last, still := int64(-1), 0
	for still < 25 {
		checkHeap()
		var total int64
		ready := int(failed.Load())
		for i := range progress {
			p := progress[i].Load()
			total += p
			if p >= 128<<10 { // half a first window (256 KiB)
				ready++
			}
		}
		if ready >= streams && total == last {
			still++
		} else {
			still = 0
		}
		last = total
		select {
		case <-ctx.Done():
			var ps []int64
			for i := range progress {
				ps = append(ps, progress[i].Load()>>10)
			}
			t.Fatalf("flood did not settle: %d bytes sent, %d streams failed; KiB per stream: %v", total, failed.Load(), ps)
		case <-time.After(40 * time.Millisecond):
		}
	}
	t.Logf("flood settled: %d MiB sent by the attacker, %d streams refused, victim heap +%d MiB at most",
		last>>20, failed.Load(), peak.Load()>>20)
	assert.EqualValues(t, streams-maxStreams, failed.Load(), "streams beyond the limit are refused")

	// A good device still gets through, on the same victim.
	gc, err := good.DialTCP(ctx, victim.TCPAddr().String(), vID.DeviceID())
	require.NoError(t, err)
	<-accepted
	s, err := gc.OpenStream(ctx)
	require.NoError(t, err)
	require.NoError(t, WriteFrame(s, []byte("want")))
	answer, err := ReadFrame(s, 0)
	require.NoError(t, err)
	assert.Equal(t, "answer", string(answer))

	require.NoError(t, ac.Close())
	writers.Wait()
	require.NoError(t, gc.Close())
	require.NoError(t, victim.Close())
	serving.Wait()
}
