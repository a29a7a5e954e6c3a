package gitstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tmpFiles lists the temporary files left in s's pack directory.
func tmpFiles(t *testing.T, s *Store) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(s.Dir(), GitDirName, "objects", "pack", packTmpPrefix+"*"))
	require.NoError(t, err)
	return m
}

// A bundle written into an Incoming in pieces of every size (the header
// split across writes), cut back and written on as a resumed transfer
// does, reads back as written and applies: its pack becomes ours as it
// came, and nothing temporary is left.
func TestIncomingResumeAndApply(t *testing.T) {
	src := newTestStore(t, "a", epoch)
	big := make([]byte, 2<<20)
	rand.Read(big)
	require.NoError(t, os.WriteFile(filepath.Join(src.Dir(), "big.bin"), big, 0o644))
	for i := range 20 {
		writeFile(t, src.Dir(), "d/f"+string(rune('a'+i))+".txt", strings.Repeat("x", 100*i))
	}
	scan(t, src)
	b, _ := bundleOf(t, src)

	dst := newTestStore(t, "b", epoch)
	in, err := dst.NewIncoming()
	require.NoError(t, err)
	defer in.Remove()
	cut := int64(len(b) / 2)
	for off, step := 0, 1; off < len(b); step = step*3 + 1 {
		end := min(len(b), off+step)
		n, err := in.Write(b[off:end])
		require.NoError(t, err)
		require.Equal(t, end-off, n)
		off = end
		if int64(off) > cut && cut > 0 {
			// The connection broke: keep the first part, go on from there.
			require.NoError(t, in.Truncate(cut))
			off, cut = int(cut), 0
		}
	}
	require.Equal(t, int64(len(b)), in.Size())
	got, err := io.ReadAll(io.NewSectionReader(in, 0, in.Size()))
	require.NoError(t, err)
	require.True(t, bytes.Equal(b, got), "ReadAt gives back what was written")

	res, err := dst.ApplyIncoming(context.Background(), in, peerA)
	require.NoError(t, err)
	require.Equal(t, FastForward, res.Kind)
	require.False(t, in.reread, "the read of the pack restarted after the cut and finished")
	in.Remove()
	_, names := packsOf(t, dst)
	require.Equal(t, []string{"pack-" + hex.EncodeToString(b[len(b)-20:])}, names)
	require.Empty(t, tmpFiles(t, dst))
	fsck(t, dst)
	gotBig, err := os.ReadFile(filepath.Join(dst.Dir(), "big.bin"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, gotBig))
}

// A damaged bundle in an Incoming is refused like any bundle: a
// *BundleError, no pack, no ref, no file, and Remove leaves nothing.
func TestIncomingCorruptRefused(t *testing.T) {
	src := newTestStore(t, "a", epoch)
	writeFile(t, src.Dir(), "a.txt", strings.Repeat("some text\n", 100))
	scan(t, src)
	b, _ := bundleOf(t, src)
	b[len(b)-30] ^= 0xff // inside the pack
	refuseIncoming(t, b)

	// A header that never ends is refused as it arrives.
	dst := newTestStore(t, "b", epoch)
	in, err := dst.NewIncoming()
	require.NoError(t, err)
	defer in.Remove()
	_, err = in.Write([]byte("# v2 git bundle\n"))
	require.NoError(t, err)
	_, err = in.Write(bytes.Repeat([]byte("-"), maxHeaderBytes))
	var be *BundleError
	require.True(t, errors.As(err, &be), "got %v", err)
}
