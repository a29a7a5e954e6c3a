package sync

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShareByAcceptance: "A adds B's ID and picks the folder; B accepts A
// and accepts the folder. Nothing else." ends with B holding A's files,
// under B's default parent, named after A's label.
func TestShareByAcceptance(t *testing.T) {
	parent := t.TempDir()
	a := newNode(t, "alice")
	b := newNodeCfg(t, "bob", func(c *Config) { c.DefaultFolderParent = parent })
	require.NoError(t, b.e.RemoveFolder("docs")) // b starts with no folder
	photos := t.TempDir()
	write(t, photos, "beach.jpg", "sand")
	write(t, photos, "2026/snow.jpg", "cold")
	require.NoError(t, a.e.AddFolder(context.Background(), FolderConfig{ID: "photos", Path: photos, Label: "Holiday Photos"}))
	a.start(t)
	b.start(t)
	A := a.e.DeviceID()

	// A adds B's ID and picks the folder.
	require.NoError(t, a.e.SetPeer(PeerConfig{Device: b.e.DeviceID(), Addrs: []string{b.e.Addr().String()}, Folders: []string{"photos"}}))

	// B sees A pending, with the name it announced and the address it
	// listens on.
	waitEvent(t, b.e, func(ev Event) bool { return ev.Kind == EventPendingDevice && ev.Peer == A && ev.Addr != "" })
	pend := b.e.Status().Pending
	require.Len(t, pend.Devices, 1)
	pd := pend.Devices[0]
	assert.Equal(t, A, pd.Device)
	assert.Equal(t, "alice", pd.Name)
	assert.Equal(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(a.e.Addr().(*net.UDPAddr).Port)), pd.Addr)
	assert.False(t, pd.FirstSeen.IsZero())
	assert.Empty(t, b.e.Peers(), "no data flows before acceptance")

	// B accepts A.
	require.NoError(t, b.e.AcceptDevice(A, nil))
	p, ok := b.e.Peer(A)
	require.True(t, ok)
	assert.Equal(t, "alice", p.Name)
	assert.Equal(t, []string{pd.Addr}, p.Addrs)
	assert.Empty(t, b.e.Pending().Devices)

	// A offers the folder.
	waitEvent(t, b.e, func(ev Event) bool { return ev.Kind == EventFolderOffer && ev.Peer == A && ev.Folder == "photos" })
	offers := b.e.Pending().Folders
	require.Len(t, offers, 1)
	assert.Equal(t, "Holiday Photos", offers[0].Label)

	// B accepts the folder.
	fc, err := b.e.AcceptFolder(context.Background(), "photos", "")
	require.NoError(t, err)
	want := filepath.Join(parent, "Holiday Photos")
	assert.Equal(t, want, fc.Path)
	assert.Equal(t, "Holiday Photos", fc.Label)
	eventually(t, "b holds a's files", func() bool {
		return fileIs(want, "beach.jpg", "sand")() && fileIs(want, "2026/snow.jpg", "cold")()
	})
	assert.Empty(t, b.e.Pending().Folders)
	assert.Equal(t, gitIn(t, photos, "rev-parse", "main"), gitIn(t, want, "rev-parse", "main"))

	// And back: B's edit reaches A (both ways by default).
	write(t, want, "from-bob.txt", "hi")
	eventually(t, "b's file reaches a", fileIs(photos, "from-bob.txt", "hi"))
}

// TestIgnoreDevice: an ignored device is refused and never recorded again;
// an ignored folder offer is not offered again.
func TestIgnoreDeviceAndFolder(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	a.start(t)
	b.start(t)
	A := a.e.DeviceID()
	require.NoError(t, a.e.SetPeer(PeerConfig{Device: b.e.DeviceID(), Addrs: []string{b.e.Addr().String()}, Folders: []string{"docs"}}))
	waitEvent(t, b.e, func(ev Event) bool { return ev.Kind == EventPendingDevice && ev.Peer == A && ev.Addr != "" })
	require.NoError(t, b.e.IgnoreDevice(A))
	assert.Empty(t, b.e.Pending().Devices)
	assert.Error(t, b.e.IgnoreDevice(b.e.DeviceID()))

	// A's dials keep failing; b records nothing. Positive marker: a new
	// device c is recorded, after more of a's attempts than the limits let
	// through.
	c := newNode(t, "c")
	c.start(t)
	require.NoError(t, c.e.SetPeer(PeerConfig{Device: b.e.DeviceID(), Addrs: []string{b.e.Addr().String()}, Folders: []string{"docs"}}))
	C := c.e.DeviceID()
	waitEvent(t, b.e, func(ev Event) bool { return ev.Kind == EventPendingDevice && ev.Peer == C && ev.Addr != "" })
	for _, d := range b.e.Pending().Devices {
		assert.NotEqual(t, A, d.Device)
	}

	// Folder offers: b accepts c but ignores its folder.
	require.NoError(t, b.e.AcceptDevice(C, nil))
	waitEvent(t, b.e, func(ev Event) bool { return ev.Kind == EventFolderOffer && ev.Peer == C })
	require.NoError(t, b.e.IgnoreFolder("docs", C))
	assert.Empty(t, b.e.Pending().Folders)
	_, err := b.e.AcceptFolder(context.Background(), "docs", "")
	assert.ErrorContains(t, err, "no offer")

	// Restart b: the ignored pair stays ignored (config.json).
	home, id := b.e.cfg.Home, b.e.cfg.Identity
	require.NoError(t, b.e.Close())
	other, err := New(Config{Home: home, Identity: id, Shared: true})
	require.NoError(t, err)
	defer other.Close()
	assert.Empty(t, other.Pending().Folders)
	assert.Empty(t, other.Pending().Devices)
}
