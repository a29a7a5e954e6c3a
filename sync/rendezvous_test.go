package sync

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
)

func newRVNode(t *testing.T, name string, rv *RendezvousConfig, serve bool) *node {
	t.Helper()
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	e, err := New(Config{
		Home: t.TempDir(), Identity: id, Network: NetworkConfig{ListenAddr: "127.0.0.1:0"},
		ScanInterval: 100 * time.Millisecond, DialInterval: 100 * time.Millisecond,
		NAT: NATConfig{Rendezvous: rv, ServeRendezvous: serve,
			STUN: []string{}}, // loopback: host candidates are enough
	})
	require.NoError(t, err)
	require.NoError(t, e.SetName(name))
	dir := t.TempDir()
	require.NoError(t, e.AddFolder(context.Background(), FolderConfig{ID: "docs", Path: dir}))
	return &node{e: e, dir: dir}
}

// newRVPair returns devices a and b, which share "docs" and know only each
// other's DeviceID, with rv as their rendezvous (nil: none yet), both in
// the sync table of srv, the rendezvous server.
func newRVPair(t *testing.T, srv *node, rv *RendezvousConfig) (a, b *node) {
	t.Helper()
	a, b = newRVNode(t, "a", rv, false), newRVNode(t, "b", rv, false)
	require.NoError(t, srv.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Name: "a"}))
	require.NoError(t, srv.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Name: "b"}))
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Folders: []string{"docs"}}))
	return a, b
}

// TestRendezvousICE: two devices that know only each other's DeviceID (no
// address) meet through the rendezvous server, connect with ICE, and sync
// directly; the server relays signaling only (it shares no folder).
func TestRendezvousICE(t *testing.T) {
	srv := newRVNode(t, "server", nil, true)
	srv.start(t)
	a, b := newRVPair(t, srv, &RendezvousConfig{Device: srv.e.DeviceID(), Addr: srv.e.Addr().String()})

	write(t, a.dir, "met.txt", "through the rendezvous")
	a.start(t)
	b.start(t)
	eventually(t, "a's file reaches b", fileIs(b.dir, "met.txt", "through the rendezvous"))
	write(t, b.dir, "back.txt", "and back")
	eventually(t, "and back", fileIs(a.dir, "back.txt", "and back"))

	pa := a.e.Status().Peers[0]
	assert.True(t, pa.Connected)
	assert.Equal(t, "ice-host quic", pa.Path, "connected with ICE, not through the server")
	_, err := srv.e.Scan(context.Background(), "docs")
	require.NoError(t, err)
	assert.True(t, srv.e.Status().Folders[0].Head.IsZero(), "the rendezvous saw no folder data")
}

// TestRendezvousRefusesStrangers: a device not in b's table gets no answer
// to its offer, so no connection. The absence is checked once b has
// refused the offer (the stranger is then one of b's pending devices).
func TestRendezvousRefusesStrangers(t *testing.T) {
	srv := newRVNode(t, "server", nil, true)
	srv.start(t)
	rv := &RendezvousConfig{Device: srv.e.DeviceID(), Addr: srv.e.Addr().String()}
	b, stranger := newRVNode(t, "b", rv, false), newRVNode(t, "stranger", rv, false)
	require.NoError(t, srv.e.AddPeer(PeerConfig{Device: b.e.DeviceID()}))
	require.NoError(t, srv.e.AddPeer(PeerConfig{Device: stranger.e.DeviceID()}))
	require.NoError(t, stranger.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	write(t, b.dir, "secret.txt", "b's")
	b.start(t)
	stranger.start(t)
	eventually(t, "b refuses the stranger's ICE offer", func() bool {
		return slices.ContainsFunc(b.e.Pending().Devices, func(p PendingDevice) bool { return p.Device == stranger.e.DeviceID() })
	})
	assert.False(t, stranger.e.Status().Peers[0].Connected)
	assert.False(t, fileIs(stranger.dir, "secret.txt", "b's")())
}

// TestRendezvousUnpinned: given only the server's address, devices take
// whichever device answers there as their rendezvous, learn its DeviceID
// (status shows it, unpinned) and still meet through it.
func TestRendezvousUnpinned(t *testing.T) {
	srv := newRVNode(t, "server", nil, true)
	srv.start(t)
	a, b := newRVPair(t, srv, &RendezvousConfig{Addr: srv.e.Addr().String()})

	write(t, a.dir, "met.txt", "through an unpinned rendezvous")
	a.start(t)
	b.start(t)
	eventually(t, "a's file reaches b", fileIs(b.dir, "met.txt", "through an unpinned rendezvous"))
	rs := a.e.Status().Rendezvous
	require.NotNil(t, rs)
	assert.Equal(t, srv.e.DeviceID(), rs.Device, "learned from the connection")
	assert.False(t, rs.Pinned)
	assert.True(t, rs.Registered)
	assert.Equal(t, "ice-host quic", a.e.Status().Peers[0].Path)
}
