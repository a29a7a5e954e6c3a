package main

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTURNClient(t *testing.T, server net.Addr, user, pass string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server.String(),
		TURNServerAddr: server.String(),
		Username:       user,
		Password:       pass,
		Realm:          "peersync",
		Conn:           conn,
		RTO:            200 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, c.Listen())
	t.Cleanup(c.Close)
	return c
}

func TestSTUNAnswersWithObservedAddress(t *testing.T) {
	r, err := startRelay(relayConfig{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer r.Close()
	c := newTURNClient(t, r.Addr(), "", "")
	mapped, err := c.SendBindingRequest()
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", mapped.(*net.UDPAddr).IP.String(), "STUN tells the client the address it was seen at")
}

func TestTURNRelaysWithCredentials(t *testing.T) {
	r, err := startRelay(relayConfig{Listen: "127.0.0.1:0", User: "alice", Pass: "s3cret", AllowLocalPeers: true})
	require.NoError(t, err)
	defer r.Close()
	c := newTURNClient(t, r.Addr(), "alice", "s3cret")
	relayConn, err := c.Allocate()
	require.NoError(t, err)
	defer relayConn.Close()
	assert.Equal(t, "127.0.0.1", relayConn.LocalAddr().(*net.UDPAddr).IP.String())

	// A peer sends to the relay address; the client receives it, and back.
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer peer.Close()
	require.NoError(t, c.CreatePermission(peer.LocalAddr()))
	_, err = relayConn.WriteTo([]byte("via relay"), peer.LocalAddr())
	require.NoError(t, err)
	buf := make([]byte, 100)
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, from, err := peer.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "via relay", string(buf[:n]))
	assert.Equal(t, relayConn.LocalAddr().String(), from.String(), "traffic comes from the relay, not the client")

	_, err = peer.WriteTo([]byte("and back"), from)
	require.NoError(t, err)
	require.NoError(t, relayConn.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, _, err = relayConn.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "and back", string(buf[:n]))
}

func TestTURNRefusesWrongCredentials(t *testing.T) {
	r, err := startRelay(relayConfig{Listen: "127.0.0.1:0", User: "alice", Pass: "s3cret"})
	require.NoError(t, err)
	defer r.Close()
	c := newTURNClient(t, r.Addr(), "alice", "wrong")
	_, err = c.Allocate()
	require.Error(t, err, "a wrong password must not get a relay")

	// STUN-only server: nobody gets a relay.
	s, err := startRelay(relayConfig{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer s.Close()
	c2 := newTURNClient(t, s.Addr(), "alice", "s3cret")
	_, err = c2.Allocate()
	require.Error(t, err)
}

func TestRelayConfigErrors(t *testing.T) {
	for name, cfg := range map[string]relayConfig{
		"user without pass":            {Listen: "127.0.0.1:0", User: "a"},
		"no relay ip on wildcard":      {Listen: ":0", User: "a", Pass: "b"},
		"colon in user":                {Listen: "127.0.0.1:0", User: "a:b", Pass: "b"},
		"unlistenable address":         {Listen: "256.0.0.1:0"},
		"relay ip that is not an ip":   {Listen: "127.0.0.1:0", User: "a", Pass: "b", RelayIP: "nope"},
		"unspecified relay ip refused": {Listen: "127.0.0.1:0", User: "a", Pass: "b", RelayIP: "0.0.0.0"},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := startRelay(cfg)
			if err == nil {
				_ = r.Close()
			}
			assert.Error(t, err)
		})
	}
}

func TestPermitPeer(t *testing.T) {
	own := ownAddrs(net.ParseIP("198.51.100.7"), &net.UDPAddr{IP: net.ParseIP("198.51.100.8"), Port: 3478})
	own[netip.MustParseAddr("198.51.100.255")] = true // as if an interface had 198.51.100.0/24
	strict, local := permitPeer(false, own), permitPeer(true, own)
	tests := []struct {
		ip            string
		strict, local bool
	}{
		{"203.0.113.9", true, true},
		{"2001:db8::1", true, true},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"10.1.2.3", false, true},
		{"192.168.1.1", false, true},
		{"169.254.169.254", false, true},
		{"fe80::1", false, true},
		{"198.51.100.7", false, true},   // the relay address
		{"198.51.100.8", false, true},   // the listening address
		{"198.51.100.255", false, true}, // a directed broadcast address
		{"0.0.0.0", false, false},
		{"0.1.2.3", false, false},
		{"100.64.0.1", false, false},
		{"100.127.255.254", false, false},
		{"198.18.0.1", false, false},
		{"198.19.255.1", false, false},
		{"240.0.0.1", false, false},
		{"255.255.255.255", false, false},
		{"::ffff:100.64.0.1", false, false},
		{"224.0.0.1", false, false},
		{"ff02::1", false, false},
		{"100.128.0.1", true, true}, // just outside 100.64.0.0/10
		{"198.20.0.1", true, true},  // just outside 198.18.0.0/15
	}
	for _, tt := range tests {
		assert.Equal(t, tt.strict, strict(nil, net.ParseIP(tt.ip)), "strict %s", tt.ip)
		assert.Equal(t, tt.local, local(nil, net.ParseIP(tt.ip)), "local %s", tt.ip)
	}
}

func TestOwnAddrsHasInterfaces(t *testing.T) {
	own := ownAddrs(net.ParseIP("203.0.113.1"), &net.UDPAddr{IP: net.IPv4zero, Port: 3478})
	assert.True(t, own[netip.MustParseAddr("203.0.113.1")], "the relay IP")
	assert.True(t, own[netip.MustParseAddr("127.0.0.1")], "an interface address")
	assert.True(t, own[netip.MustParseAddr("127.255.255.255")], "loopback's broadcast address")
}
