package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

// TestAcceptDeviceAndFolder: sharing takes A adding B and picking the
// folder, and B accepting A and the folder, through B's API; B learns of
// both from its event stream, and the folder's file arrives.
func TestAcceptDeviceAndFolder(t *testing.T) {
	b := newFixture(t, Options{ConsumeEvents: true})
	b.run(t)
	events := b.follow(t, 0)
	ctx := context.Background()

	home, dir := t.TempDir(), t.TempDir()
	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	require.NoError(t, err)
	a, err := sync.New(sync.Config{Home: home, Identity: id, Network: sync.NetworkConfig{ListenAddr: "127.0.0.1:0"}, DialInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, a.SetName("alpha"))
	require.NoError(t, a.AddFolder(ctx, sync.FolderConfig{ID: "docs", Path: dir, Label: "Docs"}))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello"), 0o644))
	require.NoError(t, a.SetPeer(sync.PeerConfig{Device: b.e.DeviceID(), Addrs: []string{b.e.Addr().String()}, Folders: []string{"docs"}}))
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() { cancel(); <-done; _ = a.Close() })

	ev := events.next(t, sync.EventPendingDevice)
	assert.Equal(t, id.DeviceID(), ev.Peer)
	p, err := b.client.Pending(ctx)
	require.NoError(t, err)
	require.Len(t, p.Devices, 1)
	assert.Equal(t, id.DeviceID(), p.Devices[0].Device)

	res, body := b.do(t, "POST", "/rest/pending/folders/docs/accept", fmt.Sprintf(`{"path":%q}`, t.TempDir()))
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "no offer before the device is accepted: %s", body)
	res, body = b.do(t, "POST", "/rest/pending/devices/bogus/accept", `{}`)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, body)

	ps, err := b.client.AcceptDevice(ctx, id.DeviceID(), nil)
	require.NoError(t, err)
	assert.Equal(t, id.DeviceID(), ps.Device)

	ev = events.next(t, sync.EventFolderOffer)
	assert.Equal(t, "docs", ev.Folder)
	into := filepath.Join(t.TempDir(), "docs here")
	require.NoError(t, os.Mkdir(into, 0o755))
	f, err := b.client.AcceptFolder(ctx, "docs", into, id.DeviceID())
	require.NoError(t, err)
	assert.Equal(t, "docs", f.ID)
	for {
		ev := events.next(t, sync.EventRemoteApplied)
		if ev.Folder == "docs" {
			break
		}
	}
	got, err := os.ReadFile(filepath.Join(into, "hello.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
	p, err = b.client.Pending(ctx)
	require.NoError(t, err)
	assert.Empty(t, p.Devices)
	assert.Empty(t, p.Folders)
}
