package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/sync"
)

// A real conflict (another store's edit of the same file, imported as a
// bundle), listed and resolved through the routes; the kept content ends
// at the original path, the copy is gone, and bad requests change nothing.
func TestConflictRoutes(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	dir := t.TempDir()
	_, err := f.client.AddFolder(ctx, NewFolder{ID: "docs", Path: dir})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.txt"), []byte("base\n"), 0o644))
	_, err = f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)

	// The other device: our history, then its own edit, a minute later.
	var whole bytes.Buffer
	_, err = f.e.ExportBundle(ctx, "docs", nil, &whole)
	require.NoError(t, err)
	later := time.Now().Add(time.Minute)
	other, err := gitstore.Open(gitstore.Config{Dir: t.TempDir(), Create: true, AuthorName: "other",
		AuthorEmail: "OTHERDE-VICE@peersync", Now: func() time.Time { return later }})
	require.NoError(t, err)
	defer other.Close()
	_, err = other.ApplyBundle(ctx, &whole, sync.ImportPeer)
	require.NoError(t, err)
	base, err := other.Head()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(other.Dir(), "f.txt"), []byte("theirs\n"), 0o644))
	_, err = other.Scan(ctx)
	require.NoError(t, err)
	var inc bytes.Buffer
	_, err = other.WriteBundle(ctx, &inc, []gitstore.Hash{base})
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.txt"), []byte("ours\n"), 0o644))
	_, err = f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)
	res, err := f.e.ImportBundle(ctx, "docs", &inc, sync.ImportPeer)
	require.NoError(t, err)
	require.Len(t, res.Conflicts, 1, "theirs is newer: ours becomes the copy")

	r, body := f.do(t, "GET", "/rest/folders/docs/conflicts", "")
	require.Equal(t, http.StatusOK, r.StatusCode, body)
	var cs Conflicts
	require.NoError(t, json.Unmarshal([]byte(body), &cs))
	require.Len(t, cs.Conflicts, 1)
	c := cs.Conflicts[0]
	assert.Equal(t, res.Conflicts[0], c.Copy)
	assert.Equal(t, "f.txt", c.Original)
	assert.Contains(t, c.OriginalSide.Change.Author, "OTHERDE-VICE@peersync")
	assert.Equal(t, sync.ImportPeer, c.OriginalSide.Change.From)
	assert.Contains(t, c.CopySide.Change.Author, f.e.DeviceID().String())
	assert.Equal(t, "", c.CopySide.Change.From)

	for _, bad := range []string{`{"copy":"f.txt","keep":"both"}`, `{"keep":"copy"}`, `{"copy":1}`} {
		r, body = f.do(t, "POST", "/rest/folders/docs/conflicts/resolve", bad)
		assert.Equal(t, http.StatusBadRequest, r.StatusCode, bad)
		errorText(t, body)
	}
	r, body = f.do(t, "POST", "/rest/folders/docs/conflicts/resolve", `{"copy":"f.txt","keep":"copy"}`)
	assert.Equal(t, http.StatusNotFound, r.StatusCode, "not a copy: %s", body)
	r, _ = f.do(t, "POST", "/rest/folders/nope/conflicts/resolve", `{"copy":"`+c.Copy+`","keep":"copy"}`)
	assert.Equal(t, http.StatusNotFound, r.StatusCode)
	r, _ = f.do(t, "GET", "/rest/folders/nope/conflicts", "")
	assert.Equal(t, http.StatusNotFound, r.StatusCode)

	r, body = f.do(t, "POST", "/rest/folders/docs/conflicts/resolve", `{"copy":"`+c.Copy+`","keep":"copy"}`)
	require.Equal(t, http.StatusOK, r.StatusCode, body)
	var out Changes
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.Len(t, out.Changes, 2)
	assert.Equal(t, gitstore.ActionModify, out.Changes[0].Action)
	assert.Equal(t, gitstore.ActionDelete, out.Changes[1].Action)
	got, err := os.ReadFile(filepath.Join(dir, "f.txt"))
	require.NoError(t, err)
	assert.Equal(t, "ours\n", string(got))
	assert.NoFileExists(t, filepath.Join(dir, c.Copy))

	r, body = f.do(t, "GET", "/rest/folders/docs/conflicts", "")
	require.Equal(t, http.StatusOK, r.StatusCode)
	assert.JSONEq(t, `{"conflicts":[]}`, body)
	r, _ = f.do(t, "POST", "/rest/folders/docs/conflicts/resolve", `{"copy":"`+c.Copy+`","keep":"copy"}`)
	assert.Equal(t, http.StatusNotFound, r.StatusCode, "resolved already")
}
