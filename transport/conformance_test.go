package transport

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
)

// connKind is one way of making a connection: the conformance suite runs
// over each, since a Conn, its Streams and their errors must behave the
// same on every path.
type connKind struct {
	name    string
	path    Path
	connect func(t *testing.T, ctx context.Context, a, b *Transport, aID, bID *crypto.Identity) (out, in *Conn)
	// checkAddrs checks the addresses of a pair.
	checkAddrs func(t *testing.T, a, b *Transport, out, in *Conn)
	// freed reports whether neither end holds a stream any more (nil: not
	// observable on this kind).
	freed func(out, in *Conn) bool
}

var connKinds = []connKind{
	{
		name: "quic", path: PathDirect,
		connect: func(t *testing.T, ctx context.Context, a, b *Transport, _, bID *crypto.Identity) (*Conn, *Conn) {
			return connect(t, ctx, a, b, bID)
		},
		checkAddrs: func(t *testing.T, a, b *Transport, out, in *Conn) {
			assert.Equal(t, b.LocalAddr().String(), out.RemoteAddr().String())
			assert.Equal(t, a.LocalAddr().String(), in.RemoteAddr().String())
			assert.Equal(t, a.LocalAddr().String(), out.LocalAddr().String())
		},
	},
	{
		name: "tcp", path: PathTCP,
		connect: func(t *testing.T, ctx context.Context, a, b *Transport, _, bID *crypto.Identity) (*Conn, *Conn) {
			return connectTCP(t, ctx, a, b, bID)
		},
		checkAddrs: func(t *testing.T, a, b *Transport, out, in *Conn) {
			assert.Equal(t, b.TCPAddr().String(), out.RemoteAddr().String())
			assert.Equal(t, out.LocalAddr().String(), in.RemoteAddr().String())
			assert.IsType(t, &net.TCPAddr{}, out.RemoteAddr())
		},
		freed: func(out, in *Conn) bool { return numStreams(out) == 0 && numStreams(in) == 0 },
	},
	{
		name: "ice", path: PathICEHost,
		connect: iceConnect,
		checkAddrs: func(t *testing.T, a, b *Transport, out, in *Conn) {
			// QUIC on the shared socket, to one of the peer's host candidates.
			assert.Equal(t, a.LocalAddr().String(), out.LocalAddr().String())
			assert.Equal(t, b.LocalAddr().(*net.UDPAddr).Port, out.RemoteAddr().(*net.UDPAddr).Port)
		},
	},
}

// TestConformance runs the same checks over a QUIC, a TCP and an ICE
// connection.
func TestConformance(t *testing.T) {
	for _, k := range connKinds {
		t.Run(k.name, func(t *testing.T) { testConformance(t, k) })
	}
}

func testConformance(t *testing.T, k connKind) {
	// A bound for the whole suite of one kind, generous for -race on a
	// loaded machine; not a performance limit.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	aID, bID := newIdentity(t), newIdentity(t)
	a := newTransport(t, aID, allow(bID), nil)
	b := newTransport(t, bID, allow(aID), nil)
	out, in := k.connect(t, ctx, a, b, aID, bID)
	assert.Equal(t, k.path, out.Path())
	assert.Equal(t, k.path, in.Path())
	assert.Equal(t, bID.DeviceID(), out.Peer())
	assert.Equal(t, aID.DeviceID(), in.Peer())
	assert.True(t, out.Outgoing())
	assert.False(t, in.Outgoing())
	k.checkAddrs(t, a, b, out, in)
	assert.Nil(t, out.Err())
	checkFreed := func(t *testing.T, what string) {
		t.Helper()
		if k.freed != nil {
			require.Eventually(t, func() bool { return k.freed(out, in) }, 5*time.Second, 5*time.Millisecond, what)
		}
	}
	pair := func(t *testing.T) (s, rs *Stream) {
		t.Helper()
		s, err := out.OpenStream(ctx)
		require.NoError(t, err)
		_, err = s.Write([]byte("x")) // QUIC announces a stream with its first byte
		require.NoError(t, err)
		rs, err = in.AcceptStream(ctx)
		require.NoError(t, err)
		_, err = io.ReadFull(rs, make([]byte, 1))
		require.NoError(t, err)
		return s, rs
	}

	t.Run("echo and half-close", func(t *testing.T) {
		s, rs := pair(t)
		require.NoError(t, WriteFrame(s, []byte("ping")))
		msg, err := ReadFrame(rs, 0)
		require.NoError(t, err)
		assert.Equal(t, "ping", string(msg))

		// We close our write side: the peer reads EOF and can still answer.
		require.NoError(t, s.Close())
		_, err = ReadFrame(rs, 0)
		assert.ErrorIs(t, err, io.EOF)
		require.NoError(t, WriteFrame(rs, []byte("pong")))
		require.NoError(t, rs.Close())
		msg, err = ReadFrame(s, 0)
		require.NoError(t, err)
		assert.Equal(t, "pong", string(msg))
		_, err = s.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF)
		_, err = s.Write([]byte("late"))
		assert.Error(t, err, "write after Close")
		checkFreed(t, "closed both ways: freed")
	})

	t.Run("8 MiB each way", func(t *testing.T) { checkBulkBothWays(t, ctx, out, in, 8<<20) })

	t.Run("100 concurrent streams each way", func(t *testing.T) {
		checkConcurrentStreams(t, ctx, out, in, 100, 64<<10)
		checkFreed(t, "all freed")
	})

	t.Run("deadlines", func(t *testing.T) {
		s, rs := pair(t)
		require.NoError(t, rs.SetDeadline(time.Now().Add(50*time.Millisecond)))
		_, err := io.ReadFull(rs, make([]byte, 2))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.NoError(t, rs.SetDeadline(time.Time{}))
		// The peer reads nothing: writes stop at the window, then time out.
		require.NoError(t, s.SetWriteDeadline(time.Now().Add(200*time.Millisecond)))
		_, err = s.Write(make([]byte, 2*muxWindow))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		s.Abort()
		rs.Abort()
	})

	var se *StreamResetError
	t.Run("writer aborts: the reader fails, not EOF", func(t *testing.T) {
		s, rs := pair(t)
		_, err := s.Write([]byte("partial"))
		require.NoError(t, err)
		_, err = io.ReadFull(rs, make([]byte, 7))
		require.NoError(t, err)
		s.Abort()
		_, err = io.ReadAll(rs)
		require.ErrorAs(t, err, &se)
		assert.True(t, se.Remote)
		_, err = s.Write([]byte("x"))
		require.ErrorAs(t, err, &se)
		assert.False(t, se.Remote)
		require.Eventually(t, func() bool {
			_, err := rs.Write([]byte("x"))
			return err != nil
		}, 5*time.Second, 5*time.Millisecond, "the reset covers both directions")
	})

	t.Run("reader aborts: blocked Write and Read fail", func(t *testing.T) {
		s, rs := pair(t)
		writeErr := make(chan error, 1)
		go func() {
			_, err := s.Write(make([]byte, 4*muxWindow)) // more than any window: blocks
			writeErr <- err
		}()
		_, err := io.ReadFull(rs, make([]byte, 1000))
		require.NoError(t, err)
		readErr := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(s)
			readErr <- err
		}()
		rs.Abort()
		for what, ch := range map[string]chan error{"Write": writeErr, "Read": readErr} {
			select {
			case err := <-ch:
				require.ErrorAs(t, err, &se, what)
				assert.True(t, se.Remote, what)
			case <-ctx.Done():
				t.Fatalf("%s still blocked after the peer's Abort", what)
			}
		}
		_, err = rs.Read(make([]byte, 1))
		require.ErrorAs(t, err, &se)
		assert.False(t, se.Remote)
	})

	t.Run("abort after a complete exchange is harmless", func(t *testing.T) {
		s, rs := pair(t)
		require.NoError(t, WriteFrame(s, []byte("want")))
		require.NoError(t, s.Close())
		_, err := ReadFrame(rs, 0)
		require.NoError(t, err)
		require.NoError(t, WriteFrame(rs, []byte("bundle")))
		require.NoError(t, rs.Close())
		msg, err := ReadFrame(s, 0)
		require.NoError(t, err)
		assert.Equal(t, "bundle", string(msg))
		s.Abort()
		s.Abort()
		rs.Abort()
	})

	t.Run("CloseRead", func(t *testing.T) {
		s, rs := pair(t)
		require.NoError(t, rs.CloseRead())
		_, err := rs.Read(make([]byte, 1))
		require.ErrorAs(t, err, &se)
		assert.False(t, se.Remote)
		// Our sending direction still works.
		require.NoError(t, WriteFrame(rs, []byte("still")))
		msg, err := ReadFrame(s, 0)
		require.NoError(t, err)
		assert.Equal(t, "still", string(msg))
		s.Abort()
		rs.Abort()
	})

	checkFreed(t, "aborted streams are freed on both sides")
	assert.Nil(t, out.Err(), "aborts leave the connection up")
	assert.Nil(t, in.Err())

	t.Run("CloseWithError reaches the peer", func(t *testing.T) {
		require.NoError(t, in.CloseWithError(42, "bye"))
		select {
		case <-out.Done():
		case <-ctx.Done():
			t.Fatal("Done did not fire on remote close")
		}
		var ce *CloseError
		require.ErrorAs(t, out.Err(), &ce)
		assert.Equal(t, CloseError{Code: 42, Message: "bye", Remote: true}, *ce)
		assert.ErrorIs(t, out.Err(), net.ErrClosed)
		require.ErrorAs(t, in.Err(), &ce)
		assert.Equal(t, CloseError{Code: 42, Message: "bye"}, *ce)
		_, err := out.OpenStream(ctx)
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.ErrorAs(t, err, &ce)
		_, err = out.AcceptStream(ctx)
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.NoError(t, out.Close(), "closing a closed connection")
		assert.NoError(t, in.CloseWithError(CloseRaceLost, "again"), "only the first close counts")
		require.ErrorAs(t, in.Err(), &ce)
		assert.EqualValues(t, 42, ce.Code)
	})
}

// checkConcurrentStreams has each side open n streams at once to the
// other, each carrying size random bytes that the other side answers with
// their digest.
func checkConcurrentStreams(t *testing.T, ctx context.Context, out, in *Conn, n, size int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	serve := func(c *Conn) {
		for range n {
			s, err := c.AcceptStream(ctx)
			if err != nil {
				errs <- err
				return
			}
			wg.Go(func() {
				h := sha256.New()
				_, err := io.Copy(h, s)
				if err == nil {
					_, err = s.Write(h.Sum(nil))
				}
				if err == nil {
					err = s.Close()
				}
				if err != nil {
					errs <- err
				}
			})
		}
	}
	client := func(c *Conn, i int) {
		payload := make([]byte, size)
		rand.Read(payload) //nolint:errcheck // never fails
		want := sha256.Sum256(payload)
		s, err := c.OpenStream(ctx)
		if err == nil {
			_, err = s.Write(payload)
		}
		if err == nil {
			err = s.Close()
		}
		var got []byte
		if err == nil {
			got, err = io.ReadAll(s)
		}
		if err == nil && string(got) != string(want[:]) {
			err = fmt.Errorf("stream %d: wrong digest", i)
		}
		if err != nil {
			errs <- err
		}
	}
	wg.Go(func() { serve(in) })
	wg.Go(func() { serve(out) })
	for i := range n {
		wg.Go(func() { client(out, i) })
		wg.Go(func() { client(in, i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
