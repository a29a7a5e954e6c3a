package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
)

// connectTCP dials b's TCP listener from a and returns both ends.
func connectTCP(t *testing.T, ctx context.Context, a, b *Transport, bID *crypto.Identity) (out, in *Conn) {
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
	require.NotNil(t, b.TCPAddr())
	out, err := a.DialTCP(ctx, b.TCPAddr().String(), bID.DeviceID())
	require.NoError(t, err)
	r := <-accepted
	require.NoError(t, r.err)
	return out, r.c
}

// numStreams is how many streams yamux still holds for c.
func numStreams(c *Conn) int { return c.l.(*tcpLink).sess.NumStreams() - 1 } // less the control stream

func TestTCPRefusedDialer(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	var log syncBuffer
	a := newTransport(t, aID, allow(), &log) // A knows nobody
	b := newTransport(t, bID, allow(aID), nil)

	_, err := b.DialTCP(ctx, a.TCPAddr().String(), aID.DeviceID())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrRefused)
	t.Logf("dial error: %v", err)

	// A raw TLS client with B's identity that ignores the welcome and
	// writes a yamux stream's worth as soon as its side of the handshake is
	// done: nothing reaches A's Accept, and the client learns of the refusal.
	cert, err := bID.TLSCertificate()
	require.NoError(t, err)
	tc, err := tls.Dial("tcp", a.TCPAddr().String(), &tls.Config{
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true,
		NextProtos:         []string{ALPNTCP},
		MinVersion:         tls.VersionTLS13,
	})
	require.NoError(t, err, "TLS 1.3: the client's handshake ends before the server's check")
	// yamux header: version 0, window update, flag SYN, stream 1, length 0.
	syn := []byte{0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}
	tc.Write(append(syn, []byte("secret data")...)) //nolint:errcheck // may fail, that's fine
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = tc.Read(make([]byte, 1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad certificate")
	tc.Close()

	assertRefusedLogged(t, ctx, a, &log, bID)
}

func TestTCPDialFails(t *testing.T) {
	ctx := testContext(t)
	aID := newIdentity(t)
	a := newTransport(t, aID, allow(), nil)

	// Nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	_, err = a.DialTCP(ctx, addr, aID.DeviceID())
	assert.Error(t, err)

	// A listener that never answers: the dial waits until ctx ends.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = a.DialTCP(short, ln.Addr().String(), aID.DeviceID())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestTCPSharesPort(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)
	require.NotNil(t, a.TCPAddr())
	assert.Equal(t, a.LocalAddr().(*net.UDPAddr).Port, a.TCPAddr().(*net.TCPAddr).Port)
	assert.Equal(t, "127.0.0.1", a.TCPAddr().(*net.TCPAddr).IP.String())

	// Both kinds arrive through the one Accept.
	q, _ := connect(t, ctx, a, b, bID)
	tc, _ := connectTCP(t, ctx, a, b, bID)
	assert.Equal(t, PathDirect, q.Path())
	assert.Equal(t, PathTCP, tc.Path())

	t.Run("fixed port taken on TCP", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		_, err = New(Config{Identity: aID, Authorize: allow(), ListenAddr: "127.0.0.1:" + strconv.Itoa(port)})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "NoTCP")
		// With NoTCP the UDP port is enough.
		tr, err := New(Config{Identity: aID, Authorize: allow(), ListenAddr: "127.0.0.1:" + strconv.Itoa(port), NoTCP: true})
		require.NoError(t, err)
		assert.Nil(t, tr.TCPAddr())
		require.NoError(t, tr.Close())
	})
}

func TestTCPNoTCP(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a, err := New(Config{Identity: aID, ListenAddr: "127.0.0.1:0", Authorize: allow(bID), NoTCP: true})
	require.NoError(t, err)
	defer a.Close()
	b := newTransport(t, bID, allow(aID), nil)
	assert.Nil(t, a.TCPAddr())
	// Nothing listens on A's port number over TCP.
	_, err = b.DialTCP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(a.LocalAddr().(*net.UDPAddr).Port)), aID.DeviceID())
	assert.Error(t, err)
	// A can still dial out over TCP, and B accepts it.
	out, in := connectTCP(t, ctx, a, b, bID)
	assert.Equal(t, PathTCP, out.Path())
	assert.Equal(t, PathTCP, in.Path())

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	c, err := New(Config{Identity: aID, PacketConn: pc, Authorize: allow()})
	require.NoError(t, err)
	assert.Nil(t, c.TCPAddr(), "no TCP with a caller's PacketConn")
	require.NoError(t, c.Close())
}

func TestTCPClose(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b, err := New(Config{Identity: bID, ListenAddr: "127.0.0.1:0", Authorize: allow(aID)})
	require.NoError(t, err)

	out, in := connectTCP(t, ctx, a, b, bID)
	// A stream in use when the transport closes.
	s, err := out.OpenStream(ctx)
	require.NoError(t, err)
	_, err = s.Write([]byte("x"))
	require.NoError(t, err)
	// A second, unaccepted connection sits in B's queue at Close.
	_, err = a.DialTCP(ctx, b.TCPAddr().String(), bID.DeviceID())
	require.NoError(t, err)

	start := time.Now()
	require.NoError(t, b.Close())
	t.Logf("Close took %v (at most about closeLinger = %v if the peer does not answer)", time.Since(start), closeLinger)
	select {
	case <-out.Done():
	case <-ctx.Done():
		t.Fatal("Done did not fire when the remote transport closed")
	}
	var ae *CloseError
	require.ErrorAs(t, out.Err(), &ae)
	assert.True(t, ae.Remote)
	assert.Equal(t, "transport closed", ae.Message)
	<-in.Done()
	_, err = io.ReadAll(s)
	assert.ErrorIs(t, err, net.ErrClosed, "streams fail with the connection's error, not EOF")
	assert.ErrorAs(t, err, &ae)

	_, err = b.DialTCP(ctx, a.TCPAddr().String(), aID.DeviceID())
	assert.ErrorIs(t, err, ErrClosed)
	require.NoError(t, a.Close())
	assert.ErrorIs(t, a.Close(), ErrClosed)
}

func TestTCPBrokenConnection(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)
	out, in := connectTCP(t, ctx, a, b, bID)
	// The TCP connection breaks under B (no close message).
	in.l.(*tcpLink).mc.Conn.(*tls.Conn).NetConn().Close()
	select {
	case <-out.Done():
	case <-ctx.Done():
		t.Fatal("Done did not fire")
	}
	assert.ErrorIs(t, out.Err(), net.ErrClosed)
	var ae *CloseError
	assert.False(t, errors.As(out.Err(), &ae), "no application close: %v", out.Err())
	<-in.Done()
	t.Logf("dialer: %v; acceptor: %v", out.Err(), in.Err())
}

// stallProxy forwards one TCP connection to target until stall is
// called; then it forwards nothing more either way, holding both
// connections open, until the test ends.
type stallProxy struct {
	ln      net.Listener
	stalled chan struct{}
	once    sync.Once
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{ln: ln, stalled: make(chan struct{})}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			return
		}
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				select {
				case <-p.stalled:
					<-done
				default:
				}
				if n > 0 {
					if _, err := dst.Write(buf[:n]); err != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			in.Close()
			out.Close()
		}
		wg.Go(func() { pipe(out, in) })
		wg.Go(func() { pipe(in, out) })
		<-done
		in.Close()
		out.Close()
	})
	return p
}

func (p *stallProxy) stall() { p.once.Do(func() { close(p.stalled) }) }

func TestTCPIdleTimeout(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a, err := New(Config{Identity: aID, ListenAddr: "127.0.0.1:0", Authorize: allow(bID), IdleTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	defer a.Close()
	b, err := New(Config{Identity: bID, ListenAddr: "127.0.0.1:0", Authorize: allow(aID), IdleTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	defer b.Close()
	proxy := newStallProxy(t, b.TCPAddr().String())

	accepted := make(chan *Conn, 1)
	go func() {
		c, _ := b.Accept(ctx)
		accepted <- c
	}()
	out, err := a.DialTCP(ctx, proxy.ln.Addr().String(), bID.DeviceID())
	require.NoError(t, err)
	in := <-accepted
	require.NotNil(t, in)

	// Keepalives hold the idle connection open well past the idle timeout.
	stayOpen(t, time.Second, out, in)

	// The path goes silent, both sockets open: each side gives up (how
	// soon is not bounded here: a wall-clock bound fails under load; the
	// error says it was the idle timeout).
	proxy.stall()
	for _, c := range []*Conn{out, in} {
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("idle timeout did not fire")
		}
		assert.ErrorIs(t, c.Err(), ErrIdleTimeout)
		assert.ErrorIs(t, c.Err(), net.ErrClosed)
	}
}

func TestTCPOpenStreamCancelled(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)
	out, _ := connectTCP(t, ctx, a, b, bID)

	// The peer accepts nothing: after maxStreams streams, OpenStream waits.
	for range maxStreams {
		_, err := out.OpenStream(ctx)
		require.NoError(t, err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := out.OpenStream(short)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	cancelled, cancel2 := context.WithCancel(ctx)
	cancel2()
	_, err = out.OpenStream(cancelled)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestTCPCloseDuringHandshakes(t *testing.T) {
	ctx := testContext(t)
	aID := newIdentity(t)
	// Handshakes would time out only after an hour: Close ending within
	// the test's deadline shows it does not wait for them.
	a, err := New(Config{Identity: aID, ListenAddr: "127.0.0.1:0", Authorize: allow(), HandshakeTimeout: time.Hour})
	require.NoError(t, err)

	// Someone connects to A over TCP and never says anything.
	silent, err := net.Dial("tcp", a.TCPAddr().String())
	require.NoError(t, err)
	defer silent.Close()

	// A dials a listener that never answers the TLS handshake; the
	// listener's accept is the sign that the dial is in its handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	dialErr := make(chan error, 1)
	go func() {
		_, err := a.DialTCP(ctx, ln.Addr().String(), aID.DeviceID())
		dialErr <- err
	}()
	mute, err := ln.Accept()
	require.NoError(t, err)
	defer mute.Close()

	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("Close waits for handshakes to time out")
	}
	select {
	case err := <-dialErr:
		assert.ErrorIs(t, err, ErrClosed)
	case <-ctx.Done():
		t.Fatal("DialTCP did not end with Close")
	}
}

func TestTCPCloseUnresponsivePeer(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a, err := New(Config{Identity: aID, ListenAddr: "127.0.0.1:0", Authorize: allow(bID)})
	require.NoError(t, err)
	b := newTransport(t, bID, allow(aID), nil)
	proxy := newStallProxy(t, b.TCPAddr().String())
	go b.Accept(ctx) //nolint:errcheck // B's end is not used
	out, err := a.DialTCP(ctx, proxy.ln.Addr().String(), bID.DeviceID())
	require.NoError(t, err)

	// The peer takes nothing more: CloseWithError does not wait for it.
	proxy.stall()
	start := time.Now()
	require.NoError(t, out.CloseWithError(5, "gone"))
	assert.Less(t, time.Since(start), closeLinger/2)
	var ae *CloseError
	require.ErrorAs(t, out.Err(), &ae)
	assert.False(t, ae.Remote)
	assert.EqualValues(t, 5, ae.Code)
	_, err = out.OpenStream(ctx)
	assert.ErrorIs(t, err, net.ErrClosed)

	// Transport.Close waits for the socket's linger, which is bounded.
	start = time.Now()
	require.NoError(t, a.Close())
	assert.Less(t, time.Since(start), 2*closeLinger)
}

// TestDialAnyDevice: with AnyDevice as the peer, Dial and DialTCP take
// whichever device answers (without asking Authorize), and Conn.Peer says
// which; the answering side still decides whether to let us in.
func TestDialAnyDevice(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, func(crypto.DeviceID) error { return crypto.ErrUnknownPeer }, nil) // a trusts nobody by name
	b := newTransport(t, bID, allow(aID), nil)
	go func() {
		for {
			c, err := b.Accept(context.Background())
			if err != nil {
				return
			}
			go func() { <-c.Done() }()
		}
	}()
	for _, dial := range []func() (*Conn, error){
		func() (*Conn, error) { return a.Dial(ctx, b.LocalAddr().String(), AnyDevice) },
		func() (*Conn, error) { return a.DialTCP(ctx, b.TCPAddr().String(), AnyDevice) },
	} {
		c, err := dial()
		require.NoError(t, err)
		assert.Equal(t, bID.DeviceID(), c.Peer())
		require.NoError(t, c.Close())
	}
	// The answering side's gate still holds.
	stranger := newTransport(t, newIdentity(t), allow(bID), nil)
	_, err := stranger.Dial(ctx, b.LocalAddr().String(), AnyDevice)
	assert.ErrorIs(t, err, ErrRefused)
	_, err = stranger.DialTCP(ctx, b.TCPAddr().String(), AnyDevice)
	assert.ErrorIs(t, err, ErrRefused)
}

// TestTCPHandshakeSlots: 80 idle TCP sockets from other sources (4 per
// address, 127.0.0.2–21) take every handshake slot, and a real dial from
// 127.0.0.1 still succeeds; a fifth socket from one address is dropped at
// once.
func TestTCPHandshakeSlots(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)
	addr := a.TCPAddr().String()

	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := range 80 {
		src := net.IPv4(127, 0, 0, byte(2+i/maxTCPHandshakesPerSource))
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
		c, err := d.DialContext(ctx, "tcp", addr)
		require.NoError(t, err)
		idle = append(idle, c)
	}
	require.Eventually(t, func() bool { return a.tcpSlots.inUse() == maxTCPHandshakes },
		10*time.Second, 5*time.Millisecond, "the idle sockets take every slot")

	// A fifth socket from an address that has four is closed at once.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 21)}}
	extra, err := d.DialContext(ctx, "tcp", addr)
	require.NoError(t, err)
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // the Read below reports
	_, err = extra.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "dropped, not left waiting")

	// The real dialer gets through, taking the slot of an idle socket.
	out, in := connectTCP(t, ctx, b, a, aID)
	s, err := out.OpenStream(ctx)
	require.NoError(t, err)
	require.NoError(t, WriteFrame(s, []byte("hello")))
	rs, err := in.AcceptStream(ctx)
	require.NoError(t, err)
	msg, err := ReadFrame(rs, 0)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(msg))
}

// TestTCPFirstByteTimeout: a socket that never sends its ClientHello is
// closed after firstByteTimeout, and its slot freed.
func TestTCPFirstByteTimeout(t *testing.T) {
	ctx := testContext(t)
	aID := newIdentity(t)
	a, err := New(Config{Identity: aID, ListenAddr: "127.0.0.1:0", Authorize: allow()}) // HandshakeTimeout 10 s
	require.NoError(t, err)
	defer a.Close()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", a.TCPAddr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return a.tcpSlots.inUse() == 1 }, 5*time.Second, 5*time.Millisecond)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck // the Read below reports
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "closed by the server, not by our deadline")
	t.Logf("idle socket closed after %v (firstByteTimeout %v)", time.Since(start).Round(time.Millisecond), firstByteTimeout)
	require.Eventually(t, func() bool { return a.tcpSlots.inUse() == 0 }, 5*time.Second, 5*time.Millisecond, "slot freed")
}
