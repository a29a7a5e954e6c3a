package sync

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/gitstore"
)

// folderAway takes a running folder's disk away and brings it back.
type folderAway interface {
	away(t *testing.T)
	back(t *testing.T)
}

// markerRenamed moves <dir>/.peersync aside (a folder moved or replaced).
type markerRenamed struct{ dir string }

func (m markerRenamed) away(t *testing.T) {
	require.NoError(t, os.Rename(filepath.Join(m.dir, ".peersync"), filepath.Join(m.dir, ".peersync-aside")))
}

func (m markerRenamed) back(t *testing.T) {
	require.NoError(t, os.Rename(filepath.Join(m.dir, ".peersync-aside"), filepath.Join(m.dir, ".peersync")))
}

// unmounted is a folder on its own tmpfs "disk", seen at dir through a bind
// mount that is lazily unmounted (a disk pulled while files are open) and
// mounted again.
type unmounted struct{ disk, dir string }

func (u unmounted) away(t *testing.T) {
	run(t, "umount", "-l", u.dir)
}

func (u unmounted) back(t *testing.T) {
	run(t, "mount", "--bind", u.disk, u.dir)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
}

// newTmpfsDisk mounts a tmpfs and binds it at a new folder path; it skips
// loudly when mounting is not possible (not root).
func newTmpfsDisk(t *testing.T) unmounted {
	disk, dir := t.TempDir(), t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("LOUD SKIP: mounting a tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("LOUD SKIP: cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", disk).Run() })
	run(t, "mount", "--bind", disk, dir)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return unmounted{disk: disk, dir: dir}
}

// TestFolderGoneWhileRunning: a folder whose disk is unmounted, or whose
// .peersync vanishes, while the engine runs is stopped (status, event):
// nothing is deleted on the peer, nothing is written into the empty mount
// point; when it comes back it resumes (event) and syncs both ways again.
func TestFolderGoneWhileRunning(t *testing.T) {
	cases := map[string]func(t *testing.T) (dir string, g folderAway){
		"marker renamed": func(t *testing.T) (string, folderAway) {
			dir := t.TempDir()
			return dir, markerRenamed{dir}
		},
		"tmpfs unmounted": func(t *testing.T) (string, folderAway) {
			u := newTmpfsDisk(t)
			return u.dir, u
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			dir, g := setup(t)
			a := newNodeCfg(t, "a", func(*Config) {})
			require.NoError(t, a.e.AddFolder(context.Background(), FolderConfig{ID: "disk", Path: dir}))
			b := newNodeCfg(t, "b", func(*Config) {})
			bdir := t.TempDir()
			require.NoError(t, b.e.AddFolder(context.Background(), FolderConfig{ID: "disk", Path: bdir}))
			a.start(t)
			require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"disk"}}))
			require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"disk"}}))
			b.start(t)
			write(t, dir, "one.txt", "1")
			write(t, dir, "two.txt", "2")
			eventually(t, "synced", func() bool { return fileIs(bdir, "one.txt", "1")() && fileIs(bdir, "two.txt", "2")() })

			g.away(t)
			ev := waitEvent(t, a.e, func(ev Event) bool { return ev.Kind == EventFolderStopped && ev.Folder == "disk" })
			assert.ErrorIs(t, ev.Err, gitstore.ErrNotInitialized)
			assert.Contains(t, folderStatus(a.e, "disk").Stopped, "not initialized")
			write(t, bdir, "while-away.txt", "from b") // b commits and announces
			eventually(t, "b committed", func() bool {
				return !folderStatus(b.e, "disk").Head.IsZero() && b.e.Status().Peers[0].Known["disk"] != folderStatus(b.e, "disk").Head
			})
			_, err := a.e.Scan(context.Background(), "disk") // a positive marker: a looked again, still away
			require.Error(t, err)
			assert.True(t, fileIs(bdir, "one.txt", "1")() && fileIs(bdir, "two.txt", "2")(), "nothing deleted on the peer")
			if _, ok := g.(unmounted); ok {
				ents, err := os.ReadDir(dir)
				require.NoError(t, err)
				assert.Empty(t, ents, "nothing written into the empty mount point")
			} else {
				_, err := os.Stat(filepath.Join(dir, ".peersync"))
				assert.True(t, errors.Is(err, os.ErrNotExist), "the marker is never recreated")
			}

			g.back(t)
			waitEvent(t, a.e, func(ev Event) bool { return ev.Kind == EventFolderResumed && ev.Folder == "disk" })
			assert.Empty(t, folderStatus(a.e, "disk").Stopped)
			eventually(t, "b's change arrives", fileIs(dir, "while-away.txt", "from b"))
			write(t, dir, "after.txt", "back")
			eventually(t, "and a's reaches b", fileIs(bdir, "after.txt", "back"))
			assert.True(t, fileIs(bdir, "one.txt", "1")() && fileIs(dir, "two.txt", "2")())
		})
	}
}

// folderStatus returns the status of folder id.
func folderStatus(e *Engine, id string) FolderStatus {
	for _, f := range e.Status().Folders {
		if f.ID == id {
			return f
		}
	}
	return FolderStatus{}
}
