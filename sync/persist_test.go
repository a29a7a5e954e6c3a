package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	gosync "sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// TestHomeDirDocuments: the file store creates the state directory
// private, saves each document as a private JSON file with nothing else
// left beside it, reads it back, leaves the defaults for a missing one,
// refuses a corrupt one by name without touching it, and holds the home
// lock until closed (a shared opener takes none).
func TestHomeDirDocuments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	h, err := openHome(dir, false)
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	c := &config{Version: 1, Name: "laptop", Folders: []FolderConfig{{ID: "docs", Path: "/srv/docs", Label: "Docs"}}}
	require.NoError(t, h.save(docConfig, c))
	fi, err = os.Stat(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	var onDisk config
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &onDisk))
	assert.Equal(t, "laptop", onDisk.Name)

	got := &config{}
	require.NoError(t, h.load(docConfig, got))
	assert.Equal(t, c.Name, got.Name)
	assert.Equal(t, c.Folders, got.Folders)

	tab := &table{Version: 7}
	require.NoError(t, h.load(docTable, tab), "a missing document is no error")
	assert.Equal(t, 7, tab.Version, "and leaves the defaults")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"config.json", lockFile}, names, "no temporary file left")

	corrupt := []byte(`{"version": 1, "known": {`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "table.json"), corrupt, 0o600))
	err = h.load(docTable, &table{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "table.json"))
	assert.Contains(t, err.Error(), "corrupt")
	raw, err = os.ReadFile(filepath.Join(dir, "table.json"))
	require.NoError(t, err)
	assert.Equal(t, corrupt, raw, "a corrupt document is left as it was")

	_, err = openHome(dir, false)
	var inUse *HomeInUseError
	require.ErrorAs(t, err, &inUse, "the lock is held until close")
	shared, err := openHome(dir, true)
	require.NoError(t, err)
	require.NoError(t, shared.load(docConfig, &config{}))
	require.NoError(t, shared.close())
	require.NoError(t, h.close())
	h2, err := openHome(dir, false)
	require.NoError(t, err, "closed: the home is free")
	require.NoError(t, h2.close())
}

// failingState is the real file store with saves of the documents in
// fail refused as by a full disk.
type failingState struct {
	stateStore
	mu   gosync.Mutex
	fail map[stateDoc]bool
}

func (f *failingState) set(doc stateDoc, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[doc] = fail
}

func (f *failingState) save(doc stateDoc, v any) error {
	f.mu.Lock()
	fail := f.fail[doc]
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("sync: save %s: %w", doc, syscall.ENOSPC)
	}
	return f.stateStore.save(doc, v)
}

// newFailingEngine returns an Engine on a fresh home whose saves fail on
// demand.
func newFailingEngine(t *testing.T, home string) (*Engine, *failingState) {
	t.Helper()
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	fs := &failingState{fail: map[stateDoc]bool{}}
	e, err := New(Config{Home: home, Identity: id, test: &testHooks{state: func(s stateStore) stateStore {
		fs.stateStore = s
		return fs
	}}})
	require.NoError(t, err)
	return e, fs
}

// TestFailedSaveLosesNothing: when config.json cannot be written (a full
// disk), a change is refused with that error and neither the running
// engine nor the file takes it; once the disk has room the same change
// lands. A sync table that cannot be written stays to be written, and is
// by the next flush, and read back by the next engine.
func TestFailedSaveLosesNothing(t *testing.T) {
	home := t.TempDir()
	e, fs := newFailingEngine(t, home)
	require.NoError(t, e.SetName("before"))

	fs.set(docConfig, true)
	err := e.SetName("after")
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.Equal(t, "before", e.Name(), "the engine keeps its configuration")
	err = e.AddFolder(context.Background(), FolderConfig{ID: "docs", Path: t.TempDir()})
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.Empty(t, e.Status().Folders)
	var onDisk config
	raw, err := os.ReadFile(filepath.Join(home, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &onDisk))
	assert.Equal(t, "before", onDisk.Name, "the file keeps the last saved configuration")
	assert.Empty(t, onDisk.Folders)

	fs.set(docConfig, false)
	require.NoError(t, e.SetName("after"))
	assert.Equal(t, "after", e.Name())

	peer := crypto.DeviceID{1, 2, 3}
	rev := gitstore.Hash{0xab, 0xcd}
	fs.set(docTable, true)
	e.setKnown(peer, "docs", rev)
	e.flushTable()
	_, err = os.Stat(filepath.Join(home, "table.json"))
	require.True(t, errors.Is(err, os.ErrNotExist), "nothing written: %v", err)
	e.mu.Lock()
	assert.True(t, e.tab.dirty, "still to be written")
	e.mu.Unlock()

	fs.set(docTable, false)
	e.flushTable()
	require.NoError(t, e.Close())
	e2, err := New(Config{Home: home, Identity: e.cfg.Identity})
	require.NoError(t, err)
	defer e2.Close()
	assert.Equal(t, "after", e2.Name())
	assert.Equal(t, rev, e2.tab.Known[peer]["docs"])
}

// TestTableWritesLandInOrder: many announcements recorded and flushed at
// once from many goroutines; the file then holds every one of them
// without a further flush (an older snapshot written after a newer one
// would lose the newer entries while the table counts as written).
func TestTableWritesLandInOrder(t *testing.T) {
	home := t.TempDir()
	e, _ := newFailingEngine(t, home)
	defer e.Close()
	const n = 24
	var wg gosync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.setKnown(crypto.DeviceID{byte(i + 1)}, "docs", gitstore.Hash{byte(i + 1)})
			e.flushTable()
		}()
	}
	wg.Wait()
	var onDisk table
	raw, err := os.ReadFile(filepath.Join(home, "table.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &onDisk))
	require.Len(t, onDisk.Known, n)
	for i := range n {
		assert.Equal(t, gitstore.Hash{byte(i + 1)}, onDisk.Known[crypto.DeviceID{byte(i + 1)}]["docs"])
	}
}

// TestTableReadsOldSeenMap: a table.json written before the unused
// "seen" map was dropped (one per-peer map beside "known") still loads
// with every known revision, and the next write leaves "seen" out.
func TestTableReadsOldSeenMap(t *testing.T) {
	home := t.TempDir()
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	peer := crypto.DeviceID{7, 7, 7}
	rev := gitstore.Hash{0x12, 0x34}
	peerKey, err := peer.MarshalText()
	require.NoError(t, err)
	old := map[string]any{
		"version": 1,
		"known":   map[string]map[string]gitstore.Hash{string(peerKey): {"docs": rev}},
		"seen":    map[string]string{string(peerKey): "2026-12-01T10:00:00Z"},
	}
	raw, err := json.Marshal(old)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(home, "table.json"), raw, 0o600))

	e, err := New(Config{Home: home, Identity: id})
	require.NoError(t, err)
	assert.Equal(t, rev, e.tab.Known[peer]["docs"], "old file's known revision read")
	e.setKnown(peer, "photos", gitstore.Hash{0x56})
	e.flushTable()
	require.NoError(t, e.Close())

	raw, err = os.ReadFile(filepath.Join(home, "table.json"))
	require.NoError(t, err)
	var onDisk map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &onDisk))
	assert.NotContains(t, onDisk, "seen", "the unused map is not written again")
	var tab table
	require.NoError(t, json.Unmarshal(raw, &tab))
	assert.Equal(t, rev, tab.Known[peer]["docs"])
	assert.Equal(t, gitstore.Hash{0x56}, tab.Known[peer]["photos"])
}
