package sync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/gitstore"
)

// conflictNodes starts two engines that wrote different contents into
// hello.txt before they shared the folder, and waits until both hold the
// same conflict copy.
func conflictNodes(t *testing.T) (a, b *node, c gitstore.Conflict) {
	t.Helper()
	a, b = newNode(t, "a"), newNode(t, "b")
	write(t, a.dir, "hello.txt", "written on a\n")
	write(t, b.dir, "hello.txt", "written on b\n")
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Name: "b", Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Name: "a", Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
	ctx := context.Background()
	var cs []gitstore.Conflict
	eventually(t, "both hold the conflict copy", func() bool {
		var err error
		cs, err = a.e.Conflicts(ctx, "docs")
		require.NoError(t, err)
		csb, err := b.e.Conflicts(ctx, "docs")
		require.NoError(t, err)
		return len(cs) == 1 && len(csb) == 1 && csb[0].Copy == cs[0].Copy
	})
	return a, b, cs[0]
}

// Two engines edit the same file apart, meet, and both hold the conflict
// copy; keeping the copy on A is two ordinary commits that reach B: the
// kept content at the original path on both, the copy gone on both.
func TestResolveConflictReachesPeer(t *testing.T) {
	a, b, c := conflictNodes(t)
	ctx := context.Background()
	assert.Equal(t, "hello.txt", c.Original)
	lost, err := os.ReadFile(filepath.Join(a.dir, c.Copy))
	require.NoError(t, err)
	won, err := os.ReadFile(filepath.Join(a.dir, "hello.txt"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"written on a\n", "written on b\n"}, []string{string(lost), string(won)})
	// Who made each side: the loser's device wrote the copy's content.
	loser := a.e.DeviceID()
	if string(lost) == "written on b\n" {
		loser = b.e.DeviceID()
	}
	assert.Contains(t, c.CopySide.Change.Author, loser.String()+"@peersync")
	assert.NotEqual(t, c.CopySide.Change.Author, c.OriginalSide.Change.Author)

	out, err := a.e.ResolveConflict(ctx, "docs", c.Copy, gitstore.KeepCopy)
	require.NoError(t, err)
	require.Len(t, out, 2)
	for _, n := range []*node{a, b} {
		eventually(t, "the kept content and no copy, on disk and in main", func() bool {
			_, err := os.Stat(filepath.Join(n.dir, c.Copy))
			left, lerr := n.e.Conflicts(ctx, "docs")
			require.NoError(t, lerr)
			return fileIs(n.dir, "hello.txt", string(lost))() && os.IsNotExist(err) && len(left) == 0
		})
	}

	_, err = a.e.ResolveConflict(ctx, "docs", "hello.txt", gitstore.KeepCopy)
	assert.ErrorIs(t, err, gitstore.ErrNotConflictCopy)
	_, err = a.e.ResolveConflict(ctx, "nope", c.Copy, gitstore.KeepCopy)
	assert.ErrorIs(t, err, ErrUnknownFolder)
}

// When the original was edited again, the copy's maker is known only by
// the DeviceID prefix in the copy's name: the engine names it (this
// device or the peer).
func TestConflictCopyMakerNamed(t *testing.T) {
	a, b, c := conflictNodes(t)
	lost, err := os.ReadFile(filepath.Join(a.dir, c.Copy))
	require.NoError(t, err)
	loser, name := a.e.DeviceID(), "a"
	if string(lost) == "written on b\n" {
		loser, name = b.e.DeviceID(), "b"
	}
	// Two more edits push the conflicting ones out of the original's two
	// newest changes. Commit times are whole seconds, and changes of one
	// second are listed in hash order: each edit must come a second after
	// the changes before it. Time passing is the subject here (bounded: 1 s
	// per edit).
	last := c.OriginalSide.Change.Time
	for i, v := range []string{"edited again on a\n", "and again\n"} {
		for time.Now().Unix() <= last.Unix() {
			time.Sleep(10 * time.Millisecond)
		}
		write(t, a.dir, "hello.txt", v)
		eventually(t, fmt.Sprintf("edit %d committed", i+1), func() bool {
			h, err := a.e.History(context.Background(), "docs", "hello.txt", 1)
			require.NoError(t, err)
			if len(h) == 1 && fileIs(a.dir, "hello.txt", v)() && h[0].Time.After(last) {
				last = h[0].Time
				return true
			}
			return false
		})
	}
	ctx := context.Background()
	eventually(t, "the copy's side known by its name only, named", func() bool {
		cs, err := a.e.Conflicts(ctx, "docs")
		require.NoError(t, err)
		return len(cs) == 1 && cs[0].CopySide.Change.Commit.IsZero() &&
			cs[0].CopySide.Change.Author == name+" <"+loser.String()+"@peersync>"
	})
}
