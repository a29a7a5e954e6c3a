package transport

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
)

// memSignal is an in-memory rendezvous: every device has an inbox, and a
// message sent by device d arrives labelled "from d" (or from whatever
// forgedFrom says, to play a lying rendezvous).
type memSignal struct {
	inboxes map[crypto.DeviceID]chan memMsg
}

type memMsg struct {
	from crypto.DeviceID
	msg  []byte
}

func newMemSignal(ids ...*crypto.Identity) *memSignal {
	m := &memSignal{inboxes: make(map[crypto.DeviceID]chan memMsg)}
	for _, id := range ids {
		m.inboxes[id.DeviceID()] = make(chan memMsg, 16)
	}
	return m
}

// endpoint returns device me's Signaling; its messages are labelled from
// "as" (normally me).
func (m *memSignal) endpoint(me, as *crypto.Identity) Signaling {
	return &memEndpoint{m: m, me: me.DeviceID(), as: as.DeviceID()}
}

type memEndpoint struct {
	m      *memSignal
	me, as crypto.DeviceID
}

func (e *memEndpoint) Send(ctx context.Context, to crypto.DeviceID, msg []byte) error {
	inbox, ok := e.m.inboxes[to]
	if !ok {
		return errors.New("no such device")
	}
	select {
	case inbox <- memMsg{from: e.as, msg: msg}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *memEndpoint) Recv(ctx context.Context) (crypto.DeviceID, []byte, error) {
	select {
	case m := <-e.m.inboxes[e.me]:
		return m.from, m.msg, nil
	case <-ctx.Done():
		return crypto.DeviceID{}, nil, ctx.Err()
	}
}

type connResult struct {
	c   *Conn
	err error
}

// answerOne makes tr answer the next offer arriving at sig with AcceptICE.
func answerOne(ctx context.Context, tr *Transport, sig Signaling, cfg ICEConfig) <-chan connResult {
	ch := make(chan connResult, 1)
	go func() {
		from, msg, err := sig.Recv(ctx)
		if err != nil {
			ch <- connResult{nil, err}
			return
		}
		c, err := tr.AcceptICE(ctx, from, msg, sig, cfg)
		ch <- connResult{c, err}
	}()
	return ch
}

// iceConnect connects a to b through ICE with in-memory signaling.
func iceConnect(t *testing.T, ctx context.Context, a, b *Transport, aID, bID *crypto.Identity) (out, in *Conn) {
	t.Helper()
	sig := newMemSignal(aID, bID)
	accepted := answerOne(ctx, b, sig.endpoint(bID, bID), ICEConfig{})
	out, err := a.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), ICEConfig{})
	require.NoError(t, err)
	r := <-accepted
	require.NoError(t, r.err)
	return out, r.c
}

func TestDirectPath(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)
	out, in := connect(t, ctx, a, b, bID)
	assert.Equal(t, PathDirect, out.Path())
	assert.Equal(t, PathDirect, in.Path())
}

func TestICEConnect(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)

	start := time.Now()
	out, in := iceConnect(t, ctx, a, b, aID, bID)
	t.Logf("ICE + QUIC connected in %v", time.Since(start))

	assert.Equal(t, bID.DeviceID(), out.Peer())
	assert.Equal(t, aID.DeviceID(), in.Peer())
	assert.True(t, out.Outgoing())
	assert.False(t, in.Outgoing())
	assert.Equal(t, PathICEHost, out.Path())
	assert.Equal(t, PathICEHost, in.Path())
	// One socket per device: QUIC runs between the two Transports' sockets,
	// the ones ICE checked.
	assert.Equal(t, b.LocalAddr().String(), out.RemoteAddr().String())
	assert.Equal(t, a.LocalAddr().String(), in.RemoteAddr().String())

	// 4 MiB from the acceptor, verified by hash, and a reply.
	payload := make([]byte, 4<<20)
	_, err := rand.Read(payload)
	require.NoError(t, err)
	s, err := in.OpenStream(ctx)
	require.NoError(t, err)
	go func() {
		WriteFrame(s, []byte("hello")) //nolint:errcheck // checked by the reader
		s.Write(payload)               //nolint:errcheck // checked by the reader
		s.Close()
	}()
	rs, err := out.AcceptStream(ctx)
	require.NoError(t, err)
	hello, err := ReadFrame(rs, 0)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(hello))
	h := sha256.New()
	n, err := io.Copy(h, rs)
	require.NoError(t, err)
	assert.EqualValues(t, len(payload), n)
	want := sha256.Sum256(payload)
	assert.Equal(t, want[:], h.Sum(nil))
	require.NoError(t, WriteFrame(rs, []byte("thanks")))
	reply, err := ReadFrame(s, 0)
	require.NoError(t, err)
	assert.Equal(t, "thanks", string(reply))

	// The ICE connection was not also queued for Accept, and direct dials
	// still work on the same sockets.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = b.Accept(short)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	d1, d2 := connect(t, ctx, a, b, bID)
	assert.Equal(t, PathDirect, d1.Path())
	assert.Equal(t, PathDirect, d2.Path())

	// A second ICE connection between the same two sockets, while the
	// first is up; closing the first leaves the second working.
	out2, in2 := iceConnect(t, ctx, a, b, aID, bID)
	assert.Equal(t, PathICEHost, out2.Path())
	assert.Equal(t, PathICEHost, in2.Path())
	require.NoError(t, out.Close())
	<-in.Done()
	s2, err := out2.OpenStream(ctx)
	require.NoError(t, err)
	require.NoError(t, WriteFrame(s2, []byte("still here")))
	rs2, err := in2.AcceptStream(ctx)
	require.NoError(t, err)
	msg, err := ReadFrame(rs2, 0)
	require.NoError(t, err)
	assert.Equal(t, "still here", string(msg))
	assert.Equal(t, "Connected", in2.ice.connectionState().String())
}

// agentClosed reports whether the ICE agent of c has been closed.
func agentClosed(c *Conn) bool {
	_, err := c.ice.agent.GetLocalCandidates()
	return errors.Is(err, ice.ErrClosed)
}

func TestICELifetimes(t *testing.T) {
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)

	t.Run("closing QUIC closes both agents", func(t *testing.T) {
		out, in := iceConnect(t, ctx, a, b, aID, bID)
		require.NotNil(t, out.ice)
		require.NotNil(t, in.ice)
		assert.False(t, agentClosed(out))
		assert.False(t, agentClosed(in))
		require.NoError(t, out.Close())
		<-in.Done()
		assert.Eventually(t, func() bool { return agentClosed(out) && agentClosed(in) },
			3*time.Second, 10*time.Millisecond)
	})

	t.Run("ICE failure closes QUIC", func(t *testing.T) {
		out, in := iceConnect(t, ctx, a, b, aID, bID)
		// The agent going away (here: closed; in the field: consent lost)
		// must take the QUIC connection with it.
		require.NoError(t, in.ice.agent.Close())
		select {
		case <-in.Done():
		case <-ctx.Done():
			t.Fatal("QUIC connection survived its ICE agent")
		}
		select {
		case <-out.Done():
		case <-ctx.Done():
			t.Fatal("the peer's connection did not end")
		}
		var ae *CloseError
		require.ErrorAs(t, out.Err(), &ae)
		assert.EqualValues(t, ClosePathFailed, ae.Code)
		assert.True(t, ae.Remote)
		assert.Eventually(t, func() bool { return agentClosed(out) }, 3*time.Second, 10*time.Millisecond)
	})

	t.Run("consent keeps flowing while idle", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits 6 s")
		}
		out, in := iceConnect(t, ctx, a, b, aID, bID)
		before := make([]uint64, 2)
		for i, c := range []*Conn{out, in} {
			st, ok := c.ice.agent.GetSelectedCandidatePairStats()
			require.True(t, ok)
			before[i] = st.ResponsesReceived
		}
		// Past pion's disconnected timeout (5 s): consent checks keep the
		// agents connected though QUIC carries all application data.
		stayOpen(t, 6*time.Second, out, in)
		for i, c := range []*Conn{out, in} {
			assert.Equal(t, ice.ConnectionStateConnected, c.ice.connectionState())
			st, ok := c.ice.agent.GetSelectedCandidatePairStats()
			require.True(t, ok)
			assert.Greater(t, st.ResponsesReceived, before[i]+1, "consent responses")
		}
		require.NoError(t, out.Close())
	})

	t.Run("Transport.Close ends a DialICE in progress", func(t *testing.T) {
		cID := newIdentity(t)
		c, err := New(Config{Identity: cID, ListenAddr: "127.0.0.1:0", Authorize: allow(aID)})
		require.NoError(t, err)
		sig := newMemSignal(aID, cID) // nobody answers
		done := make(chan error, 1)
		go func() {
			_, err := c.DialICE(ctx, aID.DeviceID(), sig.endpoint(cID, cID), ICEConfig{})
			done <- err
		}()
		<-sig.inboxes[aID.DeviceID()] // the offer was sent
		require.NoError(t, c.Close())
		select {
		case err := <-done:
			assert.ErrorIs(t, err, ErrClosed)
		case <-ctx.Done():
			t.Fatal("DialICE still running after Close")
		}
	})

	t.Run("Transport.Close closes ICE connections", func(t *testing.T) {
		cID := newIdentity(t)
		a := newTransport(t, aID, allow(cID), nil)
		c := newTransport(t, cID, allow(aID), nil)
		out, in := iceConnect(t, ctx, a, c, aID, cID)
		require.NoError(t, c.Close())
		<-in.Done()
		<-out.Done()
		assert.True(t, agentClosed(in))
		assert.Eventually(t, func() bool { return agentClosed(out) }, 3*time.Second, 10*time.Millisecond)
		_, err := c.DialICE(ctx, aID.DeviceID(), newMemSignal(aID, cID).endpoint(cID, cID), ICEConfig{})
		assert.ErrorIs(t, err, ErrClosed)
	})
}

func TestICERefusals(t *testing.T) {
	aID, bID, cID := newIdentity(t), newIdentity(t), newIdentity(t)

	t.Run("offer from a device not in the table", func(t *testing.T) {
		ctx := testContext(t)
		a := newTransport(t, aID, allow(bID), nil)
		c := newTransport(t, cID, allow(aID), nil)
		sig := newMemSignal(aID, cID)
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		accepted := answerOne(short, a, sig.endpoint(aID, aID), ICEConfig{})
		_, err := c.DialICE(short, aID.DeviceID(), sig.endpoint(cID, cID), ICEConfig{})
		require.Error(t, err, "no answer should come")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		r := <-accepted
		assert.ErrorIs(t, r.err, crypto.ErrUnknownPeer)
		var pe *crypto.PeerError
		require.ErrorAs(t, r.err, &pe)
		assert.Equal(t, cID.DeviceID(), pe.Device)
	})

	t.Run("forged offer fails at the TLS step", func(t *testing.T) {
		ctx := testContext(t)
		// The rendezvous claims C's offer comes from B, whom A knows. ICE
		// succeeds, but TLS proves the dialer is C, whom A refuses.
		var log syncBuffer
		a := newTransport(t, aID, allow(bID), &log)
		c := newTransport(t, cID, allow(aID), nil)
		sig := newMemSignal(aID, bID, cID)
		// A's answer, sent to B, reaches C.
		go func() {
			select {
			case m := <-sig.inboxes[bID.DeviceID()]:
				sig.inboxes[cID.DeviceID()] <- m
			case <-ctx.Done():
			}
		}()
		accepted := answerOne(ctx, a, sig.endpoint(aID, aID), ICEConfig{})
		_, err := c.DialICE(ctx, aID.DeviceID(), sig.endpoint(cID, bID), ICEConfig{})
		assert.ErrorIs(t, err, ErrRefused)
		t.Logf("dialer: %v", err)
		r := <-accepted
		require.Error(t, r.err)
		assert.ErrorIs(t, r.err, crypto.ErrUnknownPeer)
		var pe *crypto.PeerError
		require.ErrorAs(t, r.err, &pe)
		assert.Equal(t, cID.DeviceID(), pe.Device, "the error names the device that really came")
		t.Logf("acceptor: %v", r.err)
		assert.Contains(t, log.String(), "refused incoming connection")
	})

	t.Run("forged answer fails at the TLS step", func(t *testing.T) {
		ctx := testContext(t)
		// A dials B; the rendezvous sends A's offer to C and C's answer back
		// labelled as B's. ICE succeeds with C; TLS shows A it is not B.
		a := newTransport(t, aID, allow(bID), nil)
		c := newTransport(t, cID, allow(aID), nil)
		sig := newMemSignal(aID, bID, cID)
		// Deliver A's offer (sent to B) to C.
		cInbox := sig.inboxes[cID.DeviceID()]
		go func() {
			select {
			case m := <-sig.inboxes[bID.DeviceID()]:
				cInbox <- m
			case <-ctx.Done():
			}
		}()
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		accepted := answerOne(short, c, &memEndpoint{m: sig, me: cID.DeviceID(), as: bID.DeviceID()}, ICEConfig{})
		_, err := a.DialICE(short, bID.DeviceID(), sig.endpoint(aID, aID), ICEConfig{})
		assert.ErrorIs(t, err, crypto.ErrUnknownPeer)
		t.Logf("dialer: %v", err)
		r := <-accepted
		assert.Error(t, r.err)
	})

	t.Run("malformed answer", func(t *testing.T) {
		ctx := testContext(t)
		a := newTransport(t, aID, allow(bID), nil)
		sig := newMemSignal(aID, bID)
		go func() {
			if _, _, err := sig.endpoint(bID, bID).Recv(ctx); err == nil {
				sig.endpoint(bID, bID).Send(ctx, aID.DeviceID(), []byte(`{"v":1,"type":"answer"}`)) //nolint:errcheck // seen by DialICE
			}
		}()
		_, err := a.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), ICEConfig{})
		assert.ErrorIs(t, err, ErrBadSignal)
	})

	t.Run("malformed offer", func(t *testing.T) {
		ctx := testContext(t)
		a := newTransport(t, aID, allow(bID), nil)
		_, err := a.AcceptICE(ctx, bID.DeviceID(), []byte("{}"), newMemSignal(aID, bID).endpoint(aID, aID), ICEConfig{})
		assert.ErrorIs(t, err, ErrBadSignal)
	})
}

// routedSignal plays a rendezvous client with a dispatcher: offers arriving
// for a device are answered by its Transport's AcceptICE, answers go to
// the DialICE waiting for them (by session).
type routedSignal struct {
	m        *memSignal
	me       *crypto.Identity
	answers  chan memMsg
	accepted chan connResult
}

func (r *routedSignal) Send(ctx context.Context, to crypto.DeviceID, msg []byte) error {
	return r.m.endpoint(r.me, r.me).Send(ctx, to, msg)
}

func (r *routedSignal) Recv(ctx context.Context) (crypto.DeviceID, []byte, error) {
	select {
	case m := <-r.answers:
		return m.from, m.msg, nil
	case <-ctx.Done():
		return crypto.DeviceID{}, nil, ctx.Err()
	}
}

func (r *routedSignal) dispatch(ctx context.Context, tr *Transport) {
	for {
		from, msg, err := r.m.endpoint(r.me, r.me).Recv(ctx)
		if err != nil {
			return
		}
		s, err := parseSignal(msg)
		if err != nil {
			continue
		}
		if s.Type == signalAnswer {
			r.answers <- memMsg{from, msg}
			continue
		}
		go func() {
			c, err := tr.AcceptICE(ctx, from, msg, r, ICEConfig{})
			r.accepted <- connResult{c, err}
		}()
	}
}

func TestICESimultaneousDials(t *testing.T) {
	// Both devices dial each other at once: four ICE sessions between the
	// same two socket addresses at the same time.
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)
	m := newMemSignal(aID, bID)
	ra := &routedSignal{m: m, me: aID, answers: make(chan memMsg, 4), accepted: make(chan connResult, 4)}
	rb := &routedSignal{m: m, me: bID, answers: make(chan memMsg, 4), accepted: make(chan connResult, 4)}
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	go ra.dispatch(dctx, a)
	go rb.dispatch(dctx, b)

	dialed := make(chan connResult, 2)
	go func() { c, err := a.DialICE(ctx, bID.DeviceID(), ra, ICEConfig{}); dialed <- connResult{c, err} }()
	go func() { c, err := b.DialICE(ctx, aID.DeviceID(), rb, ICEConfig{}); dialed <- connResult{c, err} }()
	var conns []*Conn
	for _, ch := range []chan connResult{dialed, dialed, ra.accepted, rb.accepted} {
		r := <-ch
		require.NoError(t, r.err)
		conns = append(conns, r.c)
		assert.Equal(t, PathICEHost, r.c.Path())
	}
	// Each works.
	for _, c := range conns[:2] {
		s, err := c.OpenStream(ctx)
		require.NoError(t, err)
		require.NoError(t, WriteFrame(s, []byte("x")))
		require.NoError(t, s.Close())
	}
	for _, c := range conns[2:] {
		s, err := c.AcceptStream(ctx)
		require.NoError(t, err)
		msg, err := ReadFrame(s, 0)
		require.NoError(t, err)
		assert.Equal(t, "x", string(msg))
	}
	stop()
}

func TestICEOnAllInterfaces(t *testing.T) {
	// Sockets bound to the unspecified address (the default, ":44996"):
	// host candidates come from every interface.
	ctx := testContext(t)
	aID, bID := newIdentity(t), newIdentity(t)
	mk := func(id, peer *crypto.Identity) *Transport {
		tr, err := New(Config{Identity: id, ListenAddr: ":0", Authorize: allow(peer)})
		require.NoError(t, err)
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	a, b := mk(aID, bID), mk(bID, aID)
	out, in := iceConnect(t, ctx, a, b, aID, bID)
	assert.Equal(t, PathICEHost, out.Path())
	assert.Equal(t, PathICEHost, in.Path())
	t.Logf("selected %s -> %s", in.RemoteAddr(), out.RemoteAddr())
	s, err := out.OpenStream(ctx)
	require.NoError(t, err)
	require.NoError(t, WriteFrame(s, []byte("x")))
	rs, err := in.AcceptStream(ctx)
	require.NoError(t, err)
	msg, err := ReadFrame(rs, 0)
	require.NoError(t, err)
	assert.Equal(t, "x", string(msg))
}
