package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/sync"
)

// receivedFrom makes f's folder "docs" receive-only from a second real
// engine and applies a bundle of that engine's "docs" (one file) to it,
// as if received: it returns the peer and the file's path.
func receivedFrom(t *testing.T, f *fixture) (crypto.DeviceID, string) {
	t.Helper()
	ctx := context.Background()
	home, dir := t.TempDir(), t.TempDir()
	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	require.NoError(t, err)
	other, err := sync.New(sync.Config{Home: home, Identity: id})
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, other.AddFolder(ctx, sync.FolderConfig{ID: "docs", Path: dir}))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "from-peer.txt"), []byte("theirs"), 0o644))
	_, err = other.Scan(ctx, "docs")
	require.NoError(t, err)
	var bundle bytes.Buffer
	_, err = other.ExportBundle(ctx, "docs", nil, &bundle)
	require.NoError(t, err)

	d := id.DeviceID()
	_, err = f.client.SetPeer(ctx, sync.PeerConfig{Device: d, Folders: []string{"docs"},
		Directions: map[string]sync.Direction{"docs": sync.DirReceive}})
	require.NoError(t, err)
	_, err = f.e.ImportBundle(ctx, "docs", &bundle, d.String())
	require.NoError(t, err)
	return d, "from-peer.txt"
}

// TestFolderRemovePauseRevert: pause and resume show in the folder's
// status, revert puts back what was received and keeps the local version
// in history, remove stops sharing and keeps the files.
func TestFolderRemovePauseRevert(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	dir := t.TempDir()
	_, err := f.client.AddFolder(ctx, NewFolder{ID: "docs", Path: dir, Label: "Documents"})
	require.NoError(t, err)

	res, body := f.do(t, "POST", "/rest/folders/docs/revert", "")
	assert.Equal(t, http.StatusConflict, res.StatusCode, "not receive-only: %s", body)
	assert.Contains(t, errorText(t, body), "receive-only")

	peer, name := receivedFrom(t, f)
	file := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(file, []byte("mine"), 0o644))
	_, err = f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)
	st, err := f.client.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Folders, 1)
	assert.Equal(t, "Documents", st.Folders[0].Label)
	assert.Equal(t, 1, st.Folders[0].NotSent, "one local change not sent")
	var reverted Changes
	require.NoError(t, f.client.Do(ctx, "POST", "/rest/folders/docs/revert", nil, &reverted))
	require.Len(t, reverted.Changes, 1)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "theirs", string(b))
	hist, err := f.client.History(ctx, "docs", name, 0)
	require.NoError(t, err)
	assert.Len(t, hist, 3, "received, local edit, revert: the local version stays in history")

	var fs sync.FolderStatus
	require.NoError(t, f.client.Do(ctx, "POST", "/rest/folders/docs/pause", nil, &fs))
	assert.True(t, fs.Paused)
	var resumed sync.FolderStatus
	require.NoError(t, f.client.Do(ctx, "POST", "/rest/folders/docs/resume", nil, &resumed))
	assert.False(t, resumed.Paused)
	assert.Equal(t, "docs", resumed.ID)

	var ps sync.PeerStatus
	require.NoError(t, f.client.Do(ctx, "POST", "/rest/peers/"+peer.String()+"/pause", nil, &ps))
	assert.True(t, ps.Paused)
	p, _ := f.e.Peer(peer)
	assert.True(t, p.Paused)
	var resumedPeer sync.PeerStatus
	require.NoError(t, f.client.Do(ctx, "POST", "/rest/peers/"+peer.String()+"/resume", nil, &resumedPeer))
	assert.False(t, resumedPeer.Paused)
	assert.Equal(t, peer, resumedPeer.Device)

	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/rest/folders/nope/pause", http.StatusNotFound},
		{"POST", "/rest/folders/nope/revert", http.StatusNotFound},
		{"DELETE", "/rest/folders/nope", http.StatusNotFound},
		{"POST", "/rest/peers/" + f.e.DeviceID().String() + "/pause", http.StatusNotFound},
		{"POST", "/rest/peers/bogus/resume", http.StatusBadRequest},
	} {
		res, body := f.do(t, tt.method, tt.path, "")
		assert.Equal(t, tt.want, res.StatusCode, "%s %s: %s", tt.method, tt.path, body)
		errorText(t, body)
	}

	res, body = f.do(t, "DELETE", "/rest/folders/docs", "")
	require.Equal(t, http.StatusNoContent, res.StatusCode, body)
	assert.Empty(t, f.e.Folders())
	_, err = os.Stat(file)
	assert.NoError(t, err, "the files stay")
	_, err = os.Stat(filepath.Join(dir, ".peersync"))
	assert.NoError(t, err, "the history stays")
	p, _ = f.e.Peer(peer)
	assert.NotContains(t, p.Folders, "docs", "no longer shared with the peer")
}

// TestFilesAndFile: the listing of a directory at the head and at an old
// revision, and a file's bytes as an attachment.
func TestFilesAndFile(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	dir := t.TempDir()
	_, err := f.client.AddFolder(ctx, NewFolder{ID: "docs", Path: dir})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "a <b>.html"), []byte("<script>alert(1)</script>"), 0o644))
	first, err := f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "a <b>.html"), []byte("v2"), 0o644))
	_, err = f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)

	var root []map[string]any
	require.NoError(t, f.client.Do(ctx, "GET", "/rest/folders/docs/files", nil, &root))
	require.Len(t, root, 1)
	assert.Equal(t, "sub", root[0]["name"])
	assert.Equal(t, "dir", root[0]["type"])
	var sub []map[string]any
	require.NoError(t, f.client.Do(ctx, "GET", "/rest/folders/docs/files?dir=sub", nil, &sub))
	require.Len(t, sub, 1)
	assert.Equal(t, "sub/a <b>.html", sub[0]["path"])

	q := url.Values{"path": {"sub/a <b>.html"}}
	res, body := f.do(t, "GET", "/rest/folders/docs/file?"+q.Encode(), "")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Equal(t, "v2", body)
	assert.Equal(t, "application/octet-stream", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Disposition"), "attachment;")
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	q.Set("rev", first[0].Commit.String())
	res, body = f.do(t, "GET", "/rest/folders/docs/file?"+q.Encode(), "")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Equal(t, "<script>alert(1)</script>", body, "the old version, as bytes")

	rc, err := f.client.OpenFile(ctx, "docs", first[0].Commit, "sub/a <b>.html")
	require.NoError(t, err)
	old, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, "<script>alert(1)</script>", string(old))
	entries, err := f.client.Files(ctx, "docs", gitstore.Hash{}, "sub")
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, int64(2), entries[0].Size)
	_, err = f.client.OpenFile(ctx, "docs", gitstore.Hash{}, "missing.txt")
	var se *StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, http.StatusNotFound, se.Code)

	for _, tt := range []struct {
		path string
		want int
	}{
		{"/rest/folders/docs/file?path=missing.txt", http.StatusNotFound},
		{"/rest/folders/docs/file", http.StatusBadRequest},
		{"/rest/folders/docs/file?path=x&rev=nothex", http.StatusBadRequest},
		{"/rest/folders/docs/files?dir=nope", http.StatusNotFound},
		{"/rest/folders/nope/files", http.StatusNotFound},
	} {
		res, body := f.do(t, "GET", tt.path, "")
		assert.Equal(t, tt.want, res.StatusCode, "%s: %s", tt.path, body)
		errorText(t, body)
	}
}

// TestPending: the lists are empty arrays, ignoring is answered, and bad
// device IDs are refused.
func TestPending(t *testing.T) {
	f := newFixture(t, Options{})
	res, body := f.do(t, "GET", "/rest/pending", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.JSONEq(t, `{"devices":[],"folders":[]}`, body)
	stranger, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	res, body = f.do(t, "DELETE", "/rest/pending/devices/"+stranger.DeviceID().String(), "")
	assert.Equal(t, http.StatusNoContent, res.StatusCode, body)
	res, body = f.do(t, "DELETE", "/rest/pending/folders/docs?from="+stranger.DeviceID().String(), "")
	assert.Equal(t, http.StatusNoContent, res.StatusCode, body)
	res, body = f.do(t, "DELETE", "/rest/pending/folders/docs", "")
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, body)
	assert.Contains(t, errorText(t, body), "from=")
	res, body = f.do(t, "DELETE", "/rest/pending/devices/bogus", "")
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, body)
}

// TestScheduleAndLimits: the global window and limits and a peer's are
// set, shown, persisted (a new engine on the home reads them) and cleared.
func TestScheduleAndLimits(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	peer, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	d := peer.DeviceID()
	_, err = f.client.SetPeer(ctx, sync.PeerConfig{Device: d, Name: "desk"})
	require.NoError(t, err)

	var sch Schedule
	require.NoError(t, f.client.Do(ctx, "GET", "/rest/schedule", nil, &sch))
	assert.Nil(t, sch.Window, "always, by default")
	require.Len(t, sch.Peers, 1)
	assert.Nil(t, sch.Peers[0].Window)

	require.NoError(t, f.client.Do(ctx, "PUT", "/rest/schedule",
		map[string]any{"window": map[string]any{"days": []string{"mon", "fri"}, "from": "22:00", "to": "06:00"}}, &sch))
	require.NotNil(t, sch.Window)
	assert.Equal(t, "22:00", sch.Window.From)
	require.NoError(t, f.client.Do(ctx, "PUT", "/rest/peers/"+d.String()+"/schedule",
		map[string]any{"window": map[string]any{"from": "01:00", "to": "02:00"}}, &sch))
	require.NotNil(t, sch.Peers[0].Window)
	assert.Equal(t, "01:00", sch.Peers[0].Window.From)
	assert.Equal(t, "22:00", sch.Window.From, "the global one stays")

	var lim Limits
	require.NoError(t, f.client.Do(ctx, "PUT", "/rest/limits", sync.RateLimit{Up: 1000, Down: 2000}, &lim))
	assert.Equal(t, int64(1000), lim.Up)
	require.NoError(t, f.client.Do(ctx, "PUT", "/rest/peers/"+d.String()+"/limits", sync.RateLimit{Down: 500}, &lim))
	require.Len(t, lim.Peers, 1)
	assert.Equal(t, int64(500), lim.Peers[0].Down)
	assert.Equal(t, int64(2000), lim.Down)

	require.NoError(t, f.client.Do(ctx, "PUT", "/rest/peers/"+d.String()+"/schedule", map[string]any{"window": nil}, &sch))
	assert.Nil(t, sch.Peers[0].Window, "follows the global window again")
	p, _ := f.e.Peer(d)
	assert.Nil(t, p.Schedule)

	stranger, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/rest/schedule", `{"window":{"from":"25:00","to":"06:00"}}`, http.StatusBadRequest},
		{"PUT", "/rest/schedule", `{"window":{"days":["funday"],"from":"01:00","to":"06:00"}}`, http.StatusBadRequest},
		{"PUT", "/rest/limits", `{"up":-1}`, http.StatusBadRequest},
		{"PUT", "/rest/limits", `{"up":"fast"}`, http.StatusBadRequest},
		{"PUT", "/rest/peers/" + stranger.DeviceID().String() + "/limits", `{"up":1}`, http.StatusNotFound},
		{"PUT", "/rest/peers/" + stranger.DeviceID().String() + "/schedule", `{"window":null}`, http.StatusNotFound},
		{"POST", "/rest/sync-now", `{}`, http.StatusServiceUnavailable},
		{"POST", "/rest/sync-now", `{"peer":"bogus"}`, http.StatusBadRequest},
		{"POST", "/rest/sync-now", fmt.Sprintf(`{"peer":%q}`, stranger.DeviceID()), http.StatusNotFound},
	} {
		res, body := f.do(t, tt.method, tt.path, tt.body)
		assert.Equal(t, tt.want, res.StatusCode, "%s %s %s: %s", tt.method, tt.path, tt.body, body)
		errorText(t, body)
	}
	require.NoError(t, f.client.Do(ctx, "GET", "/rest/schedule", nil, &sch))
	assert.Equal(t, "22:00", sch.Window.From, "nothing bad was stored")
	require.NoError(t, f.client.Do(ctx, "PUT", "/rest/schedule", map[string]any{"window": nil}, &sch))
	assert.Nil(t, sch.Window)

	f.run(t)
	res, body := f.do(t, "POST", "/rest/sync-now", fmt.Sprintf(`{"peer":%q}`, d))
	assert.Equal(t, http.StatusAccepted, res.StatusCode, body)
	err = f.client.Do(ctx, "POST", "/rest/sync-now", SyncNowRequest{Folder: "nope"}, nil)
	var se *StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, http.StatusNotFound, se.Code)
}
