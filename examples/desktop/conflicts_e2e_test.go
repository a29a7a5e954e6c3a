package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/internal/testutil"
	"github.com/peersync/peersync/sync"
)

// apiClient is a client of d's API with d's key.
func (d *uiDevice) apiClient(t *testing.T) *httpapi.Client {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(d.home, "apikey"))
	require.NoError(t, err)
	return &httpapi.Client{BaseURL: d.url, Key: strings.TrimSpace(string(key))}
}

// TestUIKeepThisOne: two real desktop processes write different contents
// into hello.txt before they share the folder, so that the first exchange
// is a real conflict and both hold the same conflict copy. On A's History
// page, the conflict shows both sides with who made them; "Keep this one"
// on the copy's side puts its content at hello.txt and deletes the copy,
// on A and, through the normal sync, on B. (The sharing is set up through
// the API: the pages for that are TestUITwoDevices' subject.)
func TestUIKeepThisOne(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two desktop processes and a browser")
	}
	chromiumPath(t)
	bin := testutil.BuildBinary(t, "./examples/desktop")
	a, b := startUIDevice(t, bin, "alpha"), startUIDevice(t, bin, "beta")
	ctx := context.Background()
	const long = 60 * time.Second
	ca, cb := a.apiClient(t), b.apiClient(t)
	ids := map[*uiDevice]sync.PeerConfig{}
	for d, c := range map[*uiDevice]*httpapi.Client{a: ca, b: cb} {
		require.NoError(t, c.SetName(ctx, d.name))
		writeFile(t, d.folder, "hello.txt", []byte("written on "+d.name+"\n"))
		_, err := c.AddFolder(ctx, httpapi.NewFolder{ID: "docs", Path: d.folder})
		require.NoError(t, err)
		_, err = c.Scan(ctx, "docs", false)
		require.NoError(t, err)
		dev, err := c.Device(ctx)
		require.NoError(t, err)
		ids[d] = sync.PeerConfig{Device: dev.Device, Name: d.name, Addrs: []string{d.addr}, Folders: []string{"docs"}}
	}
	_, err := ca.SetPeer(ctx, ids[b])
	require.NoError(t, err)
	_, err = cb.SetPeer(ctx, ids[a])
	require.NoError(t, err)

	var copyPath string
	waitUntil(t, long, "the same conflict copy on both devices", func() (bool, string) {
		csa, erra := ca.Conflicts(ctx, "docs")
		csb, errb := cb.Conflicts(ctx, "docs")
		if erra != nil || errb != nil || len(csa) != 1 || len(csb) != 1 || csa[0].Copy != csb[0].Copy {
			return false, fmt.Sprintf("A: %v %v; B: %v %v", csa, erra, csb, errb)
		}
		copyPath = csa[0].Copy
		return true, ""
	})
	lost, err := os.ReadFile(filepath.Join(a.folder, copyPath))
	require.NoError(t, err)
	loser, winner := "alpha", "beta"
	if string(lost) == "written on beta\n" {
		loser, winner = winner, loser
	}

	br := newBrowser(t, 1280, 900)
	br.page(t, a.url, "history")
	br.set(t, "#hist-folder", "docs")
	table := fmt.Sprintf(`table[data-copy=%s]`, js(copyPath))
	br.wait(t, "the conflict on A's History page", fmt.Sprintf(`!!document.querySelector(%s) && !document.getElementById('hist-conflicts').hidden`, js(table)), long)
	br.has(t, "the copy's maker", table+` tr[data-keep="copy"]`, loser, 10*time.Second)
	br.has(t, "the copy's path", table+` tr[data-keep="copy"]`, copyPath, 10*time.Second)
	br.has(t, "the original's maker", table+` tr[data-keep="original"]`, winner, 10*time.Second)
	br.has(t, "the original's path", table+` tr[data-keep="original"]`, "hello.txt", 10*time.Second)
	br.screenshot(t, "history-conflicts")
	br.press(t, table+` tr[data-keep="copy"]`, "Keep this one")

	for _, d := range []*uiDevice{a, b} {
		waitFile(t, filepath.Join(d.folder, "hello.txt"), string(lost), long)
		waitFile(t, filepath.Join(d.folder, copyPath), "", long)
	}
	br.wait(t, "no conflict left on the page", `document.getElementById('hist-conflicts').hidden`, long)
	waitUntil(t, long, "no conflict left on B", func() (bool, string) {
		cs, err := cb.Conflicts(ctx, "docs")
		return err == nil && len(cs) == 0, fmt.Sprint(cs, err)
	})
	// Both versions stay in the history: the copy's delete is a commit.
	hist, err := cb.History(ctx, "docs", copyPath, 10)
	require.NoError(t, err)
	require.NotEmpty(t, hist)
	assert.Equal(t, gitstore.ActionDelete, hist[0].Action)
	br.clean(t)
}
