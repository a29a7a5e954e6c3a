package gitstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// A deletion seen in batches, each under the mass-delete threshold, is
// refused by the batch that takes the deletions of the last minute over it;
// that batch commits nothing. A confirmation lets it through, and the
// window forgets deletions older than a minute.
func TestMassDeleteGuardWindow(t *testing.T) {
	const n = 400 // threshold: more than 200 (share 0.5) and more than 100 files
	batch := func(from, to int) []string {
		var paths []string
		for i := from; i < to; i++ {
			paths = append(paths, fmt.Sprintf("d%d/f%03d.txt", i%4, i))
		}
		return paths
	}
	remove := func(t *testing.T, s *Store, paths []string) {
		t.Helper()
		for _, p := range paths {
			require.NoError(t, os.Remove(filepath.Join(s.Dir(), filepath.FromSlash(p))))
		}
	}
	setup := func(t *testing.T) (*Store, *testutil.Clock) {
		clk := testutil.NewClock(epoch) // still until advanced: a scan's commits share one time
		s := newTestStore(t, "dev", epoch, func(c *Config) { c.Now = clk.Now })
		for _, p := range batch(0, n) {
			writeFile(t, s.Dir(), p, p)
		}
		require.Len(t, scan(t, s), n)
		return s, clk
	}
	ctx := context.Background()
	scanners := map[string]func(s *Store, paths []string) ([]Change, error){
		"Scan":      func(s *Store, _ []string) ([]Change, error) { return s.Scan(ctx) },
		"scanPaths": func(s *Store, paths []string) ([]Change, error) { return s.scanPaths(ctx, paths) },
	}
	for name, scanFn := range scanners {
		t.Run(name, func(t *testing.T) {
			s, _ := setup(t)
			for i := range 2 {
				paths := batch(80*i, 80*(i+1))
				remove(t, s, paths)
				ch, err := scanFn(s, paths)
				require.NoError(t, err, "batch %d: %d of %d in the window", i, 80*(i+1), n)
				require.Len(t, ch, 80)
			}
			before := head(t, s)
			third := batch(160, 240)
			remove(t, s, third)
			writeFile(t, s.Dir(), "d0/new.txt", "new")
			ch, err := scanFn(s, append(third, "d0/new.txt"))
			var me *MassDeleteError
			require.ErrorAs(t, err, &me)
			assert.Equal(t, MassDeleteError{Deleted: 240, Total: n}, *me)
			assert.Empty(t, ch)
			assert.Equal(t, before, head(t, s), "nothing of the batch committed")
			assert.Len(t, tracked(t, s), n-160)

			// Confirmed: the batch goes through, and the deletions the user
			// confirmed no longer count.
			s.AllowMassDeleteOnce()
			ch, err = scanFn(s, append(third, "d0/new.txt"))
			require.NoError(t, err)
			assert.Len(t, ch, 81)
			assert.Len(t, tracked(t, s), n-240+1)
			fourth := batch(240, 300)
			remove(t, s, fourth)
			ch, err = scanFn(s, fourth)
			require.NoError(t, err, "60 of 161: under the threshold")
			assert.Len(t, ch, 60)
			fsck(t, s)
		})
	}

	t.Run("window expiry", func(t *testing.T) {
		s, clk := setup(t)
		for i := range 2 {
			remove(t, s, batch(80*i, 80*(i+1)))
			require.Len(t, scan(t, s), 80)
		}
		clk.Advance(30 * time.Second)
		remove(t, s, batch(160, 240))
		_, err := s.Scan(ctx)
		require.ErrorIs(t, err, ErrMassDelete, "still within the minute")

		clk.Advance(time.Minute)
		ch, err := s.Scan(ctx)
		require.NoError(t, err, "the first batches left the window")
		assert.Len(t, ch, 80)

		// The window now holds the 80 just committed, against 240 files.
		remove(t, s, batch(240, 300))
		_, err = s.Scan(ctx)
		var me *MassDeleteError
		require.ErrorAs(t, err, &me)
		assert.Equal(t, MassDeleteError{Deleted: 140, Total: 240}, *me)
	})

	t.Run("peer deletions do not count", func(t *testing.T) {
		s, _ := setup(t)
		remove(t, s, batch(0, 80))
		require.Len(t, scan(t, s), 80)
		// A bundle deleting 100 more (of 320): under the threshold alone.
		b := newTestStore(t, "peer", epoch.Add(time.Hour), func(c *Config) { c.AllowMassDelete = true })
		bun, _ := bundleOf(t, s)
		apply(t, b, bun, peerA)
		remove(t, b, batch(80, 180))
		require.Len(t, scan(t, b), 100)
		bun, _ = bundleOf(t, b, head(t, s))
		res := apply(t, s, bun, peerB)
		assert.Equal(t, FastForward, res.Kind)
		// Another local batch of 80: 160 local deletions in the window, of 400.
		remove(t, s, batch(180, 260))
		ch, err := s.Scan(ctx)
		require.NoError(t, err)
		assert.Len(t, ch, 80)
	})
}

// TestRefusedScanForgetsUnstoredHashes: a scan refused by the mass-delete
// guard has hashed a new small file (queued to be written loose, and
// dropped with the refusal). The stat cache must not keep that hash: the
// confirmed scan would take it from the cache, not store the blob, and
// commit a tree naming a blob that does not exist.
func TestRefusedScanForgetsUnstoredHashes(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	for i := range 200 {
		writeFile(t, s.Dir(), fmt.Sprintf("f%03d.txt", i), fmt.Sprintf("file %d", i))
	}
	require.Len(t, scan(t, s), 200)
	for i := range 150 {
		require.NoError(t, os.Remove(filepath.Join(s.Dir(), fmt.Sprintf("f%03d.txt", i))))
	}
	writeFile(t, s.Dir(), "new.txt", "brand new content")
	old := time.Now().Add(-time.Minute) // not racy: the refused scan caches it
	require.NoError(t, os.Chtimes(filepath.Join(s.Dir(), "new.txt"), old, old))
	_, err := s.Scan(context.Background())
	require.ErrorIs(t, err, ErrMassDelete)

	s.AllowMassDeleteOnce()
	require.Len(t, scan(t, s), 151)
	fsck(t, s)
	assert.Equal(t, "brand new content", gitStore(t, s, "show", "main:new.txt"))
}
