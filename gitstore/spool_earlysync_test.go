package gitstore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

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
