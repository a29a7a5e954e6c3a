package sync

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bundle between two real engines is counted on both sides: what A sent
// is what B received, at least the file's (incompressible) size; nothing
// went the other way. A stopped engine counts nothing.
func TestTrafficCounted(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	assert.Equal(t, Traffic{}, a.e.Traffic(), "not running")
	big := make([]byte, 1<<20)
	_, err := rand.Read(big)
	require.NoError(t, err)
	write(t, a.dir, "big.bin", string(big))
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Name: "b", Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Name: "a", Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
	eventually(t, "the file reaches b", fileIs(b.dir, "big.bin", string(big)))
	eventually(t, "both count the bundle alike", func() bool {
		ta, tb := a.e.Traffic(), b.e.Traffic()
		return ta.BundleBytesOut >= int64(len(big)) && ta.BundleBytesOut == tb.BundleBytesIn
	})
	ta, tb := a.e.Traffic(), b.e.Traffic()
	assert.Zero(t, ta.BundleBytesIn)
	assert.Zero(t, tb.BundleBytesOut)
	assert.Zero(t, ta.OffersRelayed, "not a rendezvous")
}
