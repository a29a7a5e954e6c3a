package gitstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitRead waits until in's read of its pack as it arrives has read n
// bytes (the read signals each step; the deadline only bounds a failure).
func waitRead(t *testing.T, in *Incoming, n int64) {
	t.Helper()
	p := in.parse
	require.NotNil(t, p, "no read of the pack started")
	got := make(chan struct{})
	go func() {
		defer close(got)
		p.mu.Lock()
		defer p.mu.Unlock()
		for p.read < n && !p.stop && !p.end {
			p.more.Wait()
		}
	}()
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		p.grew(p.avail) // wake the waiter so that it ends
		t.Fatalf("the pack was not read as it arrived: %d of %d bytes", p.read, n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	require.GreaterOrEqual(t, p.read, n)
}

// writeIncoming writes b into a new Incoming of dst in pieces of 64 KiB.
// Once half and once all of the pack is in, it waits until the pack has
// been read that far: the read follows the transfer, before the end.
func writeIncoming(t *testing.T, dst *Store, b []byte) *Incoming {
	t.Helper()
	in, err := dst.NewIncoming()
	require.NoError(t, err)
	t.Cleanup(in.Remove)
	hdr := bytes.Index(b, []byte("\n\n")) + 2
	half := hdr + (len(b)-hdr)/2
	for off := 0; off < len(b); {
		end := min(len(b), off+64<<10)
		if off < half && end > half {
			end = half
		}
		_, err := in.Write(b[off:end])
		require.NoError(t, err)
		off = end
		if off == half {
			waitRead(t, in, int64(half-hdr))
		}
	}
	waitRead(t, in, int64(len(b)-hdr))
	return in
}

// A bundle's pack is read (objects named, deltas resolved) while it is
// written into an Incoming, and ApplyIncoming uses that read instead of
// reading the pack again: for a first sync whose pack becomes ours as it
// came, and for the thin incremental bundles that follow (deltas against
// trees we have). What lands is checked with the git CLI.
func TestIncomingReadAsItArrives(t *testing.T) {
	ctx := context.Background()
	src := newTestStore(t, "a", epoch)
	big := make([]byte, 3<<20)
	rand.Read(big)
	require.NoError(t, os.WriteFile(filepath.Join(src.Dir(), "big.bin"), big, 0o644))
	for i := range 200 {
		writeFile(t, src.Dir(), fmt.Sprintf("d%d/f%03d.txt", i%7, i), strings.Repeat(fmt.Sprintf("line %d\n", i), 20+i))
	}
	scan(t, src)
	b, _ := bundleOf(t, src)

	dst := newTestStore(t, "b", epoch)
	in := writeIncoming(t, dst, b)
	res, err := dst.ApplyIncoming(ctx, in, peerA)
	require.NoError(t, err)
	require.Equal(t, FastForward, res.Kind)
	require.False(t, in.reread, "the pack was read again after the transfer")
	_, names := packsOf(t, dst)
	require.Len(t, names, 1, "the received pack became ours")
	require.Empty(t, tmpFiles(t, dst))
	fsck(t, dst)
	require.Equal(t, folderFiles(t, src.Dir()), folderFiles(t, dst.Dir()))

	// Incremental bundles: a modified file, a new one, a deleted one.
	for round := range 3 {
		from := head(t, src)
		writeFile(t, src.Dir(), fmt.Sprintf("d1/f%03d.txt", round), fmt.Sprintf("changed %d\n", round))
		writeFile(t, src.Dir(), fmt.Sprintf("new/n%d.txt", round), "new\n")
		require.NoError(t, os.Remove(filepath.Join(src.Dir(), fmt.Sprintf("d2/f%03d.txt", 100+round*7))))
		scan(t, src)
		b, _ := bundleOf(t, src, from)
		in := writeIncoming(t, dst, b)
		res, err := dst.ApplyIncoming(ctx, in, peerA)
		require.NoError(t, err, "round %d", round)
		require.Equal(t, FastForward, res.Kind)
		require.False(t, in.reread, "round %d: the pack was read again", round)
		in.Remove()
		require.Equal(t, head(t, src), head(t, dst))
		require.Equal(t, folderFiles(t, src.Dir()), folderFiles(t, dst.Dir()))
	}
	fsck(t, dst)
	require.Equal(t, gitStore(t, src, "log", "--format=%H %s"), gitStore(t, dst, "log", "--format=%H %s"))
	require.Empty(t, tmpFiles(t, dst))
}

// A pack damaged in its middle fails the read as it arrives; ApplyIncoming
// then reads it again itself and refuses it with the *BundleError any
// bundle gets: nothing is written, nothing temporary is left.
func TestIncomingDamagedReadAgainAndRefused(t *testing.T) {
	src := newTestStore(t, "a", epoch)
	for i := range 50 {
		writeFile(t, src.Dir(), fmt.Sprintf("f%02d.txt", i), strings.Repeat("some text\n", 50+i))
	}
	scan(t, src)
	b, _ := bundleOf(t, src)
	b[len(b)/2] ^= 0xff

	refuseIncoming(t, b)
}

// refuseIncoming writes the damaged bundle b into an Incoming of a new
// store in one piece and checks that ApplyIncoming refuses it with a
// *BundleError after reading the file again, and leaves nothing: no pack,
// no ref, no file, nothing temporary in the folder or among the packs
// (the early fsync of a big pack has returned).
func refuseIncoming(t *testing.T, b []byte) {
	t.Helper()
	dst := newTestStore(t, "b", epoch)
	in, err := dst.NewIncoming()
	require.NoError(t, err)
	_, err = in.Write(b)
	require.NoError(t, err)
	_, err = dst.ApplyIncoming(context.Background(), in, peerA)
	var be *BundleError
	require.True(t, errors.As(err, &be), "got %v", err)
	require.True(t, in.reread, "the failed read was not replaced by a read of the file")
	// A pack big enough was fsynced early all the same; that was waited for.
	require.Equal(t, in.packLen >= earlySyncMin, earlySynced(t, in))
	in.Remove()
	require.Empty(t, folderTmpFiles(t, dst))
	require.Empty(t, tmpFiles(t, dst))
	_, names := packsOf(t, dst)
	require.Empty(t, names)
	require.True(t, head(t, dst).IsZero())
	require.Empty(t, folderFiles(t, dst.Dir()))
}

// A transfer that stops half way (the Incoming removed, as a fetch that
// fails for good does) ends the read: nothing is left, and goleak
// (TestMain) sees no goroutine waiting for bytes that never come.
func TestIncomingRemovedMidway(t *testing.T) {
	src := newTestStore(t, "a", epoch)
	big := make([]byte, 1<<20)
	rand.Read(big)
	require.NoError(t, os.WriteFile(filepath.Join(src.Dir(), "big.bin"), big, 0o644))
	scan(t, src)
	b, _ := bundleOf(t, src)
	dst := newTestStore(t, "b", epoch)
	in, err := dst.NewIncoming()
	require.NoError(t, err)
	_, err = in.Write(b[:len(b)/2])
	require.NoError(t, err)
	hdr := bytes.Index(b, []byte("\n\n")) + 2
	waitRead(t, in, int64(len(b)/2-hdr))
	in.Remove()
	require.Nil(t, in.parse)
	require.Empty(t, tmpFiles(t, dst))
}

// folderTmpFiles lists our temporary files in the folder of s.
func folderTmpFiles(t *testing.T, s *Store) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(s.Dir(), tmpPrefix+"*"))
	require.NoError(t, err)
	return m
}

// bigBundle returns a first-sync bundle of a folder holding a file of
// prewriteMin + 1 MiB (random, with 256 KiB of zeros in its middle) and a
// few small files, and that file's content.
func bigBundle(t *testing.T) ([]byte, []byte) {
	src := newTestStore(t, "a", epoch)
	big := make([]byte, prewriteMin+1<<20)
	rand.Read(big)
	clear(big[8<<20 : 8<<20+256<<10])
	require.NoError(t, os.WriteFile(filepath.Join(src.Dir(), "big.bin"), big, 0o644))
	for i := range 20 {
		writeFile(t, src.Dir(), fmt.Sprintf("d/f%02d.txt", i), strings.Repeat("x", 100+i))
	}
	scan(t, src)
	b, _ := bundleOf(t, src)
	return b, big
}

// A big file in a bundle written into an Incoming is written into the
// folder as it arrives (a temporary file of ours, there before
// ApplyIncoming is called), and the checkout puts that very file in place
// (the same inode) instead of copying the blob out of the pack again: its
// content is the blob's, the git CLI agrees, and nothing temporary is left.
func TestIncomingBigFileWrittenAsItArrives(t *testing.T) {
	b, big := bigBundle(t)
	dst := newTestStore(t, "b", epoch)
	in := writeIncoming(t, dst, b)
	pre := folderTmpFiles(t, dst)
	require.Len(t, pre, 1, "the big file is written into the folder as it arrives")
	fi, err := os.Stat(pre[0]) // its last bytes may still be on their way in
	require.NoError(t, err)

	res, err := dst.ApplyIncoming(context.Background(), in, peerA)
	require.NoError(t, err)
	require.Equal(t, FastForward, res.Kind)
	require.False(t, in.reread)
	got, err := os.Stat(filepath.Join(dst.Dir(), "big.bin"))
	require.NoError(t, err)
	require.True(t, os.SameFile(fi, got), "the checkout copied the file again instead of taking the one written as it arrived")
	gotBig, err := os.ReadFile(filepath.Join(dst.Dir(), "big.bin"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, gotBig))
	require.Equal(t, strings.TrimSpace(gitStore(t, dst, "rev-parse", "HEAD:big.bin")),
		strings.TrimSpace(gitStore(t, dst, "hash-object", filepath.Join(dst.Dir(), "big.bin"))))
	require.Empty(t, folderTmpFiles(t, dst))
	require.Empty(t, tmpFiles(t, dst))
	fsck(t, dst)
}

// A bundle whose pack fails its checksum after the big file streamed by is
// refused as any damaged bundle, and the file written as it arrived is
// removed with the rest: the folder stays empty.
func TestIncomingBigFileOfRefusedBundleRemoved(t *testing.T) {
	b, _ := bigBundle(t)
	b[len(b)-1] ^= 0xff // the pack's trailer
	refuseIncoming(t, b)
}

// What a kill -9 during a transfer leaves of a big file written as it
// arrived is removed when the store is opened again; a user's files, of
// other names or in other directories, are not.
func TestArrivingFileOfCrashRemovedAtOpen(t *testing.T) {
	s := newTestStore(t, "b", epoch)
	dir := s.Dir()
	require.NoError(t, s.Close())
	left := filepath.Join(dir, arrivingPrefix+"123456")
	writeFile(t, dir, filepath.Base(left), "half of a big file")
	keep := []string{"arriving-notes.txt", "sub/" + arrivingPrefix + "1", "notes.txt"}
	for _, p := range keep {
		writeFile(t, dir, p, "the user's\n")
	}
	s2, err := Open(Config{Dir: dir, AuthorName: "b", AuthorEmail: "b@peersync"})
	require.NoError(t, err)
	defer s2.Close()
	_, err = os.Lstat(left)
	require.True(t, os.IsNotExist(err), "left by the crash, still there: %v", err)
	for _, p := range keep {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		require.NoError(t, err, p)
		require.Equal(t, "the user's\n", string(got))
	}
}
