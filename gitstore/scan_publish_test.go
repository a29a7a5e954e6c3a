package gitstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScanPublishesAsItGoes: a long scan moves main partway, each time to
// a commit whose objects are all stored (git fsck --strict, run at that
// very moment), reports it, and a bundle of what is published can be
// exported while the scan still holds the store and goes on: what a peer
// fetches during a first scan. The scan's end result is the same one
// commit per file.
func TestScanPublishesAsItGoes(t *testing.T) {
	oldN, oldEvery := publishCommits, publishEvery
	publishCommits, publishEvery = 10, 0
	t.Cleanup(func() { publishCommits, publishEvery = oldN, oldEvery })
	oldDelay := scanReportDelay
	scanReportDelay = time.Hour // only the publish reports, not the paced ones
	t.Cleanup(func() { scanReportDelay = oldDelay })

	var s *Store
	var pubs []ScanProgress
	bundle := filepath.Join(t.TempDir(), "mid-scan.bundle")
	s = newTestStore(t, "dev", epoch, func(c *Config) {
		c.ScanProgress = func(p ScanProgress) {
			if p.Published.IsZero() {
				return
			}
			pubs = append(pubs, p)
			// main names the published commit, and everything it
			// reaches is stored, now, while the scan holds the store.
			git := filepath.Join(s.Dir(), GitDirName)
			assert.Equal(t, p.Published.String(), strings.TrimSpace(gitOut(t, "--git-dir="+git, "rev-parse", "main")))
			assert.Equal(t, strconv.Itoa(p.Commits), gitOut(t, "--git-dir="+git, "rev-list", "--count", "main"))
			fsck(t, s)
			if len(pubs) == 1 {
				// An export of main as published does not wait for the
				// scan (which waits here for it, boundedly).
				done := make(chan error, 1)
				go func() {
					f, err := os.Create(bundle)
					if err == nil {
						_, err = s.WriteBundle(context.Background(), f, nil)
						err = errorsJoinClose(err, f)
					}
					done <- err
				}()
				select {
				case err := <-done:
					assert.NoError(t, err)
				case <-time.After(time.Minute):
					t.Error("the export of the published head waited for the scan")
				}
			}
		}
	})
	for i := range 45 {
		writeFile(t, s.Dir(), fmt.Sprintf("d%d/f%02d.txt", i%3, i), fmt.Sprintf("file %d\n", i))
	}
	changes := scan(t, s)
	require.Len(t, changes, 45)
	// Published after 10, 20 and 30 commits (at 40 fewer than 10 remained).
	require.Len(t, pubs, 3)
	for i, p := range pubs {
		assert.Equal(t, (i+1)*10, p.Commits)
		assert.Equal(t, changes[p.Commits-1].Commit, p.Published, "the report names the scan's commit")
	}
	head, err := s.Head()
	require.NoError(t, err)
	assert.Equal(t, changes[44].Commit, head)
	fsck(t, s)
	gitDir := filepath.Join(s.Dir(), GitDirName)
	assert.Equal(t, "45", gitOut(t, "--git-dir="+gitDir, "rev-list", "--count", "main"))

	// The bundle made mid-scan holds exactly the first 10 commits.
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	git(t, repo, "bundle", "verify", bundle)
	git(t, repo, "fetch", "-q", bundle, "main:got")
	assert.Equal(t, pubs[0].Published.String(), git(t, repo, "rev-parse", "got"))
	assert.Equal(t, "10", git(t, repo, "rev-list", "--count", "got"))
}

// gitOut runs the git CLI (outside any work tree) and returns its trimmed
// output.
func gitOut(t *testing.T, args ...string) string {
	t.Helper()
	return git(t, t.TempDir(), args...)
}

func errorsJoinClose(err error, f *os.File) error {
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
