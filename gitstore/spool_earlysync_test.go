package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/require"
)

// earlySynced reports whether the apply of in started the early fsync of
// its pack and that fsync returned without error (read after ApplyIncoming
// returned, which waits for it).
func earlySynced(t *testing.T, in *Incoming) bool {
	t.Helper()
	if in.early == nil {
		return false
	}
	select {
	case <-in.early.done:
	default:
		t.Fatal("ApplyIncoming returned before the early fsync of its pack")
	}
	require.NoError(t, in.early.err)
	return true
}

// A first sync's pack (here 17 MiB) is fsynced from the moment
// ApplyIncoming is called, beside the read and the checks, and the apply
// waits for that fsync: the pack still becomes ours as it came, complete
// and correct for the git CLI. A small bundle (an edit's) is not fsynced
// early: its fsync is short.
func TestIncomingPackSyncedAtOnce(t *testing.T) {
	b, _ := bigBundle(t)
	dst := newTestStore(t, "b", epoch)
	in := writeIncoming(t, dst, b)
	require.GreaterOrEqual(t, in.packLen, int64(earlySyncMin))
	res, err := dst.ApplyIncoming(context.Background(), in, peerA)
	require.NoError(t, err)
	require.Equal(t, FastForward, res.Kind)
	require.True(t, earlySynced(t, in), "the pack was not fsynced as the apply began")
	_, names := packsOf(t, dst)
	require.Len(t, names, 1, "the received pack became ours")
	require.Empty(t, tmpFiles(t, dst))
	fsck(t, dst)
	gitStore(t, dst, "verify-pack", filepath.Join(dst.Dir(), GitDirName, "objects", "pack", names[0]+".idx"))

	src := newTestStore(t, "a", epoch)
	for i := range 20 {
		writeFile(t, src.Dir(), fmt.Sprintf("f%02d.txt", i), "small\n")
	}
	scan(t, src)
	small, _ := bundleOf(t, src)
	dst2 := newTestStore(t, "c", epoch)
	in2 := writeIncoming(t, dst2, small)
	_, err = dst2.ApplyIncoming(context.Background(), in2, peerA)
	require.NoError(t, err)
	require.False(t, earlySynced(t, in2), "a small pack was fsynced early")
	fsck(t, dst2)
}

// A big file written into the folder as it arrived is fsynced as soon as
// it is complete, by a goroutine of its own; one cut short is not kept
// and not fsynced; drop waits for those fsyncs and removes the files.
func TestPrewriteSyncedWhenComplete(t *testing.T) {
	dir := t.TempDir()
	pw := &prewrite{dir: dir, minFree: -1}
	content := bytes.Repeat([]byte("0123456789abcdef"), prewriteMin/16)
	h := plumbing.ComputeHash(plumbing.BlobObject, content)
	w := pw.start(plumbing.BlobObject, int64(len(content)))
	require.NotNil(t, w)
	_, err := w.Write(content)
	require.NoError(t, err)
	pw.end(h, true)
	require.True(t, pw.has(h))
	require.Len(t, pw.syncs, 1, "a complete file was not fsynced at once")

	w = pw.start(plumbing.BlobObject, int64(len(content)))
	require.NotNil(t, w)
	_, err = w.Write(content[:1<<20])
	require.NoError(t, err)
	pw.end(plumbing.ZeroHash, false) // cut short
	require.Len(t, pw.syncs, 1, "a file cut short was fsynced")

	e := pw.syncs[0]
	name := pw.files[h]
	got, err := os.ReadFile(name)
	require.NoError(t, err)
	require.True(t, bytes.Equal(content, got))
	pw.drop()
	select {
	case <-e.done:
	default:
		t.Fatal("drop returned before the early fsync")
	}
	require.NoError(t, e.err)
	left, err := filepath.Glob(filepath.Join(dir, arrivingPrefix+"*"))
	require.NoError(t, err)
	require.Empty(t, left)
}
