package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	peerA = "AAAAAAA-AAAAAAA"
	peerB = "BBBBBBB-BBBBBBB"
)

// fakeClock advances one second per call, from start.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(start time.Time) *fakeClock { return &fakeClock{t: start} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestStore opens a new store on a fresh temp folder.
func newTestStore(t *testing.T, name string, start time.Time, mod ...func(*Config)) *Store {
	t.Helper()
	cfg := Config{
		Dir:         t.TempDir(),
		Create:      true,
		AuthorName:  name,
		AuthorEmail: name + "@peersync",
		Now:         newClock(start).Now,
	}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func writeFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

// gitEnv isolates the git CLI from the machine's configuration.
func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=cli", "GIT_AUTHOR_EMAIL=cli@example.com",
		"GIT_COMMITTER_NAME=cli", "GIT_COMMITTER_EMAIL=cli@example.com",
		"GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z",
	)
}

// git runs the git CLI in dir and returns its trimmed stdout.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitErr(dir, args...)
	require.NoError(t, err, "git %s: %s", strings.Join(args, " "), out)
	return out
}

func gitErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return strings.TrimSpace(stdout.String()), nil
}

// gitStore runs git against a store's git directory and work tree.
func gitStore(t *testing.T, s *Store, args ...string) string {
	t.Helper()
	return git(t, s.Dir(), append([]string{"--git-dir=" + filepath.Join(s.Dir(), GitDirName), "--work-tree=" + s.Dir()}, args...)...)
}

func fsck(t testing.TB, s *Store) {
	t.Helper()
	out, err := gitErr(s.Dir(), "--git-dir="+filepath.Join(s.Dir(), GitDirName), "fsck", "--strict", "--no-dangling")
	require.NoError(t, err, "fsck: %s", out)
}

// folderFiles returns every regular file and symlink of the folder (outside
// .peersync), keyed by slash path, with its content (a symlink as "->target").
func folderFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == GitDirName && fi.IsDir() {
			return filepath.SkipDir
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "->" + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

func scan(t *testing.T, s *Store) []Change {
	t.Helper()
	ch, err := s.Scan(context.Background())
	require.NoError(t, err)
	return ch
}

func head(t *testing.T, s *Store) Hash {
	t.Helper()
	h, err := s.Head()
	require.NoError(t, err)
	return h
}

// bundleOf writes a bundle of s since the given commits.
func bundleOf(t *testing.T, s *Store, since ...Hash) ([]byte, BundleInfo) {
	t.Helper()
	var buf bytes.Buffer
	info, err := s.WriteBundle(context.Background(), &buf, since)
	require.NoError(t, err)
	return buf.Bytes(), info
}

func apply(t *testing.T, s *Store, b []byte, peer string) ApplyResult {
	t.Helper()
	res, err := s.ApplyBundle(context.Background(), bytes.NewReader(b), peer)
	require.NoError(t, err)
	return res
}

// objectFiles lists the files under the git directory's objects/.
func objectFiles(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	root := filepath.Join(s.Dir(), GitDirName, "objects")
	require.NoError(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out = append(out, p)
		}
		return err
	}))
	sort.Strings(out)
	return out
}

func time2020() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }

// writeBundleFile writes src's whole history as a bundle to path.
func writeBundleFile(t testing.TB, ctx context.Context, src *Store, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	bw := bufio.NewWriterSize(f, 1<<20)
	_, err = src.WriteBundle(ctx, bw, nil)
	require.NoError(t, err)
	require.NoError(t, bw.Flush())
	require.NoError(t, f.Close())
}
