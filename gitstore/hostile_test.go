package gitstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawEntry is a tree entry for crafting hostile trees: no validation at all.
type rawEntry struct {
	name    string
	mode    filemode.FileMode
	content string     // blob content (files, symlinks)
	sub     []rawEntry // subtree (mode Dir)
	hash    plumbing.Hash
}

type crafter struct {
	st     *memory.Storage
	hashes []plumbing.Hash
}

func newCrafter() *crafter { return &crafter{st: memory.NewStorage()} }

func (c *crafter) put(t plumbing.ObjectType, data []byte) plumbing.Hash {
	o := c.st.NewEncodedObject()
	o.SetType(t)
	w, _ := o.Writer()
	w.Write(data)
	w.Close()
	h, err := c.st.SetEncodedObject(o)
	if err != nil {
		panic(err)
	}
	c.hashes = append(c.hashes, h)
	return h
}

func (c *crafter) tree(entries []rawEntry) plumbing.Hash {
	var b bytes.Buffer
	for _, e := range entries {
		h := e.hash
		switch {
		case e.mode == filemode.Dir:
			h = c.tree(e.sub)
		case h.IsZero():
			h = c.put(plumbing.BlobObject, []byte(e.content))
		}
		fmt.Fprintf(&b, "%o %s\x00", uint32(e.mode), e.name)
		b.Write(h[:])
	}
	return c.put(plumbing.TreeObject, b.Bytes())
}

func (c *crafter) commit(tree plumbing.Hash, parents ...plumbing.Hash) plumbing.Hash {
	sig := object.Signature{Name: "evil", Email: "evil@peersync", When: time.Unix(1e9, 0)}
	cm := &object.Commit{Author: sig, Committer: sig, Message: "evil\n", TreeHash: tree, ParentHashes: parents}
	o := &plumbing.MemoryObject{}
	if err := cm.Encode(o); err != nil {
		panic(err)
	}
	return c.put(plumbing.CommitObject, mustRead(o))
}

func mustRead(o plumbing.EncodedObject) []byte {
	r, _ := o.Reader()
	var b bytes.Buffer
	b.ReadFrom(r)
	return b.Bytes()
}

// bundle writes the crafted objects as a bundle with the given header body
// (prerequisite and ref lines); "" means "<head> refs/heads/main".
func (c *crafter) bundle(t *testing.T, head plumbing.Hash, headerLines string) []byte {
	t.Helper()
	if headerLines == "" {
		headerLines = head.String() + " refs/heads/main\n"
	}
	var buf bytes.Buffer
	buf.WriteString("# v2 git bundle\n" + headerLines + "\n")
	_, err := packfile.NewEncoder(&buf, c.st, false).Encode(c.hashes, 0)
	require.NoError(t, err)
	return buf.Bytes()
}

func craftTree(t *testing.T, entries ...rawEntry) []byte {
	c := newCrafter()
	return c.bundle(t, c.commit(c.tree(entries)), "")
}

func file(name, content string) rawEntry {
	return rawEntry{name: name, mode: filemode.Regular, content: content}
}

func dirE(name string, sub ...rawEntry) rawEntry {
	return rawEntry{name: name, mode: filemode.Dir, sub: sub}
}

type storeSnapshot struct {
	head, peer Hash
	files      map[string]string
	objects    []string
}

func snapshot(t *testing.T, s *Store) storeSnapshot {
	ph, err := s.PeerHead(peerB)
	require.NoError(t, err)
	return storeSnapshot{head: head(t, s), peer: ph, files: folderFiles(t, s.Dir()), objects: objectFiles(t, s)}
}

func TestApplyHostileBundles(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	writeFile(t, s.Dir(), "keep.txt", "keep")
	writeFile(t, s.Dir(), "d/x.txt", "x")
	scan(t, s)
	good, _ := bundleOf(t, s)
	headerLen := bytes.Index(good, []byte("\n\n")) + 2

	tamper := func(at func(n int) int) []byte {
		b := bytes.Clone(good)
		b[at(len(b))] ^= 0x40
		return b
	}
	missing := plumbing.NewHash("1111111111111111111111111111111111111111")
	thinMissing := func() []byte { // a commit whose parent we lack, with a prerequisite line
		c := newCrafter()
		h := c.commit(c.tree([]rawEntry{file("ok.txt", "ok")}), missing)
		return c.bundle(t, h, "-"+missing.String()+" gone\n"+h.String()+" refs/heads/main\n")
	}
	unconnected := func() []byte { // parent missing, no prerequisite declared
		c := newCrafter()
		h := c.commit(c.tree([]rawEntry{file("ok.txt", "ok")}), missing)
		return c.bundle(t, h, "")
	}
	extraRef := func() []byte {
		c := newCrafter()
		h := c.commit(c.tree([]rawEntry{file("ok.txt", "ok")}))
		return c.bundle(t, h, h.String()+" refs/heads/main\n"+h.String()+" refs/heads/evil\n")
	}
	oversized := func() []byte {
		var b strings.Builder
		b.WriteString("# v2 git bundle\n")
		b.WriteString("-" + missing.String() + " " + strings.Repeat("x", 2*maxHeaderBytes) + "\n")
		return []byte(b.String())
	}
	manyLines := func() []byte {
		var b strings.Builder
		b.WriteString("# v2 git bundle\n")
		for i := 0; i < maxHeaderLines+5; i++ {
			b.WriteString("-" + missing.String() + "\n")
		}
		return []byte(b.String())
	}

	tests := []struct {
		name   string
		bundle []byte
		path   string // expected BundleError.Path
		reason string // expected substring of the error
		opts   func(*Config)
	}{
		{"tampered pack byte", tamper(func(n int) int { return headerLen + (n-headerLen)/2 }), "", "bad pack", nil},
		{"bad checksum", tamper(func(n int) int { return n - 1 }), "", "checksum", nil},
		{"truncated pack", good[:len(good)-30], "", "bad pack", nil},
		{"trailing garbage", append(bytes.Clone(good), 'x'), "", "trailing", nil},
		{"not a bundle", []byte("PACK...."), "", "bad header", nil},
		{"missing prerequisite", thinMissing(), "", "missing prerequisite", nil},
		{"not connected", unconnected(), "", "not connected", nil},
		{"extra ref", extraRef(), "", `"refs/heads/evil" not allowed`, nil},
		{"oversized header", oversized(), "", "header larger", nil},
		{"too many header lines", manyLines(), "", "more than 1000 lines", nil},
		{"dotdot", craftTree(t, dirE("..", file("x", "evil"))), "..", "unsafe path", nil},
		{"dot", craftTree(t, dirE(".", file("x", "evil"))), ".", "unsafe path", nil},
		{".git/config", craftTree(t, dirE(".git", file("config", "evil"))), ".git", "unsafe path", nil},
		{".GIT", craftTree(t, dirE(".GIT", file("config", "evil"))), ".GIT", "unsafe path", nil},
		{"git~1", craftTree(t, dirE("git~1", file("config", "evil"))), "git~1", "unsafe path", nil},
		{"GIT~12", craftTree(t, dirE("GIT~12", file("config", "evil"))), "GIT~12", "unsafe path", nil},
		{"hfs ignorable", craftTree(t, dirE(".git\u200c", file("config", "evil"))), ".git\u200c", "unsafe path", nil},
		{"trailing dot", craftTree(t, dirE(".git.", file("config", "evil"))), ".git.", "unsafe path", nil},
		{"trailing space", craftTree(t, dirE(".git ", file("config", "evil"))), ".git ", "unsafe path", nil},
		{".peersync/x", craftTree(t, dirE(".peersync", file("x", "evil"))), ".peersync", "unsafe path", nil},
		{"nested .peersync", craftTree(t, dirE("a", dirE(".PeerSync", file("HEAD", "evil")))), "a/.PeerSync", "unsafe path", nil},
		{"PEERSY~1", craftTree(t, dirE("PEERSY~1", file("x", "evil"))), "PEERSY~1", "unsafe path", nil},
		{"backslash", craftTree(t, file("a\\..\\x", "evil")), "a\\..\\x", "unsafe path", nil},
		{"gitlink", craftTree(t, rawEntry{name: "sub", mode: filemode.Submodule, hash: missing}), "sub", "gitlink", nil},
		{".gitmodules", craftTree(t, file(".gitmodules", "[submodule]")), ".gitmodules", "unsafe path", nil},
		{"symlink not allowed", craftTree(t, rawEntry{name: "l", mode: filemode.Symlink, content: "/etc/passwd"}), "l", "symlink", nil},
		{"newline in name", craftTree(t, file("a\nb", "evil")), "a\nb", "control character", nil},
		{"escape in name", craftTree(t, dirE("d\x1b[31m", file("x", "evil"))), "d\x1b[31m", "control character", nil},
		{"DEL in name", craftTree(t, file("a\x7f", "evil")), "a\x7f", "control character", nil},
		{"C1 CSI in name", craftTree(t, file("a\u009b2J", "evil")), "a\u009b2J", "control character", nil},
		{"duplicate entry", craftTree(t, file("a", "1"), file("a", "2")), "a", "duplicate", nil},
		{"blob too large", craftTree(t, file("big", strings.Repeat("x", 2000))), "", "over MaxObjectSize", func(c *Config) { c.MaxObjectSize = 1000 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s
			if tt.opts != nil {
				cfg := Config{Dir: s.Dir()}
				tt.opts(&cfg)
				var err error
				st, err = Open(cfg)
				require.NoError(t, err)
				defer st.Close()
			}
			before := snapshot(t, st)
			_, err := st.ApplyBundle(context.Background(), bytes.NewReader(tt.bundle), peerB)
			require.Error(t, err)
			var be *BundleError
			require.True(t, errors.As(err, &be), "want *BundleError, got %T: %v", err, err)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Equal(t, tt.path, be.Path)
			assert.Equal(t, before, snapshot(t, st), "nothing may change")
		})
	}
}

// TestApplySymlinkAllowed: a folder that opts in accepts symlinks but never
// writes through one.
func TestApplySymlinkAllowed(t *testing.T) {
	s := newTestStore(t, "a", epoch, func(c *Config) { c.AllowSymlinks = true })
	outside := t.TempDir()
	b := craftTree(t, rawEntry{name: "l", mode: filemode.Symlink, content: outside})
	res := apply(t, s, b, peerB)
	assert.Equal(t, FastForward, res.Kind)
	assert.Equal(t, "->"+outside, folderFiles(t, s.Dir())["l"])

	// Next bundle replaces the symlink l by a directory l/x: the symlink is
	// removed first, so x lands inside the folder.
	c := newCrafter()
	h := c.commit(c.tree([]rawEntry{dirE("l", file("x", "inside"))}), head(t, s).plumbing())
	res = apply(t, s, c.bundle(t, h, "-"+head(t, s).String()+"\n"+h.String()+" refs/heads/main\n"), peerB)
	assert.Equal(t, FastForward, res.Kind)
	assert.Equal(t, map[string]string{"l/x": "inside"}, folderFiles(t, s.Dir()))
	assert.NoDirExists(t, filepath.Join(outside, "x"))
}

// TestApplyNeverWritesThroughSymlink: an untracked local symlink (skipped by
// Scan) named like a directory in the bundle is never written through.
func TestApplyNeverWritesThroughSymlink(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(s.Dir(), "d")))
	c := newCrafter()
	h := c.commit(c.tree([]rawEntry{dirE("d", file("x", "evil")), file("ok", "ok")}))
	res := apply(t, s, c.bundle(t, h, ""), peerB)
	assert.Equal(t, []string{"ok"}, res.Changed)
	assert.NoFileExists(t, filepath.Join(outside, "x"))
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestValidPath(t *testing.T) {
	good := []string{"a", "a/b.txt", "dir/.gitignore", ".peersyncignore", "git~x", ".gitx", "x.git", "CON", "naïve/é"}
	bad := []string{"", "/abs", "a//b", "a/", "./a", "a/..", "a\\b", "a\x00b", ".git", "a/.Git/b", ".git\u200d",
		"\ufeff.git", ".git...", ".peersync", ".PEERSYNC  ", "GIT~1", "peersy~2", ".gitmodules", ".GITMODULES", "gitmod~1",
		"a\nb", "d/\x1b[2J", "\r", "tab\there", "del\x7f", "c1\u0085", "csi\u009b"}
	for _, p := range good {
		assert.NoError(t, ValidPath(p), p)
	}
	for _, p := range bad {
		assert.Error(t, ValidPath(p), "%q", p)
	}
}
