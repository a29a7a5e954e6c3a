package gitstore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteBundleNothingToSend(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	_, err := s.WriteBundle(context.Background(), &bytes.Buffer{}, nil)
	assert.ErrorIs(t, err, ErrNothingToSend)
	writeFile(t, s.Dir(), "f", "x")
	scan(t, s)
	_, err = s.WriteBundle(context.Background(), &bytes.Buffer{}, []Hash{head(t, s)})
	assert.ErrorIs(t, err, ErrNothingToSend)
}

// TestWriteBundleGitInterop checks that git verifies and fetches our
// bundles, full and incremental.
func TestWriteBundleGitInterop(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	writeFile(t, s.Dir(), "one.txt", "1")
	writeFile(t, s.Dir(), "dir/two.txt", "2")
	scan(t, s)
	h1 := head(t, s)
	full, info := bundleOf(t, s, Hash{0xde, 0xad}) // an unknown hash is ignored
	assert.Equal(t, h1, info.Head)
	assert.Empty(t, info.Prerequisites)
	assert.Equal(t, 2+2+3, info.Objects) // 2 commits, 2 blobs, root tree x2 + dir tree

	tmp := t.TempDir()
	fullPath := filepath.Join(tmp, "full.bundle")
	require.NoError(t, os.WriteFile(fullPath, full, 0o644))
	repo := filepath.Join(tmp, "repo")
	git(t, tmp, "init", "-q", repo)
	out := git(t, repo, "bundle", "verify", fullPath)
	_ = out
	git(t, repo, "fetch", "-q", fullPath, "refs/heads/main:refs/heads/peer")
	assert.Equal(t, h1.String(), git(t, repo, "rev-parse", "refs/heads/peer"))
	git(t, repo, "fsck", "--strict")
	assert.Equal(t, "2", git(t, repo, "show", "peer:dir/two.txt"))

	// Incremental: only the new objects, with the peer's head as prerequisite.
	writeFile(t, s.Dir(), "three.txt", "3")
	scan(t, s)
	h2 := head(t, s)
	inc, info := bundleOf(t, s, h1)
	assert.Equal(t, h2, info.Head)
	assert.Equal(t, []Hash{h1}, info.Prerequisites)
	assert.Equal(t, 3, info.Objects) // commit, root tree, blob
	assert.True(t, bytes.HasPrefix(inc, []byte("# v2 git bundle\n-"+h1.String()+" add one.txt\n"+h2.String()+" refs/heads/main\n\n")), string(inc[:200]))
	incPath := filepath.Join(tmp, "inc.bundle")
	require.NoError(t, os.WriteFile(incPath, inc, 0o644))
	git(t, repo, "bundle", "verify", incPath)
	git(t, repo, "fetch", "-q", incPath, "refs/heads/main:refs/heads/peer")
	assert.Equal(t, h2.String(), git(t, repo, "rev-parse", "refs/heads/peer"))
	git(t, repo, "fsck", "--strict")

	// A fresh repository lacks the prerequisite: git refuses, as it should.
	fresh := filepath.Join(tmp, "fresh")
	git(t, tmp, "init", "-q", fresh)
	_, err := gitErr(fresh, "bundle", "verify", incPath)
	assert.Error(t, err)
}

// TestApplyOwnBundles syncs two stores both ways with our own bundles.
func TestApplyOwnBundles(t *testing.T) {
	a := newTestStore(t, "a", epoch)
	b := newTestStore(t, "b", epoch)
	writeFile(t, a.Dir(), "x/f.txt", "f")
	writeFile(t, a.Dir(), "run.sh", "#!/bin/sh\n")
	require.NoError(t, os.Chmod(filepath.Join(a.Dir(), "run.sh"), 0o755))
	scan(t, a)

	data, _ := bundleOf(t, a)
	res := apply(t, b, data, peerA)
	assert.Equal(t, FastForward, res.Kind)
	assert.Equal(t, head(t, a), res.Head)
	assert.Equal(t, head(t, a), res.PeerHead)
	assert.Equal(t, []string{"run.sh", "x/f.txt"}, res.Changed)
	assert.Equal(t, folderFiles(t, a.Dir()), folderFiles(t, b.Dir()))
	fi, err := os.Stat(filepath.Join(b.Dir(), "run.sh"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	ph, err := b.PeerHead(peerA)
	require.NoError(t, err)
	assert.Equal(t, head(t, a), ph)
	ok, err := b.HasCommit(head(t, a))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Empty(t, scan(t, b), "checked-out files are not re-committed")

	// Applying again: up to date.
	res = apply(t, b, data, peerA)
	assert.Equal(t, UpToDate, res.Kind)

	// b edits and deletes; a fast-forwards with an incremental bundle.
	writeFile(t, b.Dir(), "x/f.txt", "f2")
	require.NoError(t, os.Remove(filepath.Join(b.Dir(), "run.sh")))
	scan(t, b)
	inc, info := bundleOf(t, b, head(t, a))
	assert.Equal(t, []Hash{head(t, a)}, info.Prerequisites)
	res = apply(t, a, inc, peerB)
	assert.Equal(t, FastForward, res.Kind)
	assert.Equal(t, []string{"run.sh", "x/f.txt"}, res.Changed)
	assert.Equal(t, map[string]string{"x/f.txt": "f2"}, folderFiles(t, a.Dir()))
	assert.Equal(t, head(t, b), head(t, a))
	fsck(t, a)
	fsck(t, b)
}

// gitRepoWithFiles makes a git CLI repository with one commit per map.
func gitCommit(t *testing.T, repo string, files map[string]string, msg string) string {
	t.Helper()
	for p, c := range files {
		if c == "" {
			git(t, repo, "rm", "-q", p)
			continue
		}
		writeFile(t, repo, p, c)
		git(t, repo, "add", p)
	}
	git(t, repo, "commit", "-q", "-m", msg)
	return git(t, repo, "rev-parse", "HEAD")
}

// TestApplyGitBundles applies bundles made by `git bundle create`: a full
// one, then thin incremental ones (ref deltas against objects we have).
func TestApplyGitBundles(t *testing.T) {
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "repo")
	git(t, tmp, "init", "-q", repo)
	big := strings.Repeat("line of text that repeats\n", 400)
	c1 := gitCommit(t, repo, map[string]string{"a.txt": big, "d/b.txt": "b"}, "one")

	s := newTestStore(t, "s", epoch)
	full := filepath.Join(tmp, "full.bundle")
	git(t, repo, "bundle", "create", "-q", full, "main")
	data, err := os.ReadFile(full)
	require.NoError(t, err)
	res := apply(t, s, data, peerA)
	assert.Equal(t, FastForward, res.Kind)
	assert.Equal(t, c1, res.Head.String())
	assert.Equal(t, map[string]string{"a.txt": big, "d/b.txt": "b"}, folderFiles(t, s.Dir()))

	// Thin incremental bundles: small edits to a big file become ref deltas.
	c2 := gitCommit(t, repo, map[string]string{"a.txt": big + "more\n"}, "two")
	c3 := gitCommit(t, repo, map[string]string{"a.txt": big + "more\nand more\n", "d/b.txt": ""}, "three")
	inc := filepath.Join(tmp, "inc.bundle")
	git(t, repo, "bundle", "create", "-q", inc, c1+"..main")
	data, err = os.ReadFile(inc)
	require.NoError(t, err)
	require.Contains(t, string(data[:200]), "-"+c1)
	res = apply(t, s, data, peerA)
	assert.Equal(t, FastForward, res.Kind)
	assert.Equal(t, c3, res.Head.String())
	assert.Equal(t, map[string]string{"a.txt": big + "more\nand more\n"}, folderFiles(t, s.Dir()))
	_ = c2

	// --since style range on top.
	c4 := gitCommit(t, repo, map[string]string{"e.txt": "e"}, "four")
	inc2 := filepath.Join(tmp, "inc2.bundle")
	git(t, repo, "bundle", "create", "-q", inc2, "main", "^"+c3)
	data, err = os.ReadFile(inc2)
	require.NoError(t, err)
	res = apply(t, s, data, peerA)
	assert.Equal(t, c4, res.Head.String())
	assert.Equal(t, "e", folderFiles(t, s.Dir())["e.txt"])
	fsck(t, s)
}

func TestWriteBundlePeerAhead(t *testing.T) {
	a, b := pair(t, map[string]string{"f": "1"})
	writeFile(t, b.Dir(), "g", "2")
	scan(t, b)
	data, _ := bundleOf(t, b, head(t, a))
	apply(t, a, data, peerB) // a now has b's head in main
	// Going back: b's head is a's head, nothing to send; an older since too.
	_, err := a.WriteBundle(t.Context(), &discard{}, []Hash{head(t, b)})
	assert.ErrorIs(t, err, ErrNothingToSend)
}

func TestCancellation(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	writeFile(t, s.Dir(), "f", "x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Scan(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.True(t, head(t, s).IsZero())
	scan(t, s)
	_, err = s.WriteBundle(ctx, &discard{}, nil)
	assert.ErrorIs(t, err, context.Canceled)
	data, _ := bundleOf(t, s)
	other := newTestStore(t, "b", epoch)
	_, err = other.ApplyBundle(ctx, bytes.NewReader(data), peerA)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = other.ApplyBundle(context.Background(), bytes.NewReader(data), "bad/peer")
	assert.Error(t, err)
	assert.True(t, head(t, other).IsZero())
}
