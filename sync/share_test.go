package sync

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
)

func newDevice(t *testing.T) crypto.DeviceID {
	t.Helper()
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	return id.DeviceID()
}

// gitLog returns the subjects of the folder's history, newest first, as the
// git CLI reads them.
func gitLog(t *testing.T, dir string) []string {
	t.Helper()
	return strings.Split(gitIn(t, dir, "log", "--format=%s", "main"), "\n")
}

// kindIs matches events of kind k.
func kindIs(k EventKind) func(Event) bool { return func(ev Event) bool { return ev.Kind == k } }

func TestPeerConfigEditPersists(t *testing.T) {
	n := newNode(t, "a")
	t.Cleanup(func() { _ = n.e.Close() })
	b := newDevice(t)
	p := PeerConfig{
		Device:     b,
		Name:       "laptop",
		Addrs:      []string{"laptop.example.net:44996", "192.0.2.7:44996"},
		Folders:    []string{"docs"},
		Directions: map[string]Direction{"docs": DirReceive},
	}
	require.NoError(t, n.e.SetPeer(p))
	waitEvent(t, n.e, kindIs(EventConfigChanged))

	got, ok := n.e.Peer(b)
	require.True(t, ok)
	assert.Equal(t, p, got)
	got.Directions["docs"] = DirSend // a copy: the engine's entry is unchanged
	again, _ := n.e.Peer(b)
	assert.Equal(t, DirReceive, again.Directions["docs"])

	// The whole entry is replaced.
	p2 := PeerConfig{Device: b, Name: "work laptop", Folders: []string{"docs", "more"}, Paused: true}
	require.NoError(t, n.e.SetPeer(p2))
	require.NoError(t, n.e.PauseFolder("docs", true))
	assert.Equal(t, []PeerConfig{p2}, n.e.Peers())

	// Bad entries are refused and change nothing.
	assert.Error(t, n.e.SetPeer(PeerConfig{Device: b, Directions: map[string]Direction{"docs": "sideways"}}))
	assert.Error(t, n.e.SetPeer(PeerConfig{Device: b, Addrs: []string{"no-port"}}))
	assert.Error(t, n.e.SetPeer(PeerConfig{Device: n.e.DeviceID()}))
	assert.ErrorIs(t, n.e.PausePeer(newDevice(t), true), ErrUnknownPeer)
	assert.ErrorIs(t, n.e.PauseFolder("nope", true), ErrUnknownFolder)
	assert.Equal(t, []PeerConfig{p2}, n.e.Peers())

	// Another engine on the same home (a CLI beside the daemon) reads it.
	home, id := n.e.cfg.Home, n.e.cfg.Identity
	other, err := New(Config{Home: home, Identity: id, Shared: true})
	require.NoError(t, err)
	defer other.Close()
	assert.Equal(t, []PeerConfig{p2}, other.Peers())
	fs := other.Folders()
	require.Len(t, fs, 1)
	assert.True(t, fs[0].Paused)
	require.NoError(t, other.PausePeer(b, false))
	require.NoError(t, other.PauseFolder("docs", false))
	peer, _ := other.Peer(b)
	assert.False(t, peer.Paused)
	assert.False(t, other.Folders()[0].Paused)
}

func TestRemoveFolderKeepsFilesAndHistory(t *testing.T) {
	n := newNode(t, "a")
	t.Cleanup(func() { _ = n.e.Close() })
	b := newDevice(t)
	require.NoError(t, n.e.SetPeer(PeerConfig{Device: b, Folders: []string{"docs"}, Directions: map[string]Direction{"docs": DirSend}}))
	write(t, n.dir, "keep.txt", "kept")
	_, err := n.e.Scan(context.Background(), "docs")
	require.NoError(t, err)

	require.NoError(t, n.e.RemoveFolder("docs"))
	assert.Empty(t, n.e.Folders())
	p, _ := n.e.Peer(b)
	assert.Empty(t, p.Folders)
	assert.Empty(t, p.Directions)
	assert.ErrorIs(t, n.e.RemoveFolder("docs"), ErrUnknownFolder)
	_, err = n.e.Scan(context.Background(), "docs")
	assert.ErrorIs(t, err, ErrUnknownFolder)

	assert.True(t, fileIs(n.dir, "keep.txt", "kept")())
	assert.Equal(t, []string{"add keep.txt"}, gitLog(t, n.dir))

	// Adding it again picks the history up.
	require.NoError(t, n.e.AddFolder(context.Background(), FolderConfig{ID: "docs", Path: n.dir, Label: "Docs"}))
	write(t, n.dir, "more.txt", "more")
	_, err = n.e.Scan(context.Background(), "docs")
	require.NoError(t, err)
	assert.Equal(t, []string{"add more.txt", "add keep.txt"}, gitLog(t, n.dir))
	assert.Equal(t, "Docs", n.e.Folders()[0].Label)
	// Adding it again at the same path relabels it.
	require.NoError(t, n.e.AddFolder(context.Background(), FolderConfig{ID: "docs", Path: n.dir, Label: "My Docs"}))
	assert.Equal(t, "My Docs", n.e.Folders()[0].Label)
	assert.Error(t, n.e.AddFolder(context.Background(), FolderConfig{ID: "docs", Path: t.TempDir(), Label: "Other"}))
}

func TestPausePeerClosesAndResumeReconnects(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	a.start(t)
	b.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	write(t, a.dir, "one.txt", "1")
	eventually(t, "first file", fileIs(b.dir, "one.txt", "1"))

	require.NoError(t, a.e.PausePeer(b.e.DeviceID(), true))
	eventually(t, "paused peer disconnected on both sides", func() bool {
		return !connected(a.e, b.e.DeviceID()) && !connected(b.e, a.e.DeviceID())
	})
	require.NoError(t, a.e.PausePeer(b.e.DeviceID(), false))
	write(t, a.dir, "two.txt", "2")
	eventually(t, "resumed peer syncs", fileIs(b.dir, "two.txt", "2"))
}

func connected(e *Engine, d crypto.DeviceID) bool {
	for _, p := range e.Status().Peers {
		if p.Device == d {
			return p.Connected
		}
	}
	return false
}

func TestPausedFolderDoesNotSync(t *testing.T) {
	a := newNode(t, "a")
	b, bHeard := newHearingNode(t, "b")
	a.start(t)
	b.start(t)
	A := a.e.DeviceID()
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: A, Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	write(t, a.dir, "one.txt", "1")
	eventually(t, "first file", fileIs(b.dir, "one.txt", "1"))

	require.NoError(t, b.e.PauseFolder("docs", true))
	write(t, a.dir, "two.txt", "2")
	// Positive marker: b received a's announcement of the head with
	// two.txt; it did not act on it, and the folder stays as it was.
	eventually(t, "b hears a's new head", func() bool {
		h := a.e.Status().Folders[0].Head
		b.e.mu.Lock()
		defer b.e.mu.Unlock()
		pc := b.e.connLocked(A)
		return len(gitLog(t, a.dir)) == 2 && pc != nil && pc.heads["docs"] == h
	})
	head := a.e.Status().Folders[0].Head
	assert.False(t, slices.ContainsFunc(bHeard.heads(A), func(h heardHead) bool { return h.head == head }))
	assert.True(t, absent(b.dir, "two.txt"))
	st := b.e.Status()
	require.Len(t, st.Folders, 1)
	assert.True(t, st.Folders[0].Paused)
	assert.Empty(t, st.Pending.Folders, "a paused folder is no offer")

	require.NoError(t, b.e.PauseFolder("docs", false))
	eventually(t, "resumed folder syncs", fileIs(b.dir, "two.txt", "2"))
}
