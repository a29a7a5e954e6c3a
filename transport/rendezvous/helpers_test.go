package rendezvous

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// TestMain fails the run if any test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newIdentity(t *testing.T) *crypto.Identity {
	t.Helper()
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	return id
}

func allow(ids ...*crypto.Identity) func(crypto.DeviceID) error {
	return func(d crypto.DeviceID) error {
		for _, id := range ids {
			if id.DeviceID() == d {
				return nil
			}
		}
		return fmt.Errorf("%w: %s", crypto.ErrUnknownPeer, d.Short())
	}
}

func newTransport(t *testing.T, id *crypto.Identity, authorize func(crypto.DeviceID) error) *transport.Transport {
	t.Helper()
	tr, err := transport.New(transport.Config{Identity: id, ListenAddr: "127.0.0.1:0", NoTCP: true, Authorize: authorize})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return tr
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect dials b from a and returns both ends.
func connect(t *testing.T, ctx context.Context, a, b *transport.Transport, bID *crypto.Identity) (out, in *transport.Conn) {
	t.Helper()
	accepted := make(chan *transport.Conn, 1)
	go func() {
		c, _ := b.Accept(ctx)
		accepted <- c
	}()
	out, err := a.Dial(ctx, b.LocalAddr().String(), bID.DeviceID())
	require.NoError(t, err)
	in = <-accepted
	require.NotNil(t, in)
	return out, in
}
