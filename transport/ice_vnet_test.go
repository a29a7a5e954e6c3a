package transport

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/vnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
)

// natWorld is a pion vnet: a "WAN" router with a STUN server at 1.2.3.4:3478
// and two home routers doing NAT, each with one host behind it.
type natWorld struct {
	wan        *vnet.Router
	hostA      *vnet.Net // 192.168.0.2 behind 27.1.1.1
	hostB      *vnet.Net // 10.0.0.2 behind 28.1.1.1
	stunServer string
}

func newNATWorld(t *testing.T, nat *vnet.NATType) *natWorld {
	t.Helper()
	quiet := pionLogs{slog.New(slog.DiscardHandler)}
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "0.0.0.0/0", LoggerFactory: quiet})
	require.NoError(t, err)
	server, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"1.2.3.4"}})
	require.NoError(t, err)
	require.NoError(t, wan.AddNet(server))

	home := func(public, cidr, host string) *vnet.Net {
		r, err := vnet.NewRouter(&vnet.RouterConfig{StaticIPs: []string{public}, CIDR: cidr, NATType: nat, LoggerFactory: quiet})
		require.NoError(t, err)
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{host}})
		require.NoError(t, err)
		require.NoError(t, r.AddNet(n))
		require.NoError(t, wan.AddRouter(r))
		return n
	}
	w := &natWorld{
		wan:        wan,
		hostA:      home("27.1.1.1", "192.168.0.0/24", "192.168.0.2"),
		hostB:      home("28.1.1.1", "10.0.0.0/24", "10.0.0.2"),
		stunServer: "1.2.3.4:3478",
	}
	require.NoError(t, wan.Start())
	t.Cleanup(func() { wan.Stop() })

	pc, err := server.ListenPacket("udp4", w.stunServer)
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go serveSTUN(pc)
	return w
}

// serveSTUN answers STUN binding requests with the source address seen.
func serveSTUN(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if m.Decode() != nil || m.Type != stun.BindingRequest {
			continue
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: ua.IP, Port: ua.Port}, stun.Fingerprint)
		if err == nil {
			pc.WriteTo(resp.Raw, addr) //nolint:errcheck // UDP
		}
	}
}

// vnetTransport makes a Transport on host's virtual socket.
func vnetTransport(t *testing.T, host *vnet.Net, id, peer *crypto.Identity) *Transport {
	t.Helper()
	pc, err := host.ListenPacket("udp4", ":44996")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	tr, err := New(Config{Identity: id, PacketConn: pc, Authorize: allow(peer), HandshakeTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestICEThroughNAT(t *testing.T) {
	// A virtual socket has no kernel buffers to size; don't say so on stderr.
	t.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	ctx := testContext(t)
	// Port-restricted cone NATs: one mapping per inside address, and only
	// packets from where the inside host has sent are let in (as home
	// routers do). Host candidates can't reach each other (two private
	// networks); the server-reflexive pair must win.
	// Mappings expire after 3 s without outgoing traffic, far less than
	// QUIC's keepalive period (IdleTimeout/3 = 10 s).
	w := newNATWorld(t, &vnet.NATType{
		MappingBehavior:   vnet.EndpointIndependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
		MappingLifeTime:   3 * time.Second,
	})
	aID, bID := newIdentity(t), newIdentity(t)
	a := vnetTransport(t, w.hostA, aID, bID)
	b := vnetTransport(t, w.hostB, bID, aID)

	sig := newMemSignal(aID, bID)
	cfgA := ICEConfig{STUNServers: []string{w.stunServer}, Net: w.hostA}
	cfgB := ICEConfig{STUNServers: []string{w.stunServer}, Net: w.hostB}
	start := time.Now()
	accepted := answerOne(ctx, b, sig.endpoint(bID, bID), cfgB)
	out, err := a.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), cfgA)
	require.NoError(t, err)
	r := <-accepted
	require.NoError(t, r.err)
	in := r.c
	t.Logf("connected through two NATs in %v: %s -> %s", time.Since(start), out.LocalAddr(), out.RemoteAddr())

	assert.Equal(t, PathICESrflx, out.Path())
	assert.Equal(t, PathICESrflx, in.Path())
	assert.Equal(t, "28.1.1.1", out.RemoteAddr().(*net.UDPAddr).IP.String(), "QUIC goes to B's public address")
	assert.Equal(t, "27.1.1.1", in.RemoteAddr().(*net.UDPAddr).IP.String(), "and comes from A's")

	s, err := out.OpenStream(ctx)
	require.NoError(t, err)
	payload := make([]byte, 256<<10)
	go func() {
		s.Write(payload) //nolint:errcheck // checked by the reader
		s.Close()
	}()
	rs, err := in.AcceptStream(ctx)
	require.NoError(t, err)
	n, err := io.Copy(io.Discard, rs)
	require.NoError(t, err)
	assert.EqualValues(t, len(payload), n)

	if !testing.Short() {
		// Idle for twice the NAT's mapping lifetime: ICE consent checks
		// (every 2 s, on the same socket and so the same mapping) keep the
		// hole open for QUIC.
		stayOpen(t, 6*time.Second, out, in)
		s, err := in.OpenStream(ctx)
		require.NoError(t, err)
		require.NoError(t, WriteFrame(s, []byte("still open")))
		rs, err := out.AcceptStream(ctx)
		require.NoError(t, err)
		require.NoError(t, rs.SetReadDeadline(time.Now().Add(2*time.Second)))
		msg, err := ReadFrame(rs, 0)
		require.NoError(t, err, "the NAT mapping expired under QUIC")
		assert.Equal(t, "still open", string(msg))
	}

	require.NoError(t, out.Close())
	<-in.Done()
}

func TestICESymmetricNATFailsCleanly(t *testing.T) {
	// Two symmetric NATs (a new mapping per destination): without a relay
	// no pair works. Both calls must end with the caller's deadline, with
	// nothing left running.
	t.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	w := newNATWorld(t, &vnet.NATType{
		MappingBehavior:   vnet.EndpointAddrPortDependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	})
	aID, bID := newIdentity(t), newIdentity(t)
	a := vnetTransport(t, w.hostA, aID, bID)
	b := vnetTransport(t, w.hostB, bID, aID)

	ctx, cancel := context.WithTimeout(testContext(t), 3*time.Second)
	defer cancel()
	sig := newMemSignal(aID, bID)
	accepted := answerOne(ctx, b, sig.endpoint(bID, bID), ICEConfig{STUNServers: []string{w.stunServer}, Net: w.hostB})
	_, err := a.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), ICEConfig{STUNServers: []string{w.stunServer}, Net: w.hostA})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	t.Logf("dialer: %v", err)
	r := <-accepted
	assert.ErrorIs(t, r.err, context.DeadlineExceeded)
}
