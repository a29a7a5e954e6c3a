package transport

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	piontransport "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/turn/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
)

const (
	testTURNUser = "peer"
	testTURNPass = "s3cret"
)

// startTURNServer serves STUN and TURN on pc with pion/turn, as
// examples/server does (stunturn.go): long-term credentials
// testTURNUser/testTURNPass in realm "peersync", relays opened through
// relayNet on relayIP. t.Cleanup stops it.
func startTURNServer(t testing.TB, pc net.PacketConn, relayIP net.IP, relayNet piontransport.Net) {
	t.Helper()
	const realm = "peersync"
	key := turn.GenerateAuthKey(testTURNUser, realm, testTURNPass)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         realm,
		LoggerFactory: pionLogs{slog.New(slog.DiscardHandler)},
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username == testTURNUser && ra.Realm == realm {
				return testTURNUser, key, true
			}
			return "", nil, false
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: relayIP,
				Address:      relayIP.String(),
				Net:          relayNet,
			},
		}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
}

// relayWorld is natWorld (ice_vnet_test.go) with a STUN/TURN server
// (pion/turn) at 1.2.3.4:3478 instead of the bare STUN one.
type relayWorld struct {
	hostA, hostB *vnet.Net
	server       string
}

func newRelayWorld(t *testing.T, nat *vnet.NATType) *relayWorld {
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
	w := &relayWorld{
		hostA:  home("27.1.1.1", "192.168.0.0/24", "192.168.0.2"),
		hostB:  home("28.1.1.1", "10.0.0.0/24", "10.0.0.2"),
		server: "1.2.3.4:3478",
	}
	require.NoError(t, wan.Start())
	t.Cleanup(func() { wan.Stop() })
	pc, err := server.ListenPacket("udp4", w.server)
	require.NoError(t, err)
	startTURNServer(t, pc, net.ParseIP("1.2.3.4"), server)
	return w
}

func (w *relayWorld) iceConfig(host *vnet.Net, turnPass string) ICEConfig {
	cfg := ICEConfig{STUNServers: []string{w.server}, Net: host}
	if turnPass != "" {
		cfg.TURNServers = []TURNServer{{Addr: w.server, User: testTURNUser, Pass: turnPass}}
	}
	return cfg
}

var symmetricNAT = &vnet.NATType{
	MappingBehavior:   vnet.EndpointAddrPortDependent,
	FilteringBehavior: vnet.EndpointAddrPortDependent,
}

// exchange sends size random bytes from a to b and a reply back, and
// checks both.
func exchange(t *testing.T, ctx context.Context, a, b *Conn, size int) {
	t.Helper()
	payload := make([]byte, size)
	_, err := rand.Read(payload)
	require.NoError(t, err)
	s, err := a.OpenStream(ctx)
	require.NoError(t, err)
	go func() {
		s.Write(payload) //nolint:errcheck // checked by the reader
		s.Close()
	}()
	rs, err := b.AcceptStream(ctx)
	require.NoError(t, err)
	h := sha256.New()
	n, err := io.Copy(h, rs)
	require.NoError(t, err)
	assert.EqualValues(t, size, n)
	want := sha256.Sum256(payload)
	assert.Equal(t, want[:], h.Sum(nil))
	require.NoError(t, WriteFrame(rs, []byte("ack")))
	reply, err := ReadFrame(s, 0)
	require.NoError(t, err)
	assert.Equal(t, "ack", string(reply))
}

func TestICERelay(t *testing.T) {
	// Two symmetric NATs: no direct pair works, QUIC must go through TURN.
	// Which side has a TURN server decides who runs QUIC over its relayed
	// address (turn.go): both, the dialer only, the acceptor only.
	for _, tc := range []struct {
		name         string
		turnA, turnB bool
	}{
		{"both relayed", true, true},
		{"dialer relayed", true, false},
		{"acceptor relayed", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
			ctx := testContext(t)
			w := newRelayWorld(t, symmetricNAT)
			aID, bID := newIdentity(t), newIdentity(t)
			a := vnetTransport(t, w.hostA, aID, bID)
			b := vnetTransport(t, w.hostB, bID, aID)
			pass := func(on bool) string {
				if on {
					return testTURNPass
				}
				return ""
			}
			sig := newMemSignal(aID, bID)
			start := time.Now()
			accepted := answerOne(ctx, b, sig.endpoint(bID, bID), w.iceConfig(w.hostB, pass(tc.turnB)))
			out, err := a.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), w.iceConfig(w.hostA, pass(tc.turnA)))
			require.NoError(t, err)
			r := <-accepted
			require.NoError(t, r.err)
			in := r.c
			t.Logf("connected through TURN in %v: %s -> %s", time.Since(start), out.LocalAddr(), out.RemoteAddr())
			assert.Equal(t, PathICERelay, out.Path())
			assert.Equal(t, PathICERelay, in.Path())
			assert.Equal(t, bID.DeviceID(), out.Peer())
			assert.Equal(t, aID.DeviceID(), in.Peer())

			exchange(t, ctx, out, in, 256<<10)
			exchange(t, ctx, in, out, 64<<10)

			require.NoError(t, out.Close())
			select {
			case <-in.Done():
			case <-ctx.Done():
				t.Fatal("the acceptor's connection outlived the dialer's")
			}
			assert.Eventually(t, func() bool { return agentClosed(out) && agentClosed(in) }, 3*time.Second, 10*time.Millisecond)
		})
	}
}

func TestICEConeNATIgnoresRelay(t *testing.T) {
	// With a TURN server configured but a direct pair possible, ICE prefers
	// the direct one.
	t.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	ctx := testContext(t)
	w := newRelayWorld(t, &vnet.NATType{
		MappingBehavior:   vnet.EndpointIndependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	})
	aID, bID := newIdentity(t), newIdentity(t)
	a := vnetTransport(t, w.hostA, aID, bID)
	b := vnetTransport(t, w.hostB, bID, aID)
	sig := newMemSignal(aID, bID)
	accepted := answerOne(ctx, b, sig.endpoint(bID, bID), w.iceConfig(w.hostB, testTURNPass))
	out, err := a.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), w.iceConfig(w.hostA, testTURNPass))
	require.NoError(t, err)
	r := <-accepted
	require.NoError(t, r.err)
	assert.Equal(t, PathICESrflx, out.Path())
	assert.Equal(t, PathICESrflx, r.c.Path())
	exchange(t, ctx, out, r.c, 64<<10)
	require.NoError(t, out.Close())
	<-r.c.Done()
}

func TestTURNRefusals(t *testing.T) {
	t.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	w := newRelayWorld(t, symmetricNAT)
	aID, bID := newIdentity(t), newIdentity(t)
	a := vnetTransport(t, w.hostA, aID, bID)

	t.Run("wrong credentials", func(t *testing.T) {
		ctx := testContext(t)
		sig := newMemSignal(aID, bID) // nobody answers: the error must come first
		start := time.Now()
		_, err := a.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), w.iceConfig(w.hostA, "not-the-pass"))
		require.Error(t, err)
		t.Logf("after %v: %v", time.Since(start), err)
		assert.ErrorIs(t, err, ErrTURN)
		assert.Contains(t, err.Error(), "wrong TURN user or password")
		assert.Contains(t, err.Error(), "1.2.3.4:3478")
		assert.NotContains(t, err.Error(), "not-the-pass", "no password in errors")
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Empty(t, sig.inboxes[bID.DeviceID()], "no offer sent")
	})

	t.Run("acceptor with wrong credentials", func(t *testing.T) {
		ctx := testContext(t)
		b := vnetTransport(t, w.hostB, bID, aID)
		sig := newMemSignal(aID, bID)
		short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		accepted := answerOne(short, b, sig.endpoint(bID, bID), w.iceConfig(w.hostB, "not-the-pass"))
		_, err := a.DialICE(short, bID.DeviceID(), sig.endpoint(aID, aID), w.iceConfig(w.hostA, ""))
		assert.ErrorIs(t, err, context.DeadlineExceeded, "no answer comes")
		r := <-accepted
		assert.ErrorIs(t, r.err, ErrTURN)
	})

	t.Run("no answer", func(t *testing.T) {
		ctx := testContext(t)
		sig := newMemSignal(aID, bID)
		cfg := w.iceConfig(w.hostA, testTURNPass)
		cfg.TURNServers[0].Addr = "1.2.3.5:3478" // nobody there
		cfg.STUNTimeout = 500 * time.Millisecond
		start := time.Now()
		_, err := a.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), cfg)
		t.Logf("after %v: %v", time.Since(start), err)
		assert.ErrorIs(t, err, ErrTURN)
		assert.Less(t, time.Since(start), 2*time.Second)
	})

	t.Run("bad config", func(t *testing.T) {
		ctx := testContext(t)
		sig := newMemSignal(aID, bID)
		cfg := w.iceConfig(w.hostA, testTURNPass)
		cfg.TURNServers[0].User = ""
		_, err := a.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), cfg)
		assert.ErrorContains(t, err, "User and Pass are required")
	})
}

func TestParseTURNServer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want TURNServer
		err  string
	}{
		{in: "turn://alice:pw@turn.example.net:3478", want: TURNServer{Addr: "turn.example.net:3478", User: "alice", Pass: "pw"}},
		{in: "turn://alice:pw@203.0.113.7", want: TURNServer{Addr: "203.0.113.7:3478", User: "alice", Pass: "pw"}},
		{in: "turn://a%40b:p%3Aw@[2001:db8::1]:5349", want: TURNServer{Addr: "[2001:db8::1]:5349", User: "a@b", Pass: "p:w"}},
		{in: "stun://alice:pw@host:3478", err: "scheme"},
		{in: "turn://alice@host:3478", want: TURNServer{Addr: "host:3478", User: "alice"}}, // password set later
		{in: "turn://host:3478", err: "USER@"},
		{in: "turn://alice:@host:3478", err: "empty password"},
		{in: "turn://alice:pw@host:99999", err: "bad port"},
		{in: "turn://alice:pw@host:3478/x", err: "unexpected path"},
		{in: "turn://alice:pw@:3478", err: "no host"},
		{in: "turn://alice:secretpw@host:x", err: ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTURNServer(tc.in)
			if tc.want == (TURNServer{}) {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.NotContains(t, err.Error(), "pw", "no password in errors")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			if tc.want.Pass != "" {
				assert.NotContains(t, got.String(), tc.want.Pass)
			}
		})
	}
}

func TestICERelayForgedOffer(t *testing.T) {
	// The rendezvous claims C's offer comes from B. ICE connects through
	// A's relay (A is the acceptor, relayed: its QUIC listens on the relay
	// path), and the TLS step shows the dialer is C.
	for _, tc := range []struct {
		name    string
		allowsC bool // A knows C too: Authorize accepts it, but it is not the device the offer named
	}{
		{"unknown device", false},
		{"known device, wrong name", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
			ctx := testContext(t)
			w := newRelayWorld(t, symmetricNAT)
			aID, bID, cID := newIdentity(t), newIdentity(t), newIdentity(t)
			authA := allow(bID)
			if tc.allowsC {
				authA = allow(bID, cID)
			}
			pcA, err := w.hostA.ListenPacket("udp4", ":44996")
			require.NoError(t, err)
			t.Cleanup(func() { pcA.Close() })
			a, err := New(Config{Identity: aID, PacketConn: pcA, Authorize: authA, HandshakeTimeout: 3 * time.Second})
			require.NoError(t, err)
			t.Cleanup(func() { a.Close() })
			c := vnetTransport(t, w.hostB, cID, aID)

			sig := newMemSignal(aID, bID, cID)
			go func() { // A's answer, sent to B, reaches C
				select {
				case m := <-sig.inboxes[bID.DeviceID()]:
					sig.inboxes[cID.DeviceID()] <- m
				case <-ctx.Done():
				}
			}()
			accepted := answerOne(ctx, a, sig.endpoint(aID, aID), w.iceConfig(w.hostA, testTURNPass))
			_, err = c.DialICE(ctx, aID.DeviceID(), sig.endpoint(cID, bID), w.iceConfig(w.hostB, ""))
			t.Logf("dialer: %v", err)
			r := <-accepted
			t.Logf("acceptor: %v", r.err)
			require.Error(t, r.err)
			assert.ErrorIs(t, r.err, crypto.ErrUnknownPeer)
			var pe *crypto.PeerError
			require.ErrorAs(t, r.err, &pe)
			assert.Equal(t, cID.DeviceID(), pe.Device, "the error names the device that really came")
			if tc.allowsC {
				assert.Error(t, err) // closed by A after the handshake
			} else {
				// Refused: by A's TLS alert, or, when the dialer's handshake
				// retransmission reaches A after its one-shot relay listener
				// closed (timing under load), by QUIC's CONNECTION_REFUSED.
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrRefused) || strings.Contains(err.Error(), "CONNECTION_REFUSED"),
					"dialer error: %v", err)
			}
		})
	}
}

func ExampleParseTURNServer() {
	s, err := ParseTURNServer("turn://alice:s3cret@turn.example.net")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Addr, s.User)
	fmt.Println(s) // no password
	// Output:
	// turn.example.net:3478 alice
	// turn://alice@turn.example.net:3478
}
