package gitstore

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blobID is git's object name of content as a blob.
func blobID(content []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write(content)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestRandomizedConvergence: three stores edit the same few files and
// apply each other's bundles in random order (conflicts, edit/delete,
// both-add, merges of merges). In the end, after everyone has heard from
// everyone, all three have identical trees, and no version that any of
// them ever committed is lost from anyone's history.
func TestRandomizedConvergence(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("LOUD SKIP: git CLI not installed; .ci/run installs it")
	}
	rounds := 40
	if v, err := strconv.Atoi(os.Getenv("PEERSYNC_CONVERGENCE_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (set PEERSYNC_CONVERGENCE_SEED to replay)", seed)
	if v, err := strconv.ParseUint(os.Getenv("PEERSYNC_CONVERGENCE_SEED"), 10, 64); err == nil {
		seed = v
	}
	convergence(t, seed, rounds)
}

// A seed that once failed: with clocks a minute apart, a child older than
// its parent and a folder tree met again (a revert), a full bundle left a
// blob out ("missing object (history not connected)") when the object walk
// took commits in committer-time order rather than parents first.
func TestConvergenceSkewedClocksRevert(t *testing.T) {
	convergence(t, 1796555349866228424, 200)
}

// convergence runs rounds random edits and exchanges among three stores
// from seed, then checks they converge with every version kept.
func convergence(t *testing.T, seed uint64, rounds int) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("LOUD SKIP: git CLI not installed; .ci/run installs it")
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	names := []string{"PEERA", "PEERB", "PEERC"}
	stores := make([]*Store, len(names))
	for i, n := range names {
		// Clocks start a minute apart and tick a second per commit, so
		// committer times collide sometimes and the tie-breaks get exercised.
		stores[i] = newTestStore(t, n, epoch.Add(time.Duration(i)*time.Minute))
	}
	paths := []string{"a.txt", "b.txt", "dir/c.txt", "dir/d.txt", "e.txt"}
	committed := map[string]bool{} // blob IDs of every version ever committed

	edit := func(s *Store, who string) {
		for k := rng.IntN(3); k >= 0; k-- {
			p := paths[rng.IntN(len(paths))]
			abs := filepath.Join(s.Dir(), filepath.FromSlash(p))
			if rng.IntN(4) == 0 {
				_ = os.Remove(abs)
				continue
			}
			writeFile(t, s.Dir(), p, fmt.Sprintf("%s %d %d\n", who, rng.IntN(1000), rng.IntN(1000)))
		}
		for _, c := range scan(t, s) {
			if c.Action == ActionDelete {
				continue
			}
			b, err := os.ReadFile(filepath.Join(s.Dir(), filepath.FromSlash(c.Path)))
			require.NoError(t, err)
			committed[blobID(b)] = true
		}
	}
	send := func(from, to int) {
		var buf bytes.Buffer
		_, err := stores[from].WriteBundle(context.Background(), &buf, []Hash{head(t, stores[to])})
		if errors.Is(err, ErrNothingToSend) {
			return
		}
		require.NoError(t, err)
		_, err = stores[to].ApplyBundle(context.Background(), &buf, names[from])
		require.NoError(t, err, "%s -> %s", names[from], names[to])
		// Conflict copies are versions too.
		for _, c := range scan(t, stores[to]) {
			require.Fail(t, "applying left uncommitted changes", "%v", c)
		}
	}
	for r := 0; r < rounds; r++ {
		i := rng.IntN(len(stores))
		if rng.IntN(2) == 0 {
			edit(stores[i], names[i])
		} else if j := rng.IntN(len(stores)); j != i {
			send(i, j)
		}
	}
	// Everyone hears from everyone until nothing moves (bounded).
	for pass := 0; pass < 6; pass++ {
		for i := range stores {
			for j := range stores {
				if i != j {
					send(i, j)
				}
			}
		}
	}
	tree0 := gitStore(t, stores[0], "rev-parse", "HEAD^{tree}")
	files0 := folderFiles(t, stores[0].Dir())
	for i, s := range stores {
		assert.Equal(t, tree0, gitStore(t, s, "rev-parse", "HEAD^{tree}"), "%s tree", names[i])
		assert.Equal(t, files0, folderFiles(t, s.Dir()), "%s folder", names[i])
		assert.Empty(t, scan(t, s))
		fsck(t, s)
		reach := map[string]bool{}
		for _, l := range strings.Split(gitStore(t, s, "rev-list", "--objects", "refs/heads/main"), "\n") {
			if h, _, _ := strings.Cut(l, " "); h != "" {
				reach[h] = true
			}
		}
		for b := range committed {
			assert.True(t, reach[b], "%s lost committed version %s", names[i], b)
		}
	}
}
