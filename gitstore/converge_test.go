package gitstore

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// storeAt is a test store whose clock the test sets.
func storeAt(t *testing.T, name string, at time.Time) (*Store, *testutil.Clock) {
	c := testutil.NewClock(at)
	return newTestStore(t, name, at, func(cfg *Config) { cfg.Now = c.Now }), c
}

// give applies to dst the bundle of src's whole history.
func give(t *testing.T, src, dst *Store, from string) ApplyResult {
	t.Helper()
	data, _ := bundleOf(t, src)
	return apply(t, dst, data, from)
}

// noNestedCopies fails for a file name holding two conflict markers.
func noNestedCopies(t *testing.T, s *Store) {
	t.Helper()
	for p := range folderFiles(t, s.Dir()) {
		assert.LessOrEqual(t, strings.Count(p, ".sync-conflict-"), 1, "nested conflict copy %s", p)
	}
}

// contents returns the set of contents of the folder's files.
func contents(t *testing.T, s *Store) map[string]bool {
	out := map[string]bool{}
	for _, c := range folderFiles(t, s.Dir()) {
		out[c] = true
	}
	return out
}

// A conflict copy is named after the commit that made the losing content,
// not after a merge that carried it: a merge has the signature of its newer
// parent, so two merges with that parent (B with D, C with D) named B's and
// C's versions alike, and when B and C met the copy itself conflicted and
// a copy of the copy was made.
func TestConflictCopyNamedByTheEditNotTheMerge(t *testing.T) {
	a, ca := storeAt(t, "AAAAAAA-A", epoch)
	writeFile(t, a.Dir(), "f.txt", "base")
	scan(t, a)
	b, cb := storeAt(t, "BBBBBBB-B", epoch.Add(time.Minute))
	c, cc := storeAt(t, "CCCCCCC-C", epoch.Add(time.Minute))
	give(t, a, b, peerA)
	give(t, a, c, peerA)
	writeFile(t, b.Dir(), "f.txt", "from b")
	cb.Set(epoch.Add(2 * time.Minute))
	scan(t, b)
	writeFile(t, c.Dir(), "f.txt", "from c")
	cc.Set(epoch.Add(3 * time.Minute))
	scan(t, c)
	hb, hc := head(t, b).String(), head(t, c).String()

	// D edits another file, later; its commit must sort before B's and C's
	// so that it is the first parent of both merges (the merges then differ
	// at f.txt from their first parent).
	var d *Store
	for i := 0; ; i++ {
		require.Less(t, i, 64, "no D commit sorting first")
		d, _ = storeAt(t, "DDDDDDD-D", epoch.Add(10*time.Minute))
		give(t, a, d, peerA)
		writeFile(t, d.Dir(), "g.txt", strings.Repeat("g", i+1))
		scan(t, d)
		if hd := head(t, d).String(); hd < hb && hd < hc {
			break
		}
	}
	require.Equal(t, Merged, give(t, d, b, "DDDDDDD-D").Kind)
	require.Equal(t, Merged, give(t, d, c, "DDDDDDD-D").Kind)

	// A's edit is the newest: B's and C's versions both lose to it.
	writeFile(t, a.Dir(), "f.txt", "from a")
	ca.Set(epoch.Add(20 * time.Minute))
	scan(t, a)
	rb := give(t, a, b, peerA)
	rc := give(t, a, c, peerA)
	require.Len(t, rb.Conflicts, 1)
	require.Len(t, rc.Conflicts, 1)
	assert.Equal(t, "f.sync-conflict-20260301-120200-BBBBBBB.txt", rb.Conflicts[0], "named after B's edit")
	assert.Equal(t, "f.sync-conflict-20260301-120300-CCCCCCC.txt", rc.Conflicts[0], "named after C's edit")

	ra, rcb := exchange(t, b, c)
	assert.Empty(t, ra.Conflicts)
	assert.Empty(t, rcb.Conflicts)
	assert.Equal(t, ra.Head, rcb.Head, "the same merge on both sides")
	converged(t, b, c)
	noNestedCopies(t, b)
	for _, v := range []string{"from a", "from b", "from c"} {
		assert.True(t, contents(t, b)[v], "%q kept as a file", v)
	}
}

// The same device can make two versions of a file within one second: each
// losing to a newer edit on a different device gets the same plain copy
// name. When those devices meet, the loser of the copy's conflict is named
// after the original file with the content's hash, not nested.
func TestConflictCopySameSecondTwoVersions(t *testing.T) {
	a, ca := storeAt(t, "AAAAAAA-A", epoch)
	writeFile(t, a.Dir(), "f.txt", "base")
	scan(t, a)
	b, cb := storeAt(t, "BBBBBBB-B", epoch.Add(time.Minute))
	c, _ := storeAt(t, "CCCCCCC-C", epoch.Add(time.Minute))
	give(t, a, b, peerA)
	give(t, a, c, peerA)

	cb.Set(epoch.Add(2 * time.Minute)) // both of B's edits in this second
	writeFile(t, b.Dir(), "f.txt", "b one")
	scan(t, b)
	require.Equal(t, FastForward, give(t, b, c, peerB).Kind) // C holds "b one"
	writeFile(t, b.Dir(), "f.txt", "b two")
	scan(t, b)

	writeFile(t, a.Dir(), "f.txt", "from a")
	ca.Set(epoch.Add(5 * time.Minute))
	scan(t, a)
	rb := give(t, a, b, peerA)
	rc := give(t, a, c, peerA)
	const plain = "f.sync-conflict-20260301-120200-BBBBBBB.txt"
	require.Equal(t, []string{plain}, rb.Conflicts)
	require.Equal(t, []string{plain}, rc.Conflicts)

	rbc, rcb := exchange(t, b, c)
	assert.Equal(t, rbc.Head, rcb.Head, "the same merge on both sides")
	assert.Equal(t, rbc.Conflicts, rcb.Conflicts)
	require.Len(t, rbc.Conflicts, 1)
	assert.Regexp(t, `^f\.sync-conflict-20260301-120200-BBBBBBB-[0-9a-f]{7}\.txt$`, rbc.Conflicts[0])
	converged(t, b, c)
	noNestedCopies(t, b)
	for _, v := range []string{"from a", "b one", "b two"} {
		assert.True(t, contents(t, b)[v], "%q kept as a file", v)
	}

	// Both copies edited differently on the two devices: still no nesting.
	writeFile(t, b.Dir(), plain, "edited on b")
	scan(t, b)
	writeFile(t, c.Dir(), plain, "edited on c")
	scan(t, c)
	rbc, rcb = exchange(t, b, c)
	assert.Equal(t, rbc.Head, rcb.Head)
	converged(t, b, c)
	noNestedCopies(t, b)
	for _, v := range []string{"edited on b", "edited on c"} {
		assert.True(t, contents(t, b)[v], "%q kept as a file", v)
	}
}

// Same tree, different heads: the larger head waits for the smaller side
// to merge. When the waiting side's head then changes (here a local edit
// and its revert) and becomes the smaller, it holds the peer's head already:
// the peer's next announcement asks for no bundle, and ApplyBundle of the
// new head on the peer's side says UpToDate too. Both wait forever unless
// the held head is integrated (IntegrateHead).
func TestIntegrateHeldHeadWhenOurHeadChanged(t *testing.T) {
	p, q := pair(t, map[string]string{"x": "x0"})
	writeFile(t, p.Dir(), "same.txt", "same")
	scan(t, p)
	writeFile(t, q.Dir(), "same.txt", "same")
	scan(t, q)
	if head(t, q).String() < head(t, p).String() {
		p, q = q, p
	}
	// q is the larger: it keeps p's head without merging.
	require.Equal(t, UpToDate, give(t, p, q, "PPPPPPP-P").Kind)
	ph := head(t, p)
	for i := 0; head(t, q).String() > ph.String(); i++ {
		require.Less(t, i, 64)
		writeFile(t, q.Dir(), "x", "tmp")
		scan(t, q)
		writeFile(t, q.Dir(), "x", "x0")
		scan(t, q)
	}
	// Now p is the larger: it waits for q in turn.
	require.Equal(t, UpToDate, give(t, q, p, "QQQQQQQ-Q").Kind)
	held, err := q.HasCommit(ph)
	require.NoError(t, err)
	require.True(t, held, "q holds p's head: a fetch would bring nothing")
	require.NotEqual(t, head(t, p), head(t, q))

	// p's head is announced again: q integrates what it holds.
	r, err := q.IntegrateHead(t.Context(), ph, "PPPPPPP-P")
	require.NoError(t, err)
	assert.Equal(t, Merged, r.Kind)
	assert.Empty(t, r.Changed)
	assert.Equal(t, FastForward, give(t, q, p, "QQQQQQQ-Q").Kind)
	assert.Equal(t, head(t, p), head(t, q))
	converged(t, p, q)

	// Announced again once converged: nothing to do, no scan needed.
	r, err = p.IntegrateHead(t.Context(), head(t, q), "QQQQQQQ-Q")
	require.NoError(t, err)
	assert.Equal(t, UpToDate, r.Kind)
	_, err = p.IntegrateHead(t.Context(), Hash{1}, "QQQQQQQ-Q")
	assert.Error(t, err, "a commit not held here")
}
