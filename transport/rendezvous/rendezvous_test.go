package rendezvous

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// rvSetup runs a rendezvous server on one transport and registers clients
// for each of ids on their own transports.
type rvSetup struct {
	srv     *Server
	clients map[crypto.DeviceID]*Client
}

func newRVSetup(t *testing.T, ids ...*crypto.Identity) *rvSetup {
	t.Helper()
	ctx := testContext(t)
	serverID := newIdentity(t)
	srvTr := newTransport(t, serverID, allow(ids...))
	rs := NewServer(nil)
	t.Cleanup(func() { _ = rs.Close() })
	out := &rvSetup{srv: rs, clients: map[crypto.DeviceID]*Client{}}
	for _, id := range ids {
		tr := newTransport(t, id, allow(serverID))
		c, in := connect(t, ctx, tr, srvTr, serverID)
		go func() {
			s, err := in.AcceptStream(ctx)
			if err == nil {
				_ = rs.Serve(ctx, in, s)
			}
		}()
		s, err := c.OpenStream(ctx)
		require.NoError(t, err)
		rc, err := NewClient(ctx, s, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = rc.Close() })
		assert.Equal(t, c.LocalAddr().String(), rc.Observed(), "the server reports the address it sees")
		out.clients[id.DeviceID()] = rc
	}
	for _, id := range ids {
		require.Eventually(t, func() bool { return rs.Registered(id.DeviceID()) }, 5*time.Second, 10*time.Millisecond)
	}
	return out
}

const testSession = "0123456789abcdef0123456789abcdef"

// signal returns a valid ICE signaling message of type typ ("offer" or
// "answer") for session (the format is transport's; see its doc.go).
func signal(t *testing.T, typ, session string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"v": 1, "type": typ, "session": session, "ufrag": "abcdEFGH", "pwd": "abcdefghijklmnopqrstuvwxyzAB",
		"candidates": []string{"1 1 udp 2130706431 192.0.2.10 44996 typ host"},
	})
	require.NoError(t, err)
	return b
}

func offerFor(t *testing.T, session string) []byte { return signal(t, "offer", session) }

func TestRendezvousRelaysOfferAndAnswer(t *testing.T) {
	a, b := newIdentity(t), newIdentity(t)
	setup := newRVSetup(t, a, b)
	ctx := testContext(t)
	ca, cb := setup.clients[a.DeviceID()], setup.clients[b.DeviceID()]

	dial := ca.Signaling()
	offer := offerFor(t, testSession)
	require.NoError(t, dial.Send(ctx, b.DeviceID(), offer))
	var got Offer
	select {
	case got = <-cb.Offers():
	case <-ctx.Done():
		t.Fatal("offer not relayed")
	}
	assert.Equal(t, a.DeviceID(), got.From, "the sender is the authenticated device")
	assert.JSONEq(t, string(offer), string(got.Msg))

	ansB := signal(t, "answer", testSession)
	require.NoError(t, cb.Signaling().Send(ctx, a.DeviceID(), ansB))
	from, msg, err := dial.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, b.DeviceID(), from)
	assert.JSONEq(t, string(ansB), string(msg))
}

func TestRendezvousUnknownTarget(t *testing.T) {
	a := newIdentity(t)
	setup := newRVSetup(t, a)
	ctx := testContext(t)
	dial := setup.clients[a.DeviceID()].Signaling()
	require.NoError(t, dial.Send(ctx, newIdentity(t).DeviceID(), offerFor(t, testSession)))
	_, _, err := dial.Recv(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNotRegistered)
}

func TestRendezvousAnswerFromWrongDeviceIgnored(t *testing.T) {
	a, b, c := newIdentity(t), newIdentity(t), newIdentity(t)
	setup := newRVSetup(t, a, b, c)
	ctx := testContext(t)
	dial := setup.clients[a.DeviceID()].Signaling()
	require.NoError(t, dial.Send(ctx, b.DeviceID(), offerFor(t, testSession)))
	// c answers a session it was never offered: dropped.
	raw := signal(t, "answer", testSession)
	require.NoError(t, setup.clients[c.DeviceID()].Signaling().Send(ctx, a.DeviceID(), raw))
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, _, err := dial.Recv(short)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRendezvousRejectsMalformed(t *testing.T) {
	a := newIdentity(t)
	setup := newRVSetup(t, a)
	ctx := testContext(t)
	err := setup.clients[a.DeviceID()].Signaling().Send(ctx, a.DeviceID(), []byte(`{"v":1,"type":"offer"}`))
	assert.ErrorIs(t, err, transport.ErrBadSignal, "a malformed signal is never sent")
}

func TestRendezvousRateLimit(t *testing.T) {
	a, b := newIdentity(t), newIdentity(t)
	setup := newRVSetup(t, a, b)
	ctx := testContext(t)
	ca, cb := setup.clients[a.DeviceID()], setup.clients[b.DeviceID()]
	for i := 0; i < rvBurst+30; i++ {
		require.NoError(t, ca.send(ctx, b.DeviceID(), offerFor(t, testSession)))
	}
	got := 0
	timeout := time.After(2 * time.Second)
loop:
	for {
		select {
		case <-cb.Offers():
			got++
		case <-timeout:
			break loop
		}
	}
	assert.Less(t, got, rvBurst+30, "a flood is cut by the rate limit")
	assert.Greater(t, got, 0)
}

func TestRendezvousServerClose(t *testing.T) {
	a := newIdentity(t)
	setup := newRVSetup(t, a)
	require.NoError(t, setup.srv.Close())
	assert.ErrorIs(t, setup.srv.Close(), ErrClosed)
	select {
	case <-setup.clients[a.DeviceID()].Done():
	case <-time.After(5 * time.Second):
		t.Fatal("clients end when the server closes")
	}
	assert.Error(t, setup.clients[a.DeviceID()].Err(), "Err says why it stopped")
}

func FuzzReadRendezvous(f *testing.F) {
	for _, s := range []string{
		`{"op":"register"}`,
		`{"op":"send","to":"AAAA","msg":"eyJ2IjoxfQ=="}`,
		`{"op":"recv","from":"x","msg":null}`,
		`{"op":"error","to":"x","error":"nope"}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf framedBuffer
		if transport.WriteFrame(&buf, b) != nil {
			return
		}
		m, err := readRV(&buf)
		if err == nil {
			assert.LessOrEqual(t, len(m.Msg), transport.MaxSignalSize)
		}
	})
}

type framedBuffer struct{ b []byte }

func (f *framedBuffer) Write(p []byte) (int, error) { f.b = append(f.b, p...); return len(p), nil }
func (f *framedBuffer) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, errors.New("EOF")
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}
