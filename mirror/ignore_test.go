//go:build unix

package mirror

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// remoteFiles lists the target's files (the manifest left out), sorted.
func remoteFiles(t *testing.T, root string) []string {
	t.Helper()
	got, _ := treeHashes(t, root)
	var out []string
	for p := range got {
		if p != ManifestName {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// TestSyncIgnoreRules: against each real server, what the .peersyncignore
// rules exclude (in the root and a subdirectory, with a negation and a
// directory rule) never reaches the target; a file that becomes ignored is
// removed from it; an ignore file that cannot be read fails the sync with
// a clear error and changes nothing on the target.
func TestSyncIgnoreRules(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.start(t)
			m := openMirror(t, s)
			ctx := context.Background()
			local := t.TempDir()
			writeFile(t, local, IgnoreFileName, []byte("# build output\n*.log\nbuild/\n"))
			writeFile(t, local, "sub/"+IgnoreFileName, []byte("secret.txt\n!keep.log\n"))
			for _, p := range []string{"a.txt", "x.log", "build/out.bin", "deep/build/o.bin", "sub/secret.txt",
				"sub/keep.log", "sub/b.txt", "sub/more/x.log", "other/secret.txt"} {
				writeFile(t, local, p, []byte("content of "+p))
			}
			res, err := m.Sync(ctx, local, nil)
			require.NoError(t, err)
			want := []string{IgnoreFileName, "a.txt", "other/secret.txt", "sub/" + IgnoreFileName, "sub/b.txt", "sub/keep.log"}
			assert.Equal(t, want, remoteFiles(t, s.root))
			assert.Equal(t, len(want), res.Uploaded)
			man := readManifest(t, s.root)
			assert.Len(t, man.Files, len(want))
			assert.NotContains(t, man.Files, "x.log")

			// a.txt becomes ignored: it leaves the target, stays at home.
			writeFile(t, local, IgnoreFileName, []byte("# build output\n*.log\nbuild/\n/a.txt\n"))
			res, err = m.Sync(ctx, local, nil)
			require.NoError(t, err)
			assert.Equal(t, 1, res.Deleted)
			assert.Equal(t, 1, res.Uploaded, "the changed rules themselves")
			assert.Equal(t, []string{IgnoreFileName, "other/secret.txt", "sub/" + IgnoreFileName, "sub/b.txt", "sub/keep.log"}, remoteFiles(t, s.root))
			assert.FileExists(t, filepath.Join(local, "a.txt"))

			// Rules that cannot be read: an error, nothing changed.
			before := remoteFiles(t, s.root)
			require.NoError(t, os.Remove(filepath.Join(local, "sub", IgnoreFileName)))
			require.NoError(t, syscall.Mkfifo(filepath.Join(local, "sub", IgnoreFileName), 0o644))
			_, err = m.Sync(ctx, local, nil)
			require.ErrorContains(t, err, "ignore rules")
			require.ErrorContains(t, err, "not a regular file")
			assert.Equal(t, before, remoteFiles(t, s.root))
			assert.NoFileExists(t, filepath.Join(s.root, "sub", "secret.txt"))
		})
	}
}
