package gitstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeN(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		writeFile(t, dir, fmt.Sprintf("d/f%02d.txt", i), fmt.Sprint(i))
	}
}

func removeN(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, os.Remove(filepath.Join(dir, fmt.Sprintf("d/f%02d.txt", i))))
	}
}

func TestMassDeleteGuardScan(t *testing.T) {
	tests := []struct {
		name          string
		cfg           func(*Config)
		files, remove int
		refused       bool
	}{
		{"default count 100 not exceeded", nil, 10, 10, false},
		{"share and count exceeded", func(c *Config) { c.MaxDeleteCount = 3 }, 10, 6, true},
		{"share not exceeded", func(c *Config) { c.MaxDeleteCount = 3 }, 10, 5, false},
		{"count not exceeded", func(c *Config) { c.MaxDeleteCount = 6 }, 10, 6, false},
		{"custom share", func(c *Config) { c.MaxDeleteCount = 1; c.MaxDeleteShare = 0.2 }, 10, 3, true},
		{"guard off", func(c *Config) { c.MaxDeleteCount = 1; c.AllowMassDelete = true }, 10, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*Config)
			if tt.cfg != nil {
				mods = append(mods, tt.cfg)
			}
			s := newTestStore(t, "dev", epoch, mods...)
			writeN(t, s.Dir(), tt.files)
			scan(t, s)
			before := head(t, s)
			removeN(t, s.Dir(), tt.remove)
			writeFile(t, s.Dir(), "new.txt", "n")
			ch, err := s.Scan(context.Background())
			if !tt.refused {
				require.NoError(t, err)
				assert.Len(t, ch, tt.remove+1)
				return
			}
			require.ErrorIs(t, err, ErrMassDelete)
			var me *MassDeleteError
			require.True(t, errors.As(err, &me))
			assert.Equal(t, MassDeleteError{Deleted: tt.remove, Total: tt.files}, *me)
			assert.Empty(t, ch)
			assert.Equal(t, before, head(t, s), "nothing committed, not even the addition")
		})
	}
}

func TestMassDeleteAllowOnce(t *testing.T) {
	s := newTestStore(t, "dev", epoch, func(c *Config) { c.MaxDeleteCount = 2 })
	writeN(t, s.Dir(), 10)
	scan(t, s)
	s.AllowMassDeleteOnce()
	writeFile(t, s.Dir(), "small.txt", "s")
	assert.Len(t, scan(t, s), 1, "below the threshold: the permission is kept")
	removeN(t, s.Dir(), 8)
	assert.Len(t, scan(t, s), 8, "confirmed")
	writeN(t, s.Dir(), 10)
	scan(t, s)
	removeN(t, s.Dir(), 8)
	_, err := s.Scan(context.Background())
	assert.ErrorIs(t, err, ErrMassDelete, "the permission was used up")
}

func TestMassDeleteGuardConfig(t *testing.T) {
	for _, c := range []Config{{MaxDeleteShare: -1}, {MaxDeleteCount: -1}} {
		c.Dir, c.Create = t.TempDir(), true
		_, err := Open(c)
		assert.Error(t, err)
	}
}

// A bundle whose checkout would delete too many files is refused before the
// folder or main change; confirming and IntegratePeer finish the job.
func TestMassDeleteGuardApply(t *testing.T) {
	ctx := context.Background()
	a := newTestStore(t, "AAAAAAA", epoch, func(c *Config) { c.MaxDeleteCount = 3 })
	b := newTestStore(t, "BBBBBBB", epoch, func(c *Config) { c.AllowMassDelete = true })
	writeN(t, b.Dir(), 10)
	scan(t, b)
	bun, _ := bundleOf(t, b)
	apply(t, a, bun, peerB)
	removeN(t, b.Dir(), 8)
	scan(t, b)
	before := head(t, a)
	files := folderFiles(t, a.Dir())
	bun, _ = bundleOf(t, b, before)

	_, err := a.ApplyBundle(ctx, bytes.NewReader(bun), peerB)
	var me *MassDeleteError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, 8, me.Deleted)
	assert.Equal(t, before, head(t, a))
	assert.Equal(t, files, folderFiles(t, a.Dir()))

	_, err = a.IntegratePeer(ctx, peerB)
	assert.ErrorIs(t, err, ErrMassDelete, "still refused")
	a.AllowMassDeleteOnce()
	res, err := a.IntegratePeer(ctx, peerB)
	require.NoError(t, err)
	assert.Equal(t, FastForward, res.Kind)
	assert.Equal(t, head(t, b), res.Head)
	assert.Len(t, res.Changed, 8)
	assert.Len(t, folderFiles(t, a.Dir()), 2)
	fsck(t, a)

	_, err = a.IntegratePeer(ctx, "CCCCCCC")
	assert.Error(t, err, "no bundle from that peer")
}

// The folder guard: ApplyBundle refuses, and writes nothing, once .peersync
// vanished (an unmounted disk).
func TestFolderGuardApply(t *testing.T) {
	a := newTestStore(t, "AAAAAAA", epoch)
	b := newTestStore(t, "BBBBBBB", epoch)
	writeFile(t, a.Dir(), "f.txt", "a")
	scan(t, a)
	writeFile(t, b.Dir(), "g.txt", "b")
	scan(t, b)
	bun, _ := bundleOf(t, b)
	files := folderFiles(t, a.Dir())
	require.NoError(t, os.Rename(filepath.Join(a.Dir(), GitDirName), filepath.Join(t.TempDir(), "away")))
	_, err := a.ApplyBundle(context.Background(), bytes.NewReader(bun), peerB)
	assert.ErrorIs(t, err, ErrNotInitialized)
	_, err = a.IntegratePeer(context.Background(), peerB)
	assert.Error(t, err)
	assert.Equal(t, files, folderFiles(t, a.Dir()))
	_, err = os.Lstat(filepath.Join(a.Dir(), GitDirName))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing recreated the marker")
}
