package gitstore

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The targeted scan of the watcher commits exactly what a full scan would,
// given the paths fsnotify reports.
func TestScanPaths(t *testing.T) {
	base := map[string]string{
		"top.txt":         "t",
		"a/one.txt":       "1",
		"a/b/two.txt":     "2",
		"a/b/c/three.txt": "3",
		"d/four.txt":      "4",
		"e/five.txt":      "5",
		IgnoreFileName:    "*.tmp\n",
	}
	rm := func(t *testing.T, dir, p string) { require.NoError(t, os.RemoveAll(filepath.Join(dir, p))) }
	tests := []struct {
		name   string
		mutate func(t *testing.T, dir string)
		events []string
		want   []string
	}{
		{"add in root", func(t *testing.T, d string) { writeFile(t, d, "new.txt", "n") },
			[]string{"new.txt"}, []string{"add new.txt"}},
		{"modify deep", func(t *testing.T, d string) { writeFile(t, d, "a/b/c/three.txt", "3b") },
			[]string{"a/b/c/three.txt"}, []string{"modify a/b/c/three.txt"}},
		{"delete file", func(t *testing.T, d string) { rm(t, d, "a/one.txt") },
			[]string{"a/one.txt"}, []string{"delete a/one.txt"}},
		{"remove a tree", func(t *testing.T, d string) { rm(t, d, "a/b") },
			// inotify reports the inner removals too; the parent's is enough
			[]string{"a/b"}, []string{"delete a/b/c/three.txt", "delete a/b/two.txt"}},
		{"remove a tree, inner events first", func(t *testing.T, d string) { rm(t, d, "a/b") },
			[]string{"a/b/c/three.txt", "a/b/c", "a/b/two.txt", "a/b"},
			[]string{"delete a/b/c/three.txt", "delete a/b/two.txt"}},
		{"new tree (mkdir -p)", func(t *testing.T, d string) {
			writeFile(t, d, "n1/n2/n3/x.txt", "x")
			writeFile(t, d, "n1/y.txt", "y")
		}, []string{"n1"}, []string{"add n1/n2/n3/x.txt", "add n1/y.txt"}},
		{"new tree seen only by its parent listing", func(t *testing.T, d string) { writeFile(t, d, "a/new/z.txt", "z") },
			[]string{"a/one.txt"}, []string{"add a/new/z.txt"}},
		{"rename a directory", func(t *testing.T, d string) {
			require.NoError(t, os.Rename(filepath.Join(d, "d"), filepath.Join(d, "d2")))
		}, []string{"d", "d2"}, []string{"delete d/four.txt", "add d2/four.txt"}},
		{"file becomes directory", func(t *testing.T, d string) {
			rm(t, d, "top.txt")
			writeFile(t, d, "top.txt/inner.txt", "i")
		}, []string{"top.txt"}, []string{"delete top.txt", "add top.txt/inner.txt"}},
		{"directory becomes file", func(t *testing.T, d string) {
			rm(t, d, "e")
			writeFile(t, d, "e", "now a file")
		}, []string{"e"}, []string{"delete e/five.txt", "add e"}},
		{"ignored and temporary files", func(t *testing.T, d string) {
			writeFile(t, d, "a/x.tmp", "x")
			writeFile(t, d, "a/"+tmpPrefix+"1", "x")
			writeFile(t, d, "a/ok.txt", "ok")
		}, []string{"a/x.tmp", "a/" + tmpPrefix + "1", "a/ok.txt"}, []string{"add a/ok.txt"}},
		{"becomes a nested history", func(t *testing.T, d string) {
			require.NoError(t, os.Mkdir(filepath.Join(d, "d", ".git"), 0o755))
		}, []string{"d/.git"}, []string{"delete d/four.txt"}},
		{"vanished parent", func(t *testing.T, d string) { rm(t, d, "a") },
			[]string{"a/b/c/three.txt"}, []string{"delete a/b/c/three.txt", "delete a/b/two.txt", "delete a/one.txt"}},
		{"no change", func(t *testing.T, d string) {}, []string{"a/one.txt", "top.txt"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, "dev", epoch)
			for p, c := range base {
				writeFile(t, s.Dir(), p, c)
			}
			scan(t, s)
			tt.mutate(t, s.Dir())
			ch, err := s.scanPaths(context.Background(), tt.events)
			require.NoError(t, err)
			got := actions(ch)
			want := append([]string{}, tt.want...)
			sort.Strings(got)
			sort.Strings(want)
			assert.Equal(t, want, got)
			assert.Empty(t, scan(t, s), "a full scan finds nothing more")
		})
	}
}

// Paths under an ignored directory, or the root, or many paths.
func TestScanPathsFallbacks(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), IgnoreFileName, "skip/\n")
	writeFile(t, s.Dir(), "skip/a.txt", "a")
	writeFile(t, s.Dir(), "k.txt", "k")
	ch, err := s.scanPaths(context.Background(), []string{"skip/a.txt"})
	require.NoError(t, err)
	assert.Empty(t, ch)
	ch, err = s.scanPaths(context.Background(), []string{""})
	require.NoError(t, err)
	assert.Equal(t, []string{"add " + IgnoreFileName, "add k.txt"}, actions(ch))
	require.NoError(t, os.RemoveAll(filepath.Join(s.Dir(), GitDirName)))
	_, err = s.scanPaths(context.Background(), []string{"k.txt"})
	assert.ErrorIs(t, err, ErrNotInitialized)
}
