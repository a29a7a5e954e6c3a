package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
)

func newIdentity(t testing.TB) *crypto.Identity {
	t.Helper()
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	return id
}

// allow returns an Authorize function accepting exactly ids.
func allow(ids ...*crypto.Identity) func(crypto.DeviceID) error {
	ok := make(map[crypto.DeviceID]bool)
	for _, id := range ids {
		ok[id.DeviceID()] = true
	}
	return func(d crypto.DeviceID) error {
		if !ok[d] {
			return fmt.Errorf("%w: %s", crypto.ErrUnknownPeer, d.Short())
		}
		return nil
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTransport(t *testing.T, id *crypto.Identity, authorize func(crypto.DeviceID) error, log io.Writer) *Transport {
	t.Helper()
	cfg := Config{
		Identity:         id,
		ListenAddr:       "127.0.0.1:0",
		Authorize:        authorize,
		HandshakeTimeout: 3 * time.Second,
	}
	if log != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tr, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return tr
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stayOpen waits d, the time a test is about (an idle timeout, a NAT
// mapping's lifetime), and fails at once if one of conns ends meanwhile.
func stayOpen(t *testing.T, d time.Duration, conns ...*Conn) {
	t.Helper()
	ended := make(chan *Conn, len(conns))
	stop := make(chan struct{})
	defer close(stop)
	for _, c := range conns {
		go func() {
			select {
			case <-c.Done():
				ended <- c
			case <-stop:
			}
		}()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case c := <-ended:
		t.Fatalf("connection (%s, outgoing %v) ended within %v: %v", c.Path(), c.Outgoing(), d, c.Err())
	}
}

// connect dials b from a and returns both ends.
func connect(t *testing.T, ctx context.Context, a, b *Transport, bID *crypto.Identity) (out, in *Conn) {
	t.Helper()
	type result struct {
		c   *Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := b.Accept(ctx)
		accepted <- result{c, err}
	}()
	out, err := a.Dial(ctx, b.LocalAddr().String(), bID.DeviceID())
	require.NoError(t, err)
	r := <-accepted
	require.NoError(t, r.err)
	return out, r.c
}

func TestRefusedDialer(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	var log syncBuffer
	a := newTransport(t, aID, allow(), &log) // A knows nobody
	b := newTransport(t, bID, allow(aID), nil)

	_, err := b.Dial(ctx, a.LocalAddr().String(), aID.DeviceID())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrRefused)
	t.Logf("dial error: %v", err)

	// A raw QUIC client with B's identity that ignores the welcome and
	// writes as soon as its side of the handshake is done.
	cert, err := bID.TLSCertificate()
	require.NoError(t, err)
	qc, err := quic.DialAddr(ctx, a.LocalAddr().String(), &tls.Config{
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true,
		NextProtos:         []string{ALPN},
	}, nil)
	if err == nil {
		s, err := qc.OpenStream()
		if err == nil {
			s.Write([]byte("secret data")) //nolint:errcheck // may fail, that's fine
			s.Close()
		}
		select {
		case <-qc.Context().Done():
		case <-ctx.Done():
			t.Fatal("listener did not close the refused connection")
		}
		var te *quic.TransportError
		if assert.ErrorAs(t, context.Cause(qc.Context()), &te) {
			assert.True(t, te.Remote)
			assert.True(t, te.ErrorCode.IsCryptoError(), "refused with a TLS alert, got %v", te)
		}
	}

	assertRefusedLogged(t, ctx, a, &log, bID)
}

func TestDialWrongPeer(t *testing.T) {
	for _, kind := range dialKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := testContext(t)
			aID, bID, xID := newIdentity(t), newIdentity(t), newIdentity(t)
			a := newTransport(t, aID, allow(bID), nil)
			b := newTransport(t, bID, allow(aID, xID), nil)

			// B expects X at A's address.
			_, err := kind.dial(ctx, b, a, xID.DeviceID())
			require.Error(t, err)
			assert.ErrorIs(t, err, crypto.ErrUnknownPeer)
			var pe *crypto.PeerError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, aID.DeviceID(), pe.Device)
			assert.Contains(t, err.Error(), xID.DeviceID().String())
			assert.Contains(t, err.Error(), aID.DeviceID().String())

			// A device that no longer trusts A.
			c := newTransport(t, newIdentity(t), allow(), nil)
			_, err = kind.dial(ctx, c, a, aID.DeviceID())
			assert.ErrorIs(t, err, crypto.ErrUnknownPeer)

			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			_, err = a.Accept(short)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
	}
}

// dialKinds are the two ways to dial a Transport's listening address, for
// tests that hold for both.
var dialKinds = []struct {
	name string
	dial func(ctx context.Context, from, to *Transport, peer crypto.DeviceID) (*Conn, error)
}{
	{"quic", func(ctx context.Context, from, to *Transport, peer crypto.DeviceID) (*Conn, error) {
		return from.Dial(ctx, to.LocalAddr().String(), peer)
	}},
	{"tcp", func(ctx context.Context, from, to *Transport, peer crypto.DeviceID) (*Conn, error) {
		return from.DialTCP(ctx, to.TCPAddr().String(), peer)
	}},
}

func TestDialRefusedByOwnAuthorize(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(), nil) // B no longer trusts A

	_, err := b.Dial(ctx, a.LocalAddr().String(), aID.DeviceID())
	assert.ErrorIs(t, err, crypto.ErrUnknownPeer)
}

func TestDialCancelled(t *testing.T) {
	aID := newIdentity(t)
	a := newTransport(t, aID, allow(), nil)
	// Nothing listens there: the dial waits until ctx ends.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = a.Dial(ctx, pc.LocalAddr().String(), aID.DeviceID())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestClose(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)

	// B runs on a socket it owns: Close must leave it open.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	b, err := New(Config{Identity: bID, PacketConn: pc, Authorize: allow(aID)})
	require.NoError(t, err)
	assert.Equal(t, pc.LocalAddr(), b.LocalAddr())

	out, in := connect(t, ctx, a, b, bID)
	// A second, unaccepted connection sits in B's queue at Close.
	_, err = a.Dial(ctx, b.LocalAddr().String(), bID.DeviceID())
	require.NoError(t, err)

	require.NoError(t, b.Close())
	select {
	case <-out.Done():
	case <-ctx.Done():
		t.Fatal("Done did not fire when the remote transport closed")
	}
	var ae *CloseError
	require.ErrorAs(t, out.Err(), &ae)
	assert.True(t, ae.Remote)
	<-in.Done()

	assert.ErrorIs(t, b.Close(), ErrClosed)
	_, err = b.Accept(ctx)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = b.Dial(ctx, a.LocalAddr().String(), aID.DeviceID())
	assert.ErrorIs(t, err, ErrClosed)

	// The caller's socket still works.
	_, err = pc.WriteTo([]byte("still open"), a.LocalAddr())
	assert.NoError(t, err)

	require.NoError(t, a.Close())
	assert.ErrorIs(t, a.Close(), ErrClosed)
}

// TestAcceptWaitsThenClose: an accept loop gets a connection, then waits
// for the next one until Close ends it with ErrClosed.
func TestAcceptWaitsThenClose(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)
	accepted := make(chan *Conn, 1)
	errc := make(chan error, 1)
	go func() {
		for {
			c, err := a.Accept(context.Background())
			if err != nil {
				errc <- err
				return
			}
			accepted <- c
		}
	}()
	out, err := b.Dial(ctx, a.LocalAddr().String(), aID.DeviceID())
	require.NoError(t, err)
	defer out.Close()
	in := <-accepted // the loop runs, and is back in Accept or on its way
	assert.Equal(t, bID.DeviceID(), in.Peer())
	require.NoError(t, a.Close())
	assert.ErrorIs(t, <-errc, ErrClosed)
}

func TestNewValidates(t *testing.T) {
	id := newIdentity(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	ok := allow()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no identity", Config{Authorize: ok, ListenAddr: "127.0.0.1:0"}, "Identity"},
		{"no authorize", Config{Identity: id, ListenAddr: "127.0.0.1:0"}, "Authorize"},
		{"addr and conn", Config{Identity: id, Authorize: ok, ListenAddr: "127.0.0.1:0", PacketConn: pc}, "both"},
		{"negative timeout", Config{Identity: id, Authorize: ok, ListenAddr: "127.0.0.1:0", IdleTimeout: -1}, "negative"},
		{"bad address", Config{Identity: id, Authorize: ok, ListenAddr: "no-port"}, "no-port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	t.Run("does not mutate", func(t *testing.T) {
		cfg := Config{Identity: id, Authorize: ok, ListenAddr: "127.0.0.1:0"}
		tr, err := New(cfg)
		require.NoError(t, err)
		defer tr.Close()
		assert.Zero(t, cfg.HandshakeTimeout)
		assert.Zero(t, cfg.IdleTimeout)
		assert.Nil(t, cfg.Logger)
		assert.True(t, strings.HasPrefix(tr.LocalAddr().String(), "127.0.0.1:"))
	})
}

func TestIdleTimeout(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b, err := New(Config{Identity: bID, ListenAddr: "127.0.0.1:0", Authorize: allow(aID), IdleTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	defer b.Close()

	out, in := connect(t, ctx, a, b, bID)
	// Keepalives hold the idle connection open well past the idle timeout.
	stayOpen(t, 600*time.Millisecond, out, in)
	require.NoError(t, in.Close())
	<-out.Done()
}

// checkBulkBothWays sends size random bytes from in to out on a stream the
// acceptor opens, then back on the same stream, and checks both copies.
func checkBulkBothWays(t *testing.T, ctx context.Context, out, in *Conn, size int) {
	t.Helper()
	payload := make([]byte, size)
	_, err := rand.Read(payload)
	require.NoError(t, err)
	want := sha256.Sum256(payload)

	// The acceptor opens this stream: streams work in both directions.
	s, err := in.OpenStream(ctx)
	require.NoError(t, err)
	writeErr := make(chan error, 1)
	go func() {
		_, err := s.Write(payload)
		if err == nil {
			err = s.Close()
		}
		writeErr <- err
	}()
	rs, err := out.AcceptStream(ctx)
	require.NoError(t, err)
	h := sha256.New()
	n, err := io.Copy(h, rs)
	require.NoError(t, err)
	require.NoError(t, <-writeErr)
	assert.EqualValues(t, size, n)
	assert.Equal(t, want[:], h.Sum(nil))

	// And back on the same stream.
	go func() {
		_, err := rs.Write(payload)
		if err == nil {
			err = rs.Close()
		}
		writeErr <- err
	}()
	h.Reset()
	n, err = io.Copy(h, s)
	require.NoError(t, err)
	require.NoError(t, <-writeErr)
	assert.EqualValues(t, size, n)
	assert.Equal(t, want[:], h.Sum(nil))
}

// assertRefusedLogged checks that a refused device never came out of a's
// Accept and that a logged the refusal, naming it.
func assertRefusedLogged(t *testing.T, ctx context.Context, a *Transport, log fmt.Stringer, refused *crypto.Identity) {
	t.Helper()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	c, err := a.Accept(short)
	assert.Nil(t, c, "refused device returned by Accept")
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	logs := log.String()
	assert.Contains(t, logs, "level=INFO msg=\"refused incoming connection\"")
	assert.Contains(t, logs, "device="+refused.DeviceID().Short())
}
