package gitstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Ignore rules that arrive from a peer are reported; rules that would stop
// every tracked file from syncing are refused until the user confirms, as
// the mass-delete guard does, and meanwhile local edits still commit.
func TestIgnoreRulesFromPeer(t *testing.T) {
	a := newTestStore(t, "a", epoch)
	for _, p := range []string{"a.txt", "b.txt", "c/d.txt", "c/e.txt"} {
		writeFile(t, a.Dir(), p, "v1 "+p)
	}
	scan(t, a)
	b := newTestStore(t, "b", epoch)
	bundle, _ := bundleOf(t, a)
	apply(t, b, bundle, peerA)

	// Harmless rules: applied and reported.
	base := head(t, a)
	writeFile(t, a.Dir(), IgnoreFileName, "*.log\n")
	scan(t, a)
	bundle, _ = bundleOf(t, a, base)
	res := apply(t, b, bundle, peerA)
	assert.Equal(t, []string{IgnoreFileName}, res.IgnoreRules)
	assert.Equal(t, "*.log\n", folderFiles(t, b.Dir())[IgnoreFileName])

	// Rules that exclude everything: refused, nothing checked out.
	base = head(t, a)
	writeFile(t, a.Dir(), IgnoreFileName, "*\n!"+IgnoreFileName+"\n")
	require.Equal(t, []string{"modify " + IgnoreFileName}, actions(scan(t, a)))
	bundle, _ = bundleOf(t, a, base)
	bHead := head(t, b)
	_, err := b.ApplyBundle(context.Background(), bytes.NewReader(bundle), peerA)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrMassDelete), "pauses the folder as the mass-delete guard: %v", err)
	var ie *IgnoreRulesError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, IgnoreRulesError{Peer: peerA, Files: []string{IgnoreFileName}, Rules: "*\n!" + IgnoreFileName + "\n",
		Excluded: 4, Total: 4}, *ie)
	assert.Contains(t, err.Error(), peerA)
	assert.Equal(t, bHead, head(t, b), "main did not move")
	assert.Equal(t, "*.log\n", folderFiles(t, b.Dir())[IgnoreFileName])
	writeFile(t, b.Dir(), "a.txt", "b's edit")
	assert.Equal(t, []string{"modify a.txt"}, actions(scan(t, b)), "local commits go on")

	// The user confirms: the rules apply.
	b.AllowMassDeleteOnce()
	res, err = b.IntegratePeer(context.Background(), peerA)
	require.NoError(t, err)
	assert.Equal(t, []string{IgnoreFileName}, res.IgnoreRules)
	assert.Equal(t, "*\n!"+IgnoreFileName+"\n", folderFiles(t, b.Dir())[IgnoreFileName])
	writeFile(t, b.Dir(), "b.txt", "ignored now")
	assert.Empty(t, scan(t, b), "the confirmed rules are in force")
	fsck(t, b)
}

// One confirmation covers a bundle that trips both the mass-delete guard
// and the ignore-rules guard.
func TestIgnoreRulesAndMassDeleteOneConfirmation(t *testing.T) {
	mod := func(c *Config) { c.MaxDeleteCount = 2 }
	a := newTestStore(t, "a", epoch, mod)
	for _, p := range []string{"a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"} {
		writeFile(t, a.Dir(), p, p)
	}
	scan(t, a)
	b := newTestStore(t, "b", epoch, mod)
	bundle, _ := bundleOf(t, a)
	apply(t, b, bundle, peerA)

	base := head(t, a)
	a.AllowMassDeleteOnce()
	for _, p := range []string{"a.txt", "b.txt", "c.txt", "d.txt"} {
		require.NoError(t, os.Remove(filepath.Join(a.Dir(), p)))
	}
	require.Len(t, scan(t, a), 4)
	writeFile(t, a.Dir(), IgnoreFileName, "*\n!"+IgnoreFileName+"\n")
	require.Len(t, scan(t, a), 1)
	bundle, _ = bundleOf(t, a, base)
	_, err := b.ApplyBundle(context.Background(), bytes.NewReader(bundle), peerA)
	require.ErrorIs(t, err, ErrMassDelete)
	t.Logf("first: %v", err)
	b.AllowMassDeleteOnce()
	_, err = b.IntegratePeer(context.Background(), peerA)
	require.NoError(t, err, "one confirmation lets the whole checkout through")
	assert.Equal(t, head(t, a), head(t, b))
}
