package gitstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHistoryFrom: History names, for every commit that came in a bundle,
// the authenticated peer that delivered it (whatever author name the
// commit claims), and nothing for our own commits; the record survives a
// reopen and a torn last line.
func TestHistoryFrom(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, "a", epoch)
	writeFile(t, s.Dir(), "mine.txt", "mine")
	scan(t, s)
	// A commit whose author claims to be "a" itself, delivered by peerB.
	c := newCrafter()
	h := c.commit(c.tree([]rawEntry{file("forged.txt", "x"), file("mine.txt", "mine")}), head(t, s).plumbing())
	apply(t, s, c.bundle(t, h, "-"+head(t, s).String()+"\n"+h.String()+" refs/heads/main\n"), peerB)

	check := func(s *Store) {
		t.Helper()
		ch, err := s.History(ctx, "", 0)
		require.NoError(t, err)
		require.Len(t, ch, 2)
		assert.Equal(t, "forged.txt", ch[0].Path)
		assert.Equal(t, "evil <evil@peersync>", ch[0].Author)
		assert.Equal(t, peerB, ch[0].From)
		assert.Equal(t, "mine.txt", ch[1].Path)
		assert.Equal(t, "", ch[1].From)
	}
	check(s)

	// A crash in the middle of an append left half a line: it is skipped,
	// later lines are read.
	p := filepath.Join(s.Dir(), GitDirName, receivedName)
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("0123456789abcdef01")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, s.Close())
	s2, err := Open(Config{Dir: s.Dir()})
	require.NoError(t, err)
	defer s2.Close()
	check(s2)

	// A relayed commit keeps its first deliverer; a new one gets its own.
	src := newTestStore(t, "c", epoch)
	all, _ := bundleOf(t, s2)
	apply(t, src, all, peerA)
	writeFile(t, src.Dir(), "new.txt", "n")
	scan(t, src)
	b, _ := bundleOf(t, src, head(t, s2))
	apply(t, s2, b, peerA)
	apply(t, s2, all, peerA) // nothing new: no new lines
	ch, err := s2.History(ctx, "", 0)
	require.NoError(t, err)
	require.Len(t, ch, 3)
	assert.Equal(t, "new.txt", ch[0].Path)
	assert.Equal(t, peerA, ch[0].From)
	assert.Equal(t, peerB, ch[1].From, "first deliverer kept")
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, 3, countLines(data), "one line per received commit (2), plus the torn one")
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}
