package gitstore

import (
	"fmt"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPackObjectsTable(t *testing.T) {
	p := newPackObjects(0)
	var objs []*packObject
	for i := range 5000 {
		o := &packObject{hash: plumbing.ComputeHash(plumbing.BlobObject, fmt.Append(nil, i))}
		objs = append(objs, o)
		p.add(o)
	}
	require.Len(t, p.list, 5000)
	for _, o := range objs {
		assert.Same(t, o, p.get(o.hash))
	}
	assert.Nil(t, p.get(plumbing.ComputeHash(plumbing.BlobObject, []byte("absent"))))
	dup := &packObject{hash: objs[42].hash}
	p.add(dup)
	assert.Len(t, p.list, 5000, "a name added twice is one object")
	assert.Same(t, dup, p.get(objs[42].hash), "the last one")
}

func TestValidComponentBytesAgrees(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a", "file.txt", "a b", ".git", ".GIT", "git~1", "GIT~1",
		".peersync", "PEERSY~2", ".gitmodules", "a/b", "a\\b", "a\x00b", ".git\u200c", "\u200c.git",
		"x.git", "git", ".git. ", "README", "-dash", "tab\there", "ünï", "CON", "aux.txt", "~", "a~b"} {
		got := validComponentBytes([]byte(name)) == nil
		want := validComponent(name) == nil
		assert.Equal(t, want, got, "%q", name)
	}
}

func TestParseTreeEntry(t *testing.T) {
	h := plumbing.ComputeHash(plumbing.BlobObject, []byte("x"))
	raw := appendTreeEntry(nil, 0o100644, "a", h)
	raw = appendTreeEntry(raw, 0o40000, "d", h)
	mode, name, got, rest, ok := parseTreeEntry(raw)
	require.True(t, ok)
	assert.Equal(t, uint32(0o100644), uint32(mode))
	assert.Equal(t, "a", string(name))
	assert.Equal(t, h, got)
	mode, name, _, rest, ok = parseTreeEntry(rest)
	require.True(t, ok)
	assert.Equal(t, uint32(0o40000), uint32(mode))
	assert.Equal(t, "d", string(name))
	assert.Empty(t, rest)
	for _, bad := range []string{"100644 a", "10064x a\x00" + string(h[:]), " a\x00" + string(h[:]), "100644 a\x00short"} {
		_, _, _, _, ok := parseTreeEntry([]byte(bad))
		assert.False(t, ok, "%q", bad)
	}

}
