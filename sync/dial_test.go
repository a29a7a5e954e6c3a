package sync

import (
	"context"
	"errors"
	"net"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// TestDialPrefersTCP: a peer with a known address is reached over TCP+TLS
// (kernel TCP with BBR holds up under loss), and both sides say so.
func TestDialPrefersTCP(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	write(t, a.dir, "x.txt", "over tcp")
	b.start(t)
	eventually(t, "a's file reaches b", fileIs(b.dir, "x.txt", "over tcp"))
	eventually(t, "both sides report the tcp path", func() bool {
		sa, sb := a.e.Status(), b.e.Status()
		return sa.Peers[0].Connected && sb.Peers[0].Connected && sa.Peers[0].Path == "lan tcp" && sb.Peers[0].Path == "lan tcp"
	})
}

// TestDialFallsBackToQUIC: when the peer takes no TCP (a network that
// blocks it, here: no listener), the race's QUIC attempt wins.
func TestDialFallsBackToQUIC(t *testing.T) {
	a := newNodeCfg(t, "a", func(c *Config) { c.Network.DisableTCP = true })
	b := newNode(t, "b")
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	write(t, a.dir, "x.txt", "over quic")
	b.start(t)
	eventually(t, "a's file reaches b", fileIs(b.dir, "x.txt", "over quic"))
	eventually(t, "b reports the QUIC path", func() bool {
		sb := b.e.Status()
		return sb.Peers[0].Connected && sb.Peers[0].Path == "lan quic"
	})
}

// TestDialRaceWithoutHeadStart: with no head start, TCP and QUIC both
// authenticate; the dialer keeps one and closes the other, and the other
// side never lets the loser replace the winner. If QUIC won, the one
// change that follows is the move to TCP (see upgrade); if TCP won,
// nothing changes.
func TestDialRaceWithoutHeadStart(t *testing.T) {
	a := newNode(t, "a")
	b := newNodeCfg(t, "b", func(c *Config) { c.test = &testHooks{noStagger: true} })
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
	var paths []string
	disconnects := 0
	deadline := time.After(2 * time.Second)
	for done := false; !done; {
		select {
		case ev := <-a.e.Events():
			switch ev.Kind {
			case EventPeerConnected:
				paths = append(paths, ev.Path)
			case EventPeerDisconnected:
				disconnects++
			}
		case <-deadline:
			done = true
		}
	}
	require.NotEmpty(t, paths)
	if paths[0] == "lan tcp" {
		assert.Equal(t, []string{"lan tcp"}, paths, "TCP won: the connection never changed")
		assert.Zero(t, disconnects)
	} else {
		assert.Equal(t, []string{paths[0], "lan tcp"}, paths, "QUIC won: then moved to TCP, once")
		assert.Equal(t, 1, disconnects)
	}
	write(t, a.dir, "x.txt", "after the race")
	eventually(t, "and it carries data", fileIs(b.dir, "x.txt", "after the race"))
}

// TestIdleConnectionClosed: a peer that shares no folder with us is not
// dialed, and its connection is closed after IdleTimeout.
func TestIdleConnectionClosed(t *testing.T) {
	a := newNodeCfg(t, "a", func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	b := newNode(t, "b")
	a.start(t)
	// a knows b but shares nothing with it; b wants docs from a.
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Addrs: []string{"127.0.0.1:9"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
	var connected, idleClosed bool
	deadline := time.After(20 * time.Second)
	for !(connected && idleClosed) {
		select {
		case ev := <-a.e.Events():
			switch ev.Kind {
			case EventPeerConnected:
				connected = true
			case EventPeerDisconnected:
				idleClosed = connected && ev.Err != nil
			}
		case <-deadline:
			t.Fatalf("connected=%v idle-closed=%v", connected, idleClosed)
		}
	}
	a.e.mu.Lock()
	dialing := a.e.peerLocked(b.e.DeviceID()).dialing
	a.e.mu.Unlock()
	assert.False(t, dialing, "a never dials a peer it shares nothing with")
}

// TestRace checks the dial race on real transports: an attempt that fails
// at once starts the next without waiting for its head start; every
// failure is reported; a latecomer that authenticates is closed.
func TestRace(t *testing.T) {
	ida, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	idb, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	allow := func(crypto.DeviceID) error { return nil }
	ta, err := transport.New(transport.Config{Identity: ida, ListenAddr: "127.0.0.1:0", Authorize: allow})
	require.NoError(t, err)
	defer ta.Close()
	tb, err := transport.New(transport.Config{Identity: idb, ListenAddr: "127.0.0.1:0", Authorize: allow})
	require.NoError(t, err)
	defer tb.Close()
	go func() { // b accepts whatever comes
		for {
			c, err := tb.Accept(context.Background())
			if err != nil {
				return
			}
			go func() { <-c.Done() }()
		}
	}()
	addr := tb.LocalAddr().String()
	refused := dialAttempt{name: "refused", dial: func(ctx context.Context) (*transport.Conn, error) {
		return nil, errors.New("connection refused")
	}}
	var mu gosync.Mutex
	var conns []*transport.Conn
	// good dials b; stubborn ones finish their handshake even when the race
	// is decided (as a handshake already on the wire would).
	good := func(name string, viaTCP, stubborn bool) dialAttempt {
		return dialAttempt{name: name, dial: func(ctx context.Context) (*transport.Conn, error) {
			if stubborn {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
			}
			var c *transport.Conn
			var err error
			if viaTCP {
				c, err = ta.DialTCP(ctx, addr, idb.DeviceID())
			} else {
				c, err = ta.Dial(ctx, addr, idb.DeviceID())
			}
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
			return c, err
		}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg gosync.WaitGroup // race's goroutines
	defer wg.Wait()

	// A refusal starts the next attempt at once, whatever the head start.
	var reported []string
	c, err := race(ctx, &wg, []dialAttempt{refused, good("quic", false, false)}, time.Hour, func(a dialAttempt, err error) {
		reported = append(reported, a.name)
	})
	require.NoError(t, err)
	assert.Equal(t, idb.DeviceID(), c.Peer())
	assert.Equal(t, []string{"refused", "quic"}, reported)
	_ = c.Close()

	// Every failure is in the error.
	bad := dialAttempt{name: "quic 127.0.0.1:9", dial: func(ctx context.Context) (*transport.Conn, error) {
		return ta.Dial(ctx, (&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}).String(), idb.DeviceID())
	}}
	_, err = race(ctx, &wg, []dialAttempt{refused, bad}, 10*time.Millisecond, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused: connection refused")
	assert.Contains(t, err.Error(), "quic 127.0.0.1:9")

	// Both authenticate: one wins, the other is closed.
	mu.Lock()
	conns = nil
	mu.Unlock()
	c, err = race(ctx, &wg, []dialAttempt{good("tcp", true, true), good("quic", false, true)}, 0, nil)
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(conns) != 2 {
			return false
		}
		for _, o := range conns {
			if o == c {
				continue
			}
			select {
			case <-o.Done():
				return true
			default:
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the latecomer is closed")
	select {
	case <-c.Done():
		t.Fatal("the winner was closed")
	default:
	}
}

// TestNetworkChangeReconnects: when this machine's addresses change (a
// laptop joins another network), every connection is dropped and redialed
// at once instead of waiting for the old path to time out.
func TestNetworkChangeReconnects(t *testing.T) {
	var addrs atomic.Value
	addrs.Store("192.0.2.10/24")
	a := newNode(t, "a")
	b := newNodeCfg(t, "b", func(c *Config) { c.test = &testHooks{netState: func() string { return addrs.Load().(string) }} })
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
	eventually(t, "connected", func() bool { return b.e.Status().Peers[0].Connected })
	drain(b.e.Events())

	addrs.Store("198.51.100.20/24") // moved to another network
	var dropped, back bool
	deadline := time.After(20 * time.Second)
	for !(dropped && back) {
		select {
		case ev := <-b.e.Events():
			switch ev.Kind {
			case EventPeerDisconnected:
				dropped = true
			case EventPeerConnected:
				back = dropped
			}
		case <-deadline:
			t.Fatalf("dropped=%v back=%v", dropped, back)
		}
	}
	write(t, a.dir, "after-move.txt", "still in step")
	eventually(t, "syncing again", fileIs(b.dir, "after-move.txt", "still in step"))
}

// assertNoConnectionChange fails if ch holds a peer-connected or
// peer-disconnected event (it empties ch without blocking).
func assertNoConnectionChange(t *testing.T, ch <-chan Event) {
	t.Helper()
	for {
		select {
		case ev := <-ch:
			if ev.Kind == EventPeerConnected || ev.Kind == EventPeerDisconnected {
				t.Errorf("a connection changed after it settled: %s %s", ev.Kind, ev.Path)
			}
		default:
			return
		}
	}
}

// drain empties an events channel without blocking.
func drain(ch <-chan Event) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestUpgradeToTCP: a connection that ended up on QUIC (its handshake
// overtook TCP's over a long round trip, say) is moved to TCP as soon as
// TCP authenticates, and syncing carries on over it.
func TestUpgradeToTCP(t *testing.T) {
	a := newNode(t, "a")
	b := newNodeCfg(t, "b", func(c *Config) { c.test = &testHooks{quicWinsRace: true} })
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
	var paths []string
	deadline := time.After(20 * time.Second)
	for len(paths) < 2 {
		select {
		case ev := <-b.e.Events():
			if ev.Kind == EventPeerConnected {
				paths = append(paths, ev.Path)
			}
		case <-deadline:
			t.Fatalf("connections: %v", paths)
		}
	}
	assert.Equal(t, []string{"lan quic", "lan tcp"}, paths, "QUIC first, then moved to TCP")
	eventually(t, "both sides on TCP", func() bool {
		sa, sb := a.e.Status(), b.e.Status()
		return sa.Peers[0].Connected && sb.Peers[0].Connected && sa.Peers[0].Path == "lan tcp" && sb.Peers[0].Path == "lan tcp"
	})
	write(t, a.dir, "x.txt", "over the upgraded connection")
	eventually(t, "syncing", fileIs(b.dir, "x.txt", "over the upgraded connection"))
	// And it stays there: one more exchange back over it, with no
	// connection made or lost meanwhile.
	drain(b.e.Events())
	write(t, b.dir, "y.txt", "and back")
	eventually(t, "syncing back", fileIs(a.dir, "y.txt", "and back"))
	assert.Equal(t, "lan tcp", b.e.Status().Peers[0].Path, "and it stays there")
	assertNoConnectionChange(t, b.e.Events())
}
