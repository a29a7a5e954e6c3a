package gitstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// TestScanCommitsBigFilesLast: a Scan that reports its progress and finds
// big files beside small ones commits and publishes the small ones first
// (main names them, every object stored, and the big files are not in that
// tree yet), then commits the big files; one commit per file throughout,
// git fsck clean. Without ScanProgress (or with only big files changed)
// there is one pass, in path order.
func TestScanCommitsBigFilesLast(t *testing.T) {
	var n uint64
	seed := func() uint64 { n++; return n }
	oldFile, oldTotal := bigLaterFile, bigLaterTotal
	bigLaterFile, bigLaterTotal = 64<<10, 128<<10
	t.Cleanup(func() { bigLaterFile, bigLaterTotal = oldFile, oldTotal })
	oldDelay := scanReportDelay
	scanReportDelay = time.Hour // only the publish reports
	t.Cleanup(func() { scanReportDelay = oldDelay })

	fill := func(dir string) {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "media"), 0o755))
		testutil.WriteRandomFile(t, filepath.Join(dir, "a-big.bin"), 100<<10, seed())
		testutil.WriteRandomFile(t, filepath.Join(dir, "media", "b-big.bin"), 80<<10, seed())
		for i := range 12 {
			writeFile(t, dir, fmt.Sprintf("docs/d%d/f%02d.txt", i%3, i), fmt.Sprintf("file %d\n", i))
		}
	}

	var s *Store
	var pubs []ScanProgress
	var treeAtPublish string
	s = newTestStore(t, "dev", epoch, func(c *Config) {
		c.ScanProgress = func(p ScanProgress) {
			if p.Published.IsZero() {
				return
			}
			pubs = append(pubs, p)
			git := filepath.Join(s.Dir(), GitDirName)
			assert.Equal(t, p.Published.String(), gitOut(t, "--git-dir="+git, "rev-parse", "main"))
			treeAtPublish = gitOut(t, "--git-dir="+git, "ls-tree", "-r", "--name-only", "main")
			fsck(t, s)
		}
	})
	fill(s.Dir())
	changes := scan(t, s)
	require.Len(t, changes, 14, "one commit per file")
	require.Len(t, pubs, 1, "the small files were published before the big ones were read")
	assert.Equal(t, 12, pubs[0].Commits)
	assert.Equal(t, changes[11].Commit, pubs[0].Published)
	assert.NotContains(t, treeAtPublish, "big.bin")
	assert.Equal(t, 12, strings.Count(treeAtPublish, ".txt"))
	assert.Equal(t, []string{"add a-big.bin", "add media/b-big.bin"}, actions(changes[12:]), "the big files last")
	for _, c := range changes[:12] {
		assert.True(t, strings.HasPrefix(c.Path, "docs/"), c.Path)
	}
	head, err := s.Head()
	require.NoError(t, err)
	assert.Equal(t, changes[13].Commit, head)
	fsck(t, s)
	assert.Equal(t, "14", gitOut(t, "--git-dir="+filepath.Join(s.Dir(), GitDirName), "rev-list", "--count", "main"))

	// Only big files changed: one pass (nothing to publish first).
	testutil.WriteRandomFile(t, filepath.Join(s.Dir(), "a-big.bin"), 100<<10, seed())
	testutil.WriteRandomFile(t, filepath.Join(s.Dir(), "media", "b-big.bin"), 80<<10, seed())
	pubs = nil
	assert.Equal(t, []string{"modify a-big.bin", "modify media/b-big.bin"}, actions(scan(t, s)))
	assert.Empty(t, pubs)

	// No progress reports wanted: one pass, in path order.
	plain := newTestStore(t, "dev", epoch)
	fill(plain.Dir())
	ch := scan(t, plain)
	require.Len(t, ch, 14)
	assert.Equal(t, "add a-big.bin", actions(ch[:1])[0], "path order")
	fsck(t, plain)
}
