package gitstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storeFiles counts the loose objects and packs of s.
func storeFiles(t testing.TB, s *Store) (loose, packs int) {
	t.Helper()
	objDir := filepath.Join(s.Dir(), GitDirName, "objects")
	hs, err := listLoose(objDir)
	require.NoError(t, err)
	ents, err := os.ReadDir(filepath.Join(objDir, "pack"))
	require.NoError(t, err)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".pack") && strings.HasPrefix(e.Name(), "pack-") {
			packs++
		}
	}
	return len(hs), packs
}

// maintainForced consolidates whatever the thresholds say.
func maintainForced(t testing.TB, s *Store) (MaintainResult, error) {
	t.Helper()
	return s.maintain(context.Background(), maintainForce)
}

// editedStore returns a store with one big pack, small packs from applied
// bundles and loose objects from single-file scans.
func editedStore(t *testing.T) *Store {
	t.Helper()
	s := newTestStore(t, "dev", epoch)
	addFiles(t, s, "big", "a", 0, 60)
	scan(t, s)
	peer := newTestStore(t, "peer", epoch)
	b, _ := bundleOf(t, s)
	apply(t, peer, b, peerA)
	for i := 0; i < 30; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("big/a-with-a-long-name-%04d", i%7), fmt.Sprint("edit ", i))
		scan(t, s) // a few loose objects
		if i%6 == 5 {
			writeFile(t, peer.Dir(), fmt.Sprintf("p/f%d", i), fmt.Sprint("peer ", i))
			scan(t, peer)
			pb, _ := bundleOf(t, peer, head(t, s))
			apply(t, s, pb, peerA) // a small pack, and a merge (loose)
			sb, _ := bundleOf(t, s, head(t, peer))
			apply(t, peer, sb, peerB)
		}
	}
	return s
}

// Loose objects and small packs become one pack; history, bundles and
// scans see the same store, and git fsck finds it sound.
func TestMaintainConsolidates(t *testing.T) {
	s := editedStore(t)
	ctx := context.Background()
	loose, packs := storeFiles(t, s)
	require.Greater(t, loose, 50)
	require.Greater(t, packs, 3)
	histBefore, err := s.History(ctx, "", 0)
	require.NoError(t, err)
	fullBefore, _ := bundleOf(t, s)

	res, err := s.Maintain(ctx)
	require.NoError(t, err)
	assert.False(t, res.Done, "under the thresholds nothing is done")

	res, err = maintainForced(t, s)
	require.NoError(t, err)
	assert.True(t, res.Done)
	assert.Equal(t, loose, res.Loose)
	l2, p2 := storeFiles(t, s)
	assert.Zero(t, l2)
	assert.LessOrEqual(t, p2, 2, "the geometric rule may keep the first big pack")
	assert.Less(t, p2, packs)

	fsck(t, s)
	histAfter, err := s.History(ctx, "", 0)
	require.NoError(t, err)
	assert.Equal(t, histBefore, histAfter)
	fullAfter, _ := bundleOf(t, s)
	assert.Equal(t, bundleObjects(t, s, fullBefore), bundleObjects(t, s, fullAfter))
	fetchInto(t, s, fullAfter)
	ch, err := s.Scan(ctx)
	require.NoError(t, err)
	assert.Empty(t, ch)
	writeFile(t, s.Dir(), "after", "x")
	scan(t, s)
	fsck(t, s)
}

// A process killed after the new pack is in place, or while the old packs
// are being removed, has lost nothing: every object reads, fsck is clean,
// and the next maintenance finishes the job.
func TestMaintainInterrupted(t *testing.T) {
	for _, step := range []string{"written", "removing"} {
		t.Run(step, func(t *testing.T) {
			s := editedStore(t)
			ctx := context.Background()
			histBefore, err := s.History(ctx, "", 0)
			require.NoError(t, err)
			kill := errors.New("killed")
			maintainStep = func(at string) error {
				if at == step {
					return kill
				}
				return nil
			}
			_, err = maintainForced(t, s)
			maintainStep = func(string) error { return nil }
			require.ErrorIs(t, err, kill)
			dir := s.Dir()
			require.NoError(t, s.Close())

			s, err = Open(Config{Dir: dir})
			require.NoError(t, err)
			defer s.Close()
			fsck(t, s)
			histAfter, err := s.History(ctx, "", 0)
			require.NoError(t, err)
			assert.Equal(t, histBefore, histAfter)
			b, _ := bundleOf(t, s)
			fetchInto(t, s, b)

			res, err := maintainForced(t, s)
			require.NoError(t, err)
			assert.True(t, res.Done)
			l, _ := storeFiles(t, s)
			assert.Zero(t, l)
			fsck(t, s)
		})
	}
}
