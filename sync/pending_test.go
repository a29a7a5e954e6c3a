package sync

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"

	"github.com/peersync/peersync/internal/testutil"
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

// TestPendingDevicesBounded: strangers are recorded at most one new device
// per second, at most maxPendingDevices of them (the one seen least
// recently makes room), all refused in the handshake while not running; an
// ignored device is not recorded again.
func TestPendingDevicesBounded(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	n := newNodeCfg(t, "b", func(c *Config) { c.Now = clock.Now })
	t.Cleanup(func() { _ = n.e.Close() })

	first := newDevice(t)
	assert.ErrorIs(t, n.e.authorize(first), crypto.ErrUnknownPeer, "not running: no introduction")
	burst := newDevice(t)
	assert.Error(t, n.e.authorize(burst))
	assert.Len(t, n.e.Pending().Devices, 1, "a second new device within a second is not recorded")

	var all []crypto.DeviceID
	for range maxPendingDevices + 5 {
		clock.Advance(time.Second)
		d := newDevice(t)
		all = append(all, d)
		assert.Error(t, n.e.authorize(d))
		clock.Advance(time.Second)
		assert.Error(t, n.e.authorize(first)) // first stays the most recently seen
	}
	pend := n.e.Pending().Devices
	require.Len(t, pend, maxPendingDevices)
	assert.True(t, slices.ContainsFunc(pend, func(p PendingDevice) bool { return p.Device == first && p.LastSeen.Equal(clock.Now()) }))
	assert.False(t, slices.ContainsFunc(pend, func(p PendingDevice) bool { return p.Device == all[0] }), "the least recently seen made room")
	assert.True(t, slices.ContainsFunc(pend, func(p PendingDevice) bool { return p.Device == all[len(all)-1] }))

	// Written to pending.json for a CLI beside the daemon.
	n.e.flushPending()
	other, err := New(Config{Home: n.e.cfg.Home, Identity: n.e.cfg.Identity, Shared: true})
	require.NoError(t, err)
	defer other.Close()
	assert.Len(t, other.Pending().Devices, maxPendingDevices)

	require.NoError(t, n.e.IgnoreDevice(first))
	clock.Advance(time.Minute)
	assert.Error(t, n.e.authorize(first))
	assert.False(t, slices.ContainsFunc(n.e.Pending().Devices, func(p PendingDevice) bool { return p.Device == first }))
	// Accepting a device that never introduced itself: no address, no name.
	require.NoError(t, n.e.AcceptDevice(all[len(all)-1], []string{"docs"}))
	p, ok := n.e.Peer(all[len(all)-1])
	require.True(t, ok)
	assert.Empty(t, p.Addrs)
	assert.Equal(t, []string{"docs"}, p.Folders)
	assert.ErrorIs(t, n.e.AcceptDevice(all[len(all)-2], []string{"nope"}), ErrUnknownFolder)
	assert.Error(t, n.e.AcceptDevice(newDevice(t), nil), "neither pending nor a peer")
	assert.NoError(t, n.e.authorize(all[len(all)-1]))
}

// TestStrangerGetsNothing: a device not in the sync table that is let
// through to introduce itself but asks for a folder instead gets no frame
// back and its connection closed; within the next 10 s it is refused in
// the handshake.
func TestStrangerGetsNothing(t *testing.T) {
	n := newNode(t, "victim")
	write(t, n.dir, "secret.txt", "mine")
	n.start(t)
	eventually(t, "scanned", func() bool { return !n.e.Status().Folders[0].Head.IsZero() })
	f := newFakePeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, err := f.tr.Dial(ctx, n.e.Addr().String(), n.e.DeviceID())
	require.NoError(t, err, "let through to introduce itself")
	s, err := c.OpenStream(ctx)
	require.NoError(t, err)
	sendJSON(t, s, message{Type: msgWant, Proto: protocolVersion, Folder: "docs"})
	_, err = readMsg(s)
	assert.Error(t, err, "the engine answered a stranger")
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the stranger's connection stayed open")
	}
	pend := n.e.Pending().Devices
	require.Len(t, pend, 1)
	assert.Equal(t, f.id.DeviceID(), pend[0].Device)
	assert.Empty(t, pend[0].Name)
	assert.Empty(t, pend[0].Addr)

	_, err = f.tr.Dial(ctx, n.e.Addr().String(), n.e.DeviceID())
	assert.ErrorIs(t, err, transport.ErrRefused)
}

// TestAcceptOfferOfExistingFolder: a peer offers a folder ID we already
// have (shared with nobody); accepting shares ours with it, where it is.
func TestAcceptOfferOfExistingFolder(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	a.start(t)
	b.start(t)
	B := b.e.DeviceID()
	require.NoError(t, a.e.SetPeer(PeerConfig{Device: B})) // knows b, shares nothing
	require.NoError(t, b.e.SetPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	write(t, b.dir, "from-b.txt", "b")
	waitEvent(t, a.e, func(ev Event) bool { return ev.Kind == EventFolderOffer && ev.Peer == B && ev.Folder == "docs" })
	assert.True(t, absent(a.dir, "from-b.txt"), "an offer is no share")

	_, err := a.e.AcceptFolder(context.Background(), "docs", t.TempDir())
	assert.ErrorContains(t, err, "already shared from")
	fc, err := a.e.AcceptFolder(context.Background(), "docs", "")
	require.NoError(t, err)
	assert.Equal(t, a.dir, fc.Path)
	p, _ := a.e.Peer(B)
	assert.Equal(t, []string{"docs"}, p.Folders)
	eventually(t, "b's file reaches a's existing folder", fileIs(a.dir, "from-b.txt", "b"))
}
