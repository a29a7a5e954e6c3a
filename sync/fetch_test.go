package sync

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// gatedWriter passes the first open bytes a bundle job writes, then blocks
// until gate is closed: a sender whose preparation takes as long as the
// test likes.
type gatedWriter struct {
	w    io.Writer
	open int64
	gate <-chan struct{}
	n    int64
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	// Write up to the gate first: a producer may hand over a large object
	// in one Write (a stored blob copied as is), and the bytes before the
	// gate must still reach the receiver.
	if head := g.open - g.n; head > 0 && int64(len(p)) > head {
		n, err := g.w.Write(p[:head])
		g.n += int64(n)
		if err != nil {
			return n, err
		}
		m, err := g.Write(p[head:])
		return n + m, err
	}
	if g.n+int64(len(p)) > g.open {
		<-g.gate
	}
	g.n += int64(len(p))
	return g.w.Write(p)
}

// slowSender records what a sender engine's bundle jobs did.
type slowSender struct {
	gate     chan struct{}
	once     gosync.Once
	mu       gosync.Mutex
	produced int     // WriteBundle runs for the whole history (since empty)
	served   []int64 // offsets of the wants for the whole history answered
}

func (s *slowSender) hooks(open int64) *testHooks {
	return &testHooks{
		produce: func(since []gitstore.Hash, w io.Writer) io.Writer {
			if len(since) > 0 {
				return w // a later, incremental request: not gated
			}
			s.mu.Lock()
			s.produced++
			s.mu.Unlock()
			return &gatedWriter{w: w, open: open, gate: s.gate}
		},
		served: func(since []gitstore.Hash, off int64) {
			if len(since) > 0 {
				return
			}
			s.mu.Lock()
			s.served = append(s.served, off)
			s.mu.Unlock()
		},
	}
}

// release lets the producer go on (at most once; tests also register it as
// a cleanup, so a failing test does not leave Close waiting on the gate).
func (s *slowSender) release() { s.once.Do(func() { close(s.gate) }) }

func (s *slowSender) fullBundles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.produced
}

func (s *slowSender) offsets() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.served...)
}

// fetchOf returns b's fetch status of its folder, if any.
func fetchOf(e *Engine) (FetchStatus, bool) {
	f := e.Status().Folders[0].Fetches
	if len(f) == 0 {
		return FetchStatus{}, false
	}
	return f[0], true
}

// noErrorEvents asserts that e reported no error so far.
func noErrorEvents(t *testing.T, e *Engine) {
	t.Helper()
	for {
		select {
		case ev := <-e.Events():
			assert.NotEqual(t, EventError, ev.Kind, "unexpected %s", ev)
		default:
			return
		}
	}
}

// testIdle is the scaled-down idle limit (the old protocol's header
// timeout was 15 s); generous enough for a loaded machine under -race.
const testIdle = 2 * time.Second

// TestSlowSenderNoRestart: a sender that takes many times the receiver's
// idle limit before its first byte (as a 100,000-file first bundle does)
// keeps the fetch alive with progress frames; the fetch completes and the
// bundle is produced once, not restarted by retries.
func TestSlowSenderNoRestart(t *testing.T) {
	slow := &slowSender{gate: make(chan struct{})}
	a := newNodeCfg(t, "a", func(c *Config) { c.Fetch.Idle = testIdle; c.test = slow.hooks(0) })
	b := newNodeCfg(t, "b", func(c *Config) { c.Fetch.Idle = testIdle })
	write(t, a.dir, "big.txt", "the whole folder")
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
	t.Cleanup(slow.release)

	eventually(t, "b waits on a preparing sender for 3 times its idle limit", func() bool {
		f, ok := fetchOf(b.e)
		return ok && f.State == "preparing" && time.Since(f.Started) > 3*testIdle
	})
	slow.release()
	eventually(t, "the fetch completes", fileIs(b.dir, "big.txt", "the whole folder"))
	assert.Equal(t, 1, slow.fullBundles(), "the bundle is produced once")
	assert.Equal(t, int64(0), slow.offsets()[0])
	assert.Len(t, slow.offsets(), 1, "one want for the full bundle, never retried")
	noErrorEvents(t, b.e)
	eventually(t, "no fetch left in the status", func() bool { _, ok := fetchOf(b.e); return !ok })
}

// TestFetchResumesAfterBrokenConnection: a connection that breaks in the
// middle of a bundle is not a restart: the retry attaches to the sender's
// job at the offset the receiver holds, and the bundle is produced once.
// Neither side hashes the bundle (protocol version 3).
func TestFetchResumesAfterBrokenConnection(t *testing.T) {
	const open = 1 << 20
	slow := &slowSender{gate: make(chan struct{})}
	var ha, hb hashCount
	a := newNodeCfg(t, "a", func(c *Config) { c.test = slow.hooks(open); c.test.hashed = ha.hook })
	b := newNodeCfg(t, "b", func(c *Config) { c.test = &testHooks{hashed: hb.hook} })
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(filepath.Join(a.dir, "random.bin"), data, 0o644))
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
	t.Cleanup(slow.release)

	eventually(t, "b holds the first MiB", func() bool {
		f, ok := fetchOf(b.e)
		return ok && f.Received >= open-(64<<10)
	})
	b.e.mu.Lock()
	pc := b.e.connLocked(a.e.DeviceID())
	b.e.mu.Unlock()
	require.NotNil(t, pc)
	_ = pc.c.CloseWithError(transport.CloseProtocol, "the test breaks the connection")
	// The producer holds a's store while it writes (gitstore's lock), so
	// a cannot announce its head on the new connection before it is done.
	slow.release()
	eventually(t, "b asks again and a resumes where b was", func() bool {
		off := slow.offsets()
		return len(off) == 2 && off[1] >= open-(64<<10)
	})
	eventually(t, "the fetch completes", func() bool {
		b, err := os.ReadFile(filepath.Join(b.dir, "random.bin"))
		return err == nil && bytes.Equal(b, data)
	})
	assert.Equal(t, 1, slow.fullBundles(), "the bundle is produced once")
	assert.Equal(t, int64(0), slow.offsets()[0])
	assert.Zero(t, ha.runs.Load()+hb.runs.Load(), "a bundle was hashed")
}

// TestIncomingBundleBoundedInTime: a sender that trickles its bundle, that
// only ever says it is preparing, or that stops sending is abandoned with
// a reason the user sees (event, status), and nothing is applied.
func TestIncomingBundleBoundedInTime(t *testing.T) {
	cases := map[string]struct {
		limits FetchLimits
		send   func(s *transport.Stream) error // one step; called until it fails
		want   error
	}{
		"one byte at a time": {
			limits: FetchLimits{MinRate: 1 << 20, RateWindow: 300 * time.Millisecond, Idle: 5 * time.Second},
			send: func(s *transport.Stream) error {
				time.Sleep(20 * time.Millisecond) // the trickle itself
				return transport.WriteFrame(s, []byte{dataTag, 'x'})
			},
			want: errFetchTooSlow,
		},
		"preparing forever": {
			limits: FetchLimits{Timeout: 500 * time.Millisecond, Idle: 5 * time.Second},
			send: func(s *transport.Stream) error {
				time.Sleep(20 * time.Millisecond)
				return writeJSON(s, answer{Type: ansProgress})
			},
			want: errFetchDeadline,
		},
		"silent": {
			limits: FetchLimits{Idle: 300 * time.Millisecond},
			send: func(s *transport.Stream) error {
				_, err := s.Read(make([]byte, 1)) // until the victim gives up
				return err
			},
			want: errFetchIdle,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n, f, before := newVictim(t, func(c *Config) { c.Fetch = tc.limits })
			done := make(chan struct{})
			var wg gosync.WaitGroup
			defer func() { close(done); wg.Wait() }()
			c := f.serveHostile(t, n.e.Addr().String(), n.e.DeviceID(), func(s *transport.Stream) {
				sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID})
				wg.Go(func() {
					for i := 0; i < 10000; i++ { // bounded: the victim ends it long before
						select {
						case <-done:
							return
						default:
						}
						if tc.send(s) != nil {
							return
						}
					}
				})
			})
			defer c.Close()
			got := waitEvent(t, n.e, func(ev Event) bool { return ev.Kind == EventError && ev.Peer == f.id.DeviceID() })
			var fe *FetchError
			require.True(t, errors.As(got.Err, &fe), "got %v", got.Err)
			assert.ErrorIs(t, got.Err, tc.want)
			fs, ok := fetchOf(n.e)
			require.True(t, ok)
			assert.Equal(t, "abandoned", fs.State)
			assert.Contains(t, fs.Err, tc.want.Error())
			assert.Equal(t, before, n.e.Status().Folders[0].Head, "nothing applied")
		})
	}
}

// TestTruncatedBundleWritesNothing: a stream that ends before its trailer
// is an error and nothing of it is applied, even when the bytes that came
// are a whole valid bundle.
func TestTruncatedBundleWritesNothing(t *testing.T) {
	src := newNode(t, "src")
	write(t, src.dir, "evil.txt", "should never arrive")
	_, err := src.e.Scan(t.Context(), "docs")
	require.NoError(t, err)
	var bundle bytes.Buffer
	_, err = src.e.ExportBundle(t.Context(), "docs", nil, &bundle)
	require.NoError(t, err)

	n := newNode(t, "victim")
	n.start(t)
	f := newFakePeer(t)
	require.NoError(t, n.e.AddPeer(PeerConfig{Device: f.id.DeviceID(), Folders: []string{"docs"}}))
	c := f.serveHostile(t, n.e.Addr().String(), n.e.DeviceID(), func(s *transport.Stream) {
		sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID})
		sendData(t, s, bundle.Bytes())
		require.NoError(t, s.Close()) // no trailer
	})
	defer c.Close()
	got := waitEvent(t, n.e, func(ev Event) bool { return ev.Kind == EventError && ev.Peer == f.id.DeviceID() })
	assert.ErrorContains(t, got.Err, "truncated")
	assert.True(t, n.e.Status().Folders[0].Head.IsZero(), "no ref moved")
	_, err = os.Stat(filepath.Join(n.dir, "evil.txt"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
