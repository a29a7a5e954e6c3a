package sync

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freeAddr returns a loopback UDP address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	require.NoError(t, c.Close())
	return addr
}

// TestSettingsRefuseBadValues: each faulty field is named in a
// *SettingsError, and config.json is left as it was.
func TestSettingsRefuseBadValues(t *testing.T) {
	n := newNode(t, "a")
	confPath := filepath.Join(n.e.cfg.Home, string(docConfig))
	before, err := os.ReadFile(confPath)
	require.NoError(t, err)
	good := Settings{ListenAddr: "127.0.0.1:0"}
	cases := []struct {
		field string
		mod   func(*Settings)
	}{
		{"listenAddr", func(s *Settings) { s.ListenAddr = "no port" }},
		{"listenAddr", func(s *Settings) { s.ListenAddr = ":70000" }},
		{"listenAddr", func(s *Settings) { s.ListenAddr = "example.com:44996" }},
		{"rendezvousAddr", func(s *Settings) { s.RendezvousAddr = "host-without-port" }},
		{"rendezvousAddr", func(s *Settings) { s.RendezvousDevice = n.e.DeviceID().String() }},
		{"rendezvousDevice", func(s *Settings) { s.RendezvousAddr, s.RendezvousDevice = "rv.example:44996", "ABCD" }},
		{"stun", func(s *Settings) { s.STUN = []string{"stun.example:3478", ":3478"} }},
		{"turn", func(s *Settings) { s.TURN = []TURNSetting{{Addr: "turn.example:3478", Pass: "p"}} }},
		{"turn", func(s *Settings) { s.TURN = []TURNSetting{{Addr: "turn.example:3478", User: "u"}} }},
	}
	for _, c := range cases {
		s := good
		c.mod(&s)
		err := n.e.SetSettings(s)
		var se *SettingsError
		require.ErrorAs(t, err, &se, "%+v", s)
		assert.Equal(t, c.field, se.Field, "%+v: %v", s, err)
	}
	after, err := os.ReadFile(confPath)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "nothing saved")
}

// TestSettingsSavedAndWriteOnlyPassword: saved settings win over a later
// Config on the same home; the TURN password is in config.json but never
// in Settings, and an entry sent back without it keeps it.
func TestSettingsSavedAndWriteOnlyPassword(t *testing.T) {
	n := newNode(t, "a")
	assert.Equal(t, "127.0.0.1:0", n.e.Settings().ListenAddr, "the Config's until saved")
	s := Settings{ListenAddr: "127.0.0.1:0", Discovery: false, RendezvousAddr: "rv.example:44996",
		STUN: []string{"stun.example:3478"}, TURN: []TURNSetting{{Addr: "turn.example:3478", User: "ann", Pass: "s3cret-pass"}}}
	require.NoError(t, n.e.SetSettings(s))
	got := n.e.Settings()
	require.Len(t, got.TURN, 1)
	assert.Equal(t, TURNSetting{Addr: "turn.example:3478", User: "ann", HasPass: true}, got.TURN[0])
	require.NoError(t, n.e.SetSettings(got), "sent back as read: the password is kept")
	assert.Equal(t, "s3cret-pass", n.e.iceConfig().TURNServers[0].Pass)
	conf, err := os.ReadFile(filepath.Join(n.e.cfg.Home, string(docConfig)))
	require.NoError(t, err)
	assert.Contains(t, string(conf), "s3cret-pass")
	assert.Equal(t, []string{"stun.example:3478"}, n.e.iceConfig().STUNServers)

	home, id := n.e.cfg.Home, n.e.cfg.Identity
	require.NoError(t, n.e.Close())
	e2, err := New(Config{Home: home, Identity: id, Network: NetworkConfig{ListenAddr: "127.0.0.1:1"},
		NAT: NATConfig{STUN: []string{}}})
	require.NoError(t, err)
	defer e2.Close()
	assert.Equal(t, "127.0.0.1:0", e2.Settings().ListenAddr, "config.json's settings win over the Config")
	assert.Equal(t, "rv.example:44996", e2.Status().Rendezvous.Addr)
	got.STUN = nil
	require.NoError(t, e2.SetSettings(got))
	assert.Equal(t, []string{"rv.example:3478"}, e2.iceConfig().STUNServers, "empty STUN: the rendezvous host")
}

// TestSettingsListenAfterRestart: a new listen address waits for the next
// Run (RestartNeeded), which listens there and syncs with a peer that
// dials the new address.
func TestSettingsListenAfterRestart(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	a.start(t)
	assert.False(t, a.e.RestartNeeded())
	addr := freeAddr(t)
	s := a.e.Settings()
	s.ListenAddr = addr
	require.NoError(t, a.e.SetSettings(s))
	assert.True(t, a.e.RestartNeeded(), "running on the old address")
	assert.NotEqual(t, addr, a.e.Addr().String())
	a.cancel()
	<-a.done
	a.start(t)
	assert.Equal(t, addr, a.e.Addr().String())
	assert.False(t, a.e.RestartNeeded())

	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{addr}, Folders: []string{"docs"}}))
	write(t, a.dir, "moved.txt", "on the new port")
	b.start(t)
	eventually(t, "b reaches a on its new port", fileIs(b.dir, "moved.txt", "on the new port"))
}

// TestSettingsDiscoveryLive: LAN discovery turns on and off in a running
// engine, as Status shows, and a second Run starts it from the saved
// settings. (Discovery finding peers is TestLANDiscoverySync's, in network
// namespaces; here it has no interface.)
func TestSettingsDiscoveryLive(t *testing.T) {
	a := newNodeCfg(t, "a", func(c *Config) { c.test = &testHooks{noMulticast: true} }) // nothing leaves the machine
	a.start(t)
	assert.False(t, a.e.Status().Discovery)
	s := a.e.Settings()
	s.Discovery = true
	require.NoError(t, a.e.SetSettings(s))
	assert.True(t, a.e.Status().Discovery, "on at once")
	assert.False(t, a.e.RestartNeeded())
	a.cancel()
	<-a.done
	a.start(t)
	assert.True(t, a.e.Status().Discovery, "on again in the next Run")
	s.Discovery = false
	require.NoError(t, a.e.SetSettings(s))
	assert.False(t, a.e.Status().Discovery, "off at once")
}

// TestSettingsRendezvousLive: two running devices that know only each
// other's DeviceID are given a rendezvous server through SetSettings;
// without a restart they register there, meet with ICE and sync.
func TestSettingsRendezvousLive(t *testing.T) {
	srv := newRVNode(t, "server", nil, true)
	srv.start(t)
	a, b := newRVPair(t, srv, nil)
	write(t, a.dir, "met.txt", "through a rendezvous set live")
	a.start(t)
	b.start(t)
	assert.Nil(t, a.e.Status().Rendezvous)
	for _, n := range []*node{a, b} {
		s := n.e.Settings()
		s.RendezvousAddr, s.RendezvousDevice = srv.e.Addr().String(), srv.e.DeviceID().String()
		require.NoError(t, n.e.SetSettings(s))
	}
	// (The file may also come through the server's mailbox: the
	// connection is what shows the devices met.)
	eventually(t, "a meets b with ICE", func() bool {
		p := a.e.Status().Peers[0]
		return p.Connected && strings.HasPrefix(p.Path, "ice-")
	})
	eventually(t, "a's file reaches b", fileIs(b.dir, "met.txt", "through a rendezvous set live"))
	// Registered is watched, not read once: a registration ends with its
	// connection (a duplicate one closed) and the next one registers anew.
	eventually(t, "a registered at the server set live", func() bool {
		rs := a.e.Status().Rendezvous
		return rs != nil && rs.Registered && rs.Pinned && rs.Device == srv.e.DeviceID()
	})
	assert.False(t, a.e.RestartNeeded())
}

// TestSettingsFromConfig: without saved settings, Settings shows the
// Config's network fields, passwords left out.
func TestSettingsFromConfig(t *testing.T) {
	n := newNodeCfg(t, "a", func(c *Config) { c.Discovery.Enabled = true }) // not run
	got := n.e.Settings()
	assert.Equal(t, Settings{ListenAddr: "127.0.0.1:0", Discovery: true, STUN: []string{}, TURN: []TURNSetting{}}, got)
}
