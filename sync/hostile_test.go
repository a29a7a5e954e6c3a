package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// fakePeer is a peer in the engine's table that speaks the protocol by
// hand, to send what an honest engine never would.
type fakePeer struct {
	id *crypto.Identity
	tr *transport.Transport
}

func newFakePeer(t *testing.T) *fakePeer {
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	tr, err := transport.New(transport.Config{
		Identity: id, ListenAddr: "127.0.0.1:0",
		Authorize: func(crypto.DeviceID) error { return nil },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return &fakePeer{id: id, tr: tr}
}

func sendJSON(t *testing.T, s *transport.Stream, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, transport.WriteFrame(s, b))
}

// sendData writes one data frame of a want's answer.
func sendData(t *testing.T, s *transport.Stream, b []byte) {
	t.Helper()
	require.NoError(t, transport.WriteFrame(s, append([]byte{dataTag}, b...)))
}

// trailerOf is the honest trailer of bundle b.
func trailerOf(b []byte) answer {
	sum := sha256.Sum256(b)
	return answer{Type: ansEnd, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

const fakeBundleID = "0123456789abcdef0123456789abcdef"

// serveHostile connects to the engine, claims a head the engine lacks and
// answers the engine's want with answer, which writes whatever it likes on
// the want stream.
func (f *fakePeer) serveHostile(t *testing.T, engineAddr string, engineID crypto.DeviceID, answer func(s *transport.Stream)) *transport.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := f.tr.Dial(ctx, engineAddr, engineID)
	require.NoError(t, err)
	ctrl, err := c.OpenStream(ctx)
	require.NoError(t, err)
	sendJSON(t, ctrl, message{Type: msgControl, Proto: protocolVersion, Name: "evil"})
	var fakeHead gitstore.Hash
	fakeHead[0] = 0xee
	sendJSON(t, ctrl, message{Type: msgHead, Folder: "docs", Head: fakeHead})
	for {
		s, err := c.AcceptStream(ctx)
		require.NoError(t, err, "the engine should ask for a bundle")
		b, err := transport.ReadFrame(s, 0)
		require.NoError(t, err)
		m, err := decodeMessage(b)
		require.NoError(t, err)
		if m.Type != msgWant {
			continue // the engine's own control stream
		}
		answer(s)
		return c
	}
}

func TestHostilePeerBundleRefused(t *testing.T) {
	garbage := []byte("# v2 git bundle\nthis is not a pack at all, but has some length.")
	cases := map[string]func(t *testing.T, s *transport.Stream){
		"garbage bundle": func(t *testing.T, s *transport.Stream) {
			sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID})
			sendData(t, s, garbage)
			sendJSON(t, s, trailerOf(garbage))
		},
		"frame beyond the limit": func(t *testing.T, s *transport.Stream) {
			sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID})
			_, _ = s.Write([]byte{0x40, 0, 0, 0, dataTag}) // declares 1 GiB
		},
		"bundle beyond MaxBundleSize": func(t *testing.T, s *transport.Stream) {
			sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID})
			for range 3 {
				sendData(t, s, make([]byte, 600)) // the victim's limit is 1,000 bytes
			}
		},
		"trailer does not match": func(t *testing.T, s *transport.Stream) {
			sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID})
			sendData(t, s, garbage)
			tr := trailerOf([]byte("something else"))
			tr.Size = int64(len(garbage))
			sendJSON(t, s, tr)
		},
		"data before the bundle frame": func(t *testing.T, s *transport.Stream) {
			sendData(t, s, garbage)
		},
		"garbage frame": func(t *testing.T, s *transport.Stream) {
			require.NoError(t, transport.WriteFrame(s, []byte("{not json")))
		},
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			n, f, before := newVictim(t, func(c *Config) { c.MaxBundleSize = 1000 })

			c := f.serveHostile(t, n.e.Addr().String(), n.e.DeviceID(), func(s *transport.Stream) { answer(t, s) })
			refused(t, n, f, c, before)
			b, err := os.ReadFile(filepath.Join(n.dir, "precious.txt"))
			require.NoError(t, err)
			assert.Equal(t, "keep me", string(b))
		})
	}
}

// newVictim starts an engine (its Config changed by mod) whose folder holds
// precious.txt, with a fake peer in its table that shares the folder; it
// returns them and the engine's head.
func newVictim(t *testing.T, mod func(*Config)) (*node, *fakePeer, gitstore.Hash) {
	t.Helper()
	n := newNodeCfg(t, "victim", mod)
	write(t, n.dir, "precious.txt", "keep me")
	n.start(t)
	f := newFakePeer(t)
	require.NoError(t, n.e.AddPeer(PeerConfig{Device: f.id.DeviceID(), Folders: []string{"docs"}}))
	eventually(t, "scanned", func() bool { return !n.e.Status().Folders[0].Head.IsZero() })
	return n, f, n.e.Status().Folders[0].Head
}

// refused asserts that n refused the bundle f sent over c: an EventError
// with a *gitstore.BundleError (returned), f disconnected, n's head still
// before.
func refused(t *testing.T, n *node, f *fakePeer, c *transport.Conn, before gitstore.Hash) *gitstore.BundleError {
	t.Helper()
	got := waitEvent(t, n.e, func(ev Event) bool { return ev.Kind == EventError && ev.Peer == f.id.DeviceID() })
	var be *gitstore.BundleError
	assert.True(t, errors.As(got.Err, &be), "got %v", got.Err)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a peer that sent a refused bundle must be disconnected")
	}
	assert.Equal(t, before, n.e.Status().Folders[0].Head, "no ref moved")
	return be
}

// waitEvent returns the first event of e that match accepts.
func waitEvent(t *testing.T, e *Engine, match func(Event) bool) Event {
	t.Helper()
	var got Event
	eventually(t, "a matching event", func() bool {
		for {
			select {
			case ev := <-e.Events():
				if match(ev) {
					got = ev
					return true
				}
			default:
				return false
			}
		}
	})
	return got
}

// TestSimultaneousDial: both peers know each other's address and dial at
// once; they settle on one connection and sync.
func TestSimultaneousDial(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	a.start(t)
	b.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Addrs: []string{b.e.Addr().String()}, Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	write(t, a.dir, "x.txt", "from a")
	write(t, b.dir, "y.txt", "from b")
	eventually(t, "both files on both sides", func() bool {
		return fileIs(a.dir, "y.txt", "from b")() && fileIs(b.dir, "x.txt", "from a")()
	})
	eventually(t, "one stable connection each way", func() bool {
		sa, sb := a.e.Status(), b.e.Status()
		return sa.Peers[0].Connected && sb.Peers[0].Connected && sa.Folders[0].Head == sb.Folders[0].Head
	})
	// Stays connected (no flapping between duplicate connections): one
	// more exchange each way over it, and no connection came or went.
	drain(a.e.Events())
	drain(b.e.Events())
	write(t, a.dir, "x2.txt", "again from a")
	eventually(t, "a second file reaches b", fileIs(b.dir, "x2.txt", "again from a"))
	write(t, b.dir, "y2.txt", "again from b")
	eventually(t, "and one reaches a", fileIs(a.dir, "y2.txt", "again from b"))
	assert.True(t, a.e.Status().Peers[0].Connected)
	assert.True(t, b.e.Status().Peers[0].Connected)
	assertNoConnectionChange(t, a.e.Events())
	assertNoConnectionChange(t, b.e.Events())
}

// TestReconnectAfterRestart: a peer that goes away and comes back is
// reconnected and catches up on what changed meanwhile.
func TestReconnectAfterRestart(t *testing.T) {
	a := newNode(t, "a")
	a.start(t)
	bID, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	bHome, bDir := t.TempDir(), t.TempDir()
	mkB := func() *Engine {
		e, err := New(Config{Home: bHome, Identity: bID, Network: NetworkConfig{ListenAddr: "127.0.0.1:0"}, ScanInterval: 100 * time.Millisecond, DialInterval: 100 * time.Millisecond})
		require.NoError(t, err)
		return e
	}
	b1 := mkB()
	require.NoError(t, b1.AddFolder(context.Background(), FolderConfig{ID: "docs", Path: bDir}))
	require.NoError(t, b1.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: bID.DeviceID(), Folders: []string{"docs"}}))
	runB := func(e *Engine) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		return func() { cancel(); <-done; require.NoError(t, e.Close()) }
	}
	stop := runB(b1)
	write(t, a.dir, "one.txt", "1")
	eventually(t, "first sync", fileIs(bDir, "one.txt", "1"))
	stop()

	write(t, a.dir, "two.txt", "2") // while b is away
	b2 := mkB()
	stop = runB(b2)
	defer stop()
	eventually(t, "catches up after restart", fileIs(bDir, "two.txt", "2"))
}

// TestStalledBundleDoesNotBlockFolder: a peer that declares a bundle and
// then sends nothing must not hold the folder: local scans go on.
func TestStalledBundleDoesNotBlockFolder(t *testing.T) {
	n := newNode(t, "victim")
	n.start(t)
	f := newFakePeer(t)
	require.NoError(t, n.e.AddPeer(PeerConfig{Device: f.id.DeviceID(), Folders: []string{"docs"}}))
	c := f.serveHostile(t, n.e.Addr().String(), n.e.DeviceID(), func(s *transport.Stream) {
		sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID})
		sendData(t, s, []byte("# v2 git bundle\n"))
	})
	defer c.Close()
	eventually(t, "the engine receives the stalled bundle", func() bool {
		for _, fs := range n.e.Status().Folders[0].Fetches {
			if fs.State == "receiving" {
				return true
			}
		}
		return false
	})
	write(t, n.dir, "while-stalled.txt", "still committed")
	done := make(chan error, 1)
	go func() { _, err := n.e.Scan(context.Background(), "docs"); done <- err }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled peer blocked the folder")
	}
	assert.False(t, n.e.Status().Folders[0].Head.IsZero())
}

// TestWantForUnsharedFolderRefused: a peer asking for a folder that is not
// shared with it gets an error and not one byte of bundle.
func TestWantForUnsharedFolderRefused(t *testing.T) {
	n := newNode(t, "victim")
	write(t, n.dir, "private.txt", "not yours")
	n.start(t)
	f := newFakePeer(t)
	require.NoError(t, n.e.AddPeer(PeerConfig{Device: f.id.DeviceID()})) // known, shares nothing
	eventually(t, "scanned", func() bool { return !n.e.Status().Folders[0].Head.IsZero() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := f.tr.Dial(ctx, n.e.Addr().String(), n.e.DeviceID())
	require.NoError(t, err)
	defer c.Close()
	s, err := c.OpenStream(ctx)
	require.NoError(t, err)
	sendJSON(t, s, message{Type: msgWant, Folder: "docs"})
	require.NoError(t, s.Close())
	raw, err := transport.ReadFrame(s, 0)
	require.NoError(t, err)
	a, err := decodeAnswer(raw)
	require.NoError(t, err)
	assert.Equal(t, ansError, a.Type)
	assert.NotEmpty(t, a.Error)
	rest, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Empty(t, rest, "no bundle bytes follow a refusal")
}

// TestReconnectSameDirection: a peer that dials again (it restarted; the
// old connection is dead but not timed out) gets in at once.
func TestReconnectSameDirection(t *testing.T) {
	n := newNode(t, "a")
	n.start(t)
	f := newFakePeer(t)
	require.NoError(t, n.e.AddPeer(PeerConfig{Device: f.id.DeviceID(), Folders: []string{"docs"}}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A dialer opens its control stream at once: only then does the
	// accepting side register the connection.
	dial := func() *transport.Conn {
		c, err := f.tr.Dial(ctx, n.e.Addr().String(), n.e.DeviceID())
		require.NoError(t, err)
		ctrl, err := c.OpenStream(ctx)
		require.NoError(t, err)
		sendJSON(t, ctrl, message{Type: msgControl, Name: "f"})
		return c
	}
	first := dial()
	eventually(t, "connected", func() bool { return n.e.Status().Peers[0].Connected })
	second := dial()
	select {
	case <-first.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the older connection should be replaced")
	}
	select {
	case <-second.Done():
		t.Fatalf("the newer connection was refused: %v", second.Err())
	case <-time.After(300 * time.Millisecond):
	}
}

// TestSilentIncomingConnectionClosed: a device that connects but never
// opens its control stream (a race's loser, or a peer up to no good) is
// not registered, and is closed after streamTimeout.
func TestSilentIncomingConnectionClosed(t *testing.T) {
	n := newNode(t, "a")
	n.start(t)
	f := newFakePeer(t)
	require.NoError(t, n.e.AddPeer(PeerConfig{Device: f.id.DeviceID(), Folders: []string{"docs"}}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := f.tr.Dial(ctx, n.e.Addr().String(), n.e.DeviceID())
	require.NoError(t, err)
	deadline := time.After(streamTimeout + 10*time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-c.Done():
			done = true
		case <-tick.C:
			require.False(t, n.e.Status().Peers[0].Connected, "a silent connection is never registered")
		case <-deadline:
			t.Fatal("a silent connection should be closed")
		}
	}
}
