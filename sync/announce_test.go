package sync

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// TestPublishedScanAnnounced: when a long scan publishes part of its
// commits (gitstore's ScanProgress.Published, reported while the scan
// still holds the store), the running engine announces that head at once,
// and the peer fetches and applies it: a first sync starts before a big
// first scan ends. Periodic announcements are an hour apart here, so the
// report is what tells the peer.
func TestPublishedScanAnnounced(t *testing.T) {
	hourly := func(c *Config) { c.AnnounceInterval = time.Hour }
	a, b := newNodeCfg(t, "a", hourly), newNodeCfg(t, "b", hourly)
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Name: "b", Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Name: "a", Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
	eventually(t, "a and b connected", func() bool {
		sa := a.e.Status()
		return len(sa.Peers) == 1 && sa.Peers[0].Connected
	})

	// A's main moves without the engine knowing (as it does partway
	// through a long scan): a bundle from elsewhere applied to its store.
	other, err := gitstore.Open(gitstore.Config{Dir: t.TempDir(), Create: true, AuthorName: "c", AuthorEmail: "c@peersync"})
	require.NoError(t, err)
	defer other.Close()
	write(t, other.Dir(), "first.txt", "published mid-scan")
	write(t, other.Dir(), "sub/second.txt", "also")
	_, err = other.Scan(context.Background())
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = other.WriteBundle(context.Background(), &buf, nil)
	require.NoError(t, err)
	st, err := a.e.store("docs")
	require.NoError(t, err)
	elsewhere, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	res, err := st.ApplyBundle(context.Background(), &buf, elsewhere.DeviceID().String())
	require.NoError(t, err)

	a.e.scanProgress(a.dir)(gitstore.ScanProgress{Files: 2, Bytes: 25, Published: res.Head, Commits: 2})
	eventually(t, "the published commits reach b", func() bool {
		return fileIs(b.dir, "first.txt", "published mid-scan")() && fileIs(b.dir, "sub/second.txt", "also")()
	})
	eventually(t, "b's head is the published one", func() bool { return b.e.Status().Folders[0].Head == res.Head })
}
