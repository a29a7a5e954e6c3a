package gitstore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// packsOf returns the names (pack-<sha>) of s's packs and their contents,
// and the names alone (sorted).
func packsOf(t *testing.T, s *Store) (map[string][]byte, []string) {
	t.Helper()
	dir := filepath.Join(s.Dir(), GitDirName, "objects", "pack")
	names, err := filepath.Glob(filepath.Join(dir, "pack-*.pack"))
	require.NoError(t, err)
	out := map[string][]byte{}
	var list []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		require.NoError(t, err)
		name := strings.TrimSuffix(filepath.Base(n), ".pack")
		out[name] = b
		list = append(list, name)
	}
	return out, list
}

// packOfBundle returns the packfile part of a bundle (after the header's
// blank line).
func packOfBundle(t *testing.T, b []byte) []byte {
	t.Helper()
	i := bytes.Index(b, []byte("\n\nPACK"))
	require.GreaterOrEqual(t, i, 0, "no pack in the bundle")
	return b[i+2:]
}

// A first-sync bundle made by git itself (git's zlib levels, which our own
// pack writer never reproduces) becomes our pack byte for byte: the pack is
// adopted, not copied, and the store is whole (git fsck --strict, the
// files, a later bundle back to git).
func TestApplyAdoptsReceivedPack(t *testing.T) {
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	big := make([]byte, 3<<20) // over largeObjectThreshold: streamed, never a delta
	rand.Read(big)
	require.NoError(t, os.WriteFile(filepath.Join(repo, "big.bin"), big, 0o644))
	for i := range 30 {
		writeFile(t, repo, filepath.Join("d", string(rune('a'+i%5)), "f"+string(rune('a'+i))+".txt"), strings.Repeat("line of text\n", 50+i))
		git(t, repo, "add", "-A")
		git(t, repo, "commit", "-q", "-m", "c")
	}
	bundle := filepath.Join(t.TempDir(), "b.bundle")
	git(t, repo, "bundle", "create", bundle, "main")
	raw, err := os.ReadFile(bundle)
	require.NoError(t, err)
	pack := packOfBundle(t, raw)

	s := newTestStore(t, "b", epoch)
	res := apply(t, s, raw, peerA)
	require.Equal(t, FastForward, res.Kind)
	packs, names := packsOf(t, s)
	want := "pack-" + hex.EncodeToString(pack[len(pack)-20:])
	require.Equal(t, []string{want}, names, "the received pack is ours under its own checksum")
	require.True(t, bytes.Equal(pack, packs[want]), "adopted byte for byte")
	fsck(t, s)
	gitStore(t, s, "verify-pack", filepath.Join(s.Dir(), GitDirName, "objects", "pack", want+".idx"))
	got, err := os.ReadFile(filepath.Join(s.Dir(), "big.bin"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got))
	require.Equal(t, git(t, repo, "rev-parse", "main"), head(t, s).String())
	fi, err := os.Stat(filepath.Join(s.Dir(), GitDirName, "objects", "pack", want+".pack"))
	require.NoError(t, err)
	require.Zero(t, fi.Mode().Perm()&0o222, "packs are read-only")

	// What we read back through the adopted pack goes out again whole.
	back, _ := bundleOf(t, s)
	bf := filepath.Join(t.TempDir(), "back.bundle")
	require.NoError(t, os.WriteFile(bf, back, 0o644))
	git(t, repo, "bundle", "verify", bf)
}

// A pack that holds an object the new history does not reach is not
// adopted: only what the head reaches is stored, so nothing unchecked ever
// lands in the store.
func TestApplyUnreachableObjectNotAdopted(t *testing.T) {
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeFile(t, repo, "a.txt", "hello\n")
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "c")
	writeFile(t, repo, "stray.txt", "an object no tree names\n")
	stray := git(t, repo, "hash-object", "-w", "stray.txt")
	objs := git(t, repo, "rev-list", "--objects", "main")
	var objNames []string
	for _, l := range strings.Split(objs, "\n") {
		objNames = append(objNames, strings.Fields(l)[0])
	}
	objNames = append(objNames, stray)
	cmd := exec.Command("git", "pack-objects", "--stdout")
	cmd.Dir, cmd.Env = repo, gitEnv()
	cmd.Stdin = strings.NewReader(strings.Join(objNames, "\n") + "\n")
	pack, err := cmd.Output()
	require.NoError(t, err)
	var names []string
	b := append([]byte("# v2 git bundle\n"+git(t, repo, "rev-parse", "main")+" refs/heads/main\n\n"), pack...)

	s := newTestStore(t, "b", epoch)
	require.Equal(t, FastForward, apply(t, s, b, peerA).Kind)
	_, names = packsOf(t, s)
	require.NotContains(t, names, "pack-"+hex.EncodeToString(pack[len(pack)-20:]))
	_, err = gitErr(s.Dir(), "--git-dir="+filepath.Join(s.Dir(), GitDirName), "cat-file", "-e", stray)
	require.Error(t, err, "the unreachable object was not stored")
	fsck(t, s)
	require.Equal(t, map[string]string{"a.txt": "hello\n"}, folderFiles(t, s.Dir()))
}
