package main

import (
	"net"
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
	strict, local := permitPeer(false), permitPeer(true)
	for ip, want := range map[string]bool{
		"203.0.113.9": true, "127.0.0.1": false, "10.1.2.3": false, "192.168.1.1": false,
		"169.254.169.254": false, "::1": false, "fe80::1": false, "0.0.0.0": false, "224.0.0.1": false,
	} {
		assert.Equal(t, want, strict(nil, net.ParseIP(ip)), ip)
	}
	assert.True(t, local(nil, net.ParseIP("127.0.0.1")))
	assert.False(t, local(nil, net.ParseIP("224.0.0.1")))
}
