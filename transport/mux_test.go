package transport

import (
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func stunMsg(t *testing.T, setters ...stun.Setter) *stun.Message {
	t.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
	require.NoError(t, err)
	return m
}

// received returns the packet waiting for c, or nil.
func received(c *sessionConn) []byte {
	select {
	case p := <-c.in:
		return p.data
	default:
		return nil
	}
}

func TestStunDemuxRouting(t *testing.T) {
	d := newStunDemux(nil, slog.New(slog.DiscardHandler))
	c1, err := d.register("ufragOne")
	require.NoError(t, err)
	c2, err := d.register("ufragTwo")
	require.NoError(t, err)
	_, err = d.register("ufragOne")
	assert.Error(t, err, "duplicate ufrag")
	from := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}

	// Requests: by the first half of USERNAME.
	req1 := stunMsg(t, stun.BindingRequest, stun.NewUsername("ufragOne:theirs"))
	d.dispatch(req1.Raw, from)
	assert.Equal(t, req1.Raw, received(c1))
	assert.Nil(t, received(c2))
	req2 := stunMsg(t, stun.BindingRequest, stun.NewUsername("ufragTwo:theirs"))
	d.dispatch(req2.Raw, from)
	assert.Equal(t, req2.Raw, received(c2))
	assert.Nil(t, received(c1))

	// Dropped: no USERNAME, an unknown ufrag, not STUN at all.
	d.dispatch(stunMsg(t, stun.BindingRequest).Raw, from)
	d.dispatch(stunMsg(t, stun.BindingRequest, stun.NewUsername("nobody:x")).Raw, from)
	d.dispatch([]byte{0x17, 0xfe, 0xfd, 0, 0}, from)
	assert.Nil(t, received(c1))
	assert.Nil(t, received(c2))

	// Responses: to the session that sent the request, once.
	out := stunMsg(t, stun.BindingRequest, stun.NewUsername("theirs:ufragTwo"))
	d.sent(c2, out.Raw)
	resp, err := stun.Build(stun.NewTransactionIDSetter(out.TransactionID), stun.BindingSuccess)
	require.NoError(t, err)
	d.dispatch(resp.Raw, from)
	assert.Equal(t, resp.Raw, received(c2))
	d.dispatch(resp.Raw, from)
	assert.Nil(t, received(c2), "a response is routed once")
	d.dispatch(stunMsg(t, stun.BindingSuccess).Raw, from)
	assert.Nil(t, received(c1))
	assert.Nil(t, received(c2))

	// Outgoing responses and indications are not remembered.
	d.sent(c1, resp.Raw)
	d.sent(c1, stunMsg(t, stun.NewType(stun.MethodBinding, stun.ClassIndication)).Raw)
	assert.Empty(t, d.byTx)

	// A session that does not read loses packets, and blocks nobody.
	for range 2 * sessionQueueLen {
		d.dispatch(req1.Raw, from)
	}
	assert.Len(t, c1.in, sessionQueueLen)

	// A closed session gets nothing more, and its transactions are forgotten.
	d.sent(c1, stunMsg(t, stun.BindingRequest).Raw)
	require.NoError(t, c1.Close())
	assert.Empty(t, d.byTx)
	n := len(c1.in)
	d.dispatch(req1.Raw, from)
	assert.Len(t, c1.in, n)
	_, err = d.register("ufragOne")
	assert.NoError(t, err, "the ufrag is free again")
}

func TestSessionConn(t *testing.T) {
	d := newStunDemux(nil, slog.New(slog.DiscardHandler))
	c, err := d.register("ufrag")
	require.NoError(t, err)
	from := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}
	c.in <- stunPacket{data: []byte("abc"), addr: from}

	buf := make([]byte, 10)
	n, addr, err := c.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "abc", string(buf[:n]))
	assert.Equal(t, from, addr)

	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, _, err = c.ReadFrom(buf)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.True(t, os.IsTimeout(err), "pion's mux retries on timeouts")
	require.NoError(t, c.SetReadDeadline(time.Time{}))

	// A reader reading in a loop (as pion's mux does) is ended by Close
	// from another goroutine: it has read one packet (the sign that it
	// runs) when Close comes.
	read := make(chan string, 1)
	ended := make(chan error, 1)
	go func() {
		rb := make([]byte, 10)
		for {
			n, _, err := c.ReadFrom(rb)
			if err != nil {
				ended <- err
				return
			}
			read <- string(rb[:n])
		}
	}()
	c.in <- stunPacket{data: []byte("first"), addr: from}
	assert.Equal(t, "first", <-read)
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-ended, net.ErrClosed)
	assert.True(t, c.waitReader(time.Second))
	_, err = c.WriteTo([]byte("x"), from)
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.NoError(t, c.Close(), "idempotent")
}
