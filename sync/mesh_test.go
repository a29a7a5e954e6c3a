package sync

import (
	"context"
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/internal/testutil"
)

// meshNodes is the size of the mesh.
const meshNodes = 5

// meshEdit is one edit made in the mesh: its content is unique, so its
// blob names it in every history.
type meshEdit struct {
	node    int
	path    string
	content string
}

// blob is the git object ID of the edit's content.
func (m meshEdit) blob() string {
	return fmt.Sprintf("%x", sha1.Sum([]byte(fmt.Sprintf("blob %d\x00%s", len(m.content), m.content))))
}

// mesh is five engines in one process, every one a peer of every other,
// all sharing "docs", on loopback.
type mesh struct {
	t     *testing.T
	nodes []*node
	recs  []*recorder
	cut   map[[2]int]bool // links removed from both sides' tables
}

func newMesh(t *testing.T) *mesh {
	m := &mesh{t: t, cut: map[[2]int]bool{}}
	for i := range meshNodes {
		n := newNodeCfg(t, fmt.Sprintf("n%d", i), func(c *Config) {
			c.ScanInterval = time.Second // the watcher commits edits at once
			c.AnnounceInterval = time.Second
		})
		n.start(t)
		m.nodes = append(m.nodes, n)
		m.recs = append(m.recs, record(n.e))
	}
	for i := range meshNodes {
		for j := range meshNodes {
			if i != j {
				m.link(i, j)
			}
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, rec := range m.recs { // what each engine went through
			evs := rec.all(func(Event) bool { return true })
			for _, ev := range evs[max(0, len(evs)-25):] {
				t.Logf("n%d: %s", i, ev)
			}
		}
	})
	return m
}

// link puts j in i's sync table, with its address.
func (m *mesh) link(i, j int) {
	o := m.nodes[j]
	require.NoError(m.t, m.nodes[i].e.AddPeer(PeerConfig{Device: o.e.DeviceID(), Name: fmt.Sprintf("n%d", j),
		Addrs: []string{o.e.Addr().String()}, Folders: []string{"docs"}}))
}

// cutLink takes i and j out of each other's tables: their connection is
// closed and refused until heal.
func (m *mesh) cutLink(i, j int) {
	require.NoError(m.t, m.nodes[i].e.RemovePeer(m.nodes[j].e.DeviceID()))
	require.NoError(m.t, m.nodes[j].e.RemovePeer(m.nodes[i].e.DeviceID()))
	m.cut[[2]int{i, j}] = true
}

func (m *mesh) heal(i, j int) {
	m.link(i, j)
	m.link(j, i)
	delete(m.cut, [2]int{i, j})
}

// drop closes the connection from i to j, if any; the dial loop makes a
// new one.
func (m *mesh) drop(i, j int) {
	e := m.nodes[i].e
	e.mu.Lock()
	pc := e.connLocked(m.nodes[j].e.DeviceID())
	e.mu.Unlock()
	if pc != nil {
		_ = pc.c.Close()
	}
}

// localCommits counts the commits made on node i to path with the given
// action (delete, or add/modify when del is false). A commit made here
// comes from a scan, or from the scan a bundle's apply makes first (which
// reports no EventLocalChanges), so the history is asked.
func (m *mesh) localCommits(i int, path string, del bool) int {
	st, err := m.nodes[i].e.store("docs")
	if err != nil {
		return -1
	}
	changes, err := st.History(context.Background(), path, 0)
	if err != nil {
		// Seen under load while bundles are applied: "object not
		// found" from the read view; the next poll asks again.
		m.t.Logf("n%d: history of %s: %v", i, path, err)
		return -1
	}
	n := 0
	for _, c := range changes {
		if c.From == "" && (c.Action == gitstore.ActionDelete) == del {
			n++
		}
	}
	return n
}

// edit writes content to path on node i (atomically: a temporary file
// the scan skips, renamed) and waits until i has committed it.
func (m *mesh) edit(i int, path, content string) {
	t := m.t
	dir := m.nodes[i].dir
	before := -1
	for before < 0 {
		before = m.localCommits(i, path, false)
	}
	p := filepath.Join(dir, filepath.FromSlash(path))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	tmp := filepath.Join(dir, ".peersync-tmp-mesh")
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, p))
	m.eventually(fmt.Sprintf("n%d commits %s", i, path), func() bool { return m.localCommits(i, path, false) > before })
}

// remove deletes path on node i and waits until i has committed that.
func (m *mesh) remove(i int, path string) {
	before := -1
	for before < 0 {
		before = m.localCommits(i, path, true)
	}
	if err := os.Remove(filepath.Join(m.nodes[i].dir, filepath.FromSlash(path))); err != nil {
		return // gone meanwhile (a peer's deletion)
	}
	m.eventually(fmt.Sprintf("n%d deletes %s", i, path), func() bool {
		// Or a peer's bundle brought it back (an edit wins over a
		// deletion it did not see) or deleted it first.
		return m.localCommits(i, path, true) > before || exists(m.nodes[i].dir, path)
	})
}

// eventually waits for cond, longer than the package's eventually: a
// scan waits for the applies of four peers' bundles, and under -race on a
// busy machine that takes a while.
func (m *mesh) eventually(what string, cond func() bool) {
	m.t.Helper()
	require.Eventually(m.t, cond, time.Minute, 50*time.Millisecond, what)
}

// converged returns the common head once every engine has it and knows
// that every peer has it too.
func (m *mesh) converged() (gitstore.Hash, bool) {
	var head gitstore.Hash
	for i, n := range m.nodes {
		st := n.e.Status()
		h := st.Folders[0].Head
		if h.IsZero() || (i > 0 && h != head) {
			return head, false
		}
		head = h
		if len(st.Peers) != meshNodes-1 {
			return head, false
		}
		for _, p := range st.Peers {
			if p.Known["docs"] != h {
				return head, false
			}
		}
	}
	return head, true
}

func (m *mesh) waitConverged() gitstore.Hash {
	var head gitstore.Hash
	require.Eventually(m.t, func() bool {
		var ok bool
		head, ok = m.converged()
		return ok
	}, 5*time.Minute, 50*time.Millisecond, "the mesh converges")
	for i, n := range m.nodes[1:] {
		require.Eventually(m.t, func() bool { ok, _ := testutil.SameTree(m.nodes[0].dir, n.dir); return ok },
			10*time.Second, 50*time.Millisecond, "n%d's folder is n0's", i+1)
	}
	return head
}

// meshRounds is the number of rounds: PEERSYNC_MESH_ROUNDS, else 2 (CI:
// the merges of five diverged heads dominate the time).
func meshRounds(t *testing.T) int {
	if s := os.Getenv("PEERSYNC_MESH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "PEERSYNC_MESH_ROUNDS")
		return n
	}
	return 2
}

// TestMesh: five engines, each a peer of every other, edit at random
// (new files, shared files edited on several at once, deletions) while
// links are cut and healed and connections dropped at random. In the end
// every folder is the same, every edit is in every history, and once
// quiet the history stays put: no merge ping-pong.
//
// PEERSYNC_MESH_ROUNDS sets the rounds (2 by default), PEERSYNC_MESH_SEED
// the random choices (the timing is the machine's).
func TestMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("five engines: not in -short")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PEERSYNC_MESH_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "PEERSYNC_MESH_SEED")
	}
	rounds := meshRounds(t)
	t.Logf("PEERSYNC_MESH_SEED=%d PEERSYNC_MESH_ROUNDS=%d", seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 0))
	m := newMesh(t)
	start := time.Now()

	var edits []meshEdit
	cuts, drops := 0, 0
	for r := range rounds {
		for i := range meshNodes {
			for j := i + 1; j < meshNodes; j++ {
				switch {
				case m.cut[[2]int{i, j}]:
					if rng.IntN(2) == 0 {
						m.heal(i, j)
					}
				case rng.IntN(6) == 0:
					m.cutLink(i, j)
					cuts++
				case rng.IntN(4) == 0:
					if rng.IntN(2) == 0 {
						m.drop(i, j)
					} else {
						m.drop(j, i)
					}
					drops++
				}
			}
		}
		for i := range meshNodes {
			for k := range 1 + rng.IntN(2) {
				if rng.IntN(8) == 0 {
					snap, err := testutil.Snapshot(m.nodes[i].dir)
					require.NoError(t, err)
					if len(snap) > 0 {
						paths := slices.Sorted(func(yield func(string) bool) {
							for p := range snap {
								if !yield(p) {
									return
								}
							}
						})
						m.remove(i, paths[rng.IntN(len(paths))])
						continue
					}
				}
				path := fmt.Sprintf("n%d/r%d-%d.txt", i, r, k)
				if rng.IntN(5) < 2 {
					path = fmt.Sprintf("common/c%d.txt", rng.IntN(4)) // edited on several nodes at once
				}
				e := meshEdit{node: i, path: path, content: fmt.Sprintf("n%d round %d edit %d seed %d\n", i, r, k, seed)}
				m.edit(i, e.path, e.content)
				edits = append(edits, e)
			}
		}
	}
	t.Logf("edits done after %s", time.Since(start).Round(time.Millisecond))
	for link := range m.cut {
		m.heal(link[0], link[1])
	}
	head := m.waitConverged()
	applied := 0
	for _, rec := range m.recs {
		applied += len(rec.all(func(ev Event) bool { return ev.Kind == EventRemoteApplied }))
	}
	t.Logf("%d rounds, %d edits, %d links cut, %d connections dropped: converged in %s; %d commits, %s merges, %d bundles applied",
		rounds, len(edits), cuts, drops, time.Since(start).Round(time.Millisecond),
		testutil.CheckOneFilePerCommit(t, m.nodes[0].dir),
		strings.TrimSpace(testutil.Git(t, m.nodes[0].dir, "rev-list", "--merges", "--count", "refs/heads/main")), applied)

	// Every edit is in every history.
	for i, n := range m.nodes {
		objects := map[string]bool{}
		for _, line := range strings.Split(testutil.Git(t, n.dir, "rev-list", "--objects", "refs/heads/main"), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				objects[f[0]] = true
			}
		}
		for _, e := range edits {
			assert.True(t, objects[e.blob()], "n%d's history lacks n%d's edit of %s", i, e.node, e.path)
		}
	}

	// Quiet: one edit on n0, then one on n4, each travel as a
	// fast-forward: each adds exactly one commit everywhere, and between
	// them nothing else is committed or applied anywhere (a merge
	// ping-pong would go on making merges after convergence). The second
	// edit's convergence, which needs every engine to have heard every
	// peer's head, is the marker that quiet time has passed.
	count := func(n *node) int {
		c, err := strconv.Atoi(strings.TrimSpace(testutil.Git(t, n.dir, "rev-list", "--count", "refs/heads/main")))
		require.NoError(t, err)
		return c
	}
	commits := count(m.nodes[0])
	marks := make([]int, meshNodes)
	for i, rec := range m.recs {
		marks[i] = rec.count()
	}
	for step, editor := range []int{0, meshNodes - 1} {
		m.edit(editor, fmt.Sprintf("quiet%d.txt", step), fmt.Sprintf("quiet %d %d\n", step, seed))
		next := m.waitConverged()
		require.NotEqual(t, head, next)
		head = next
		commits++
		for i, n := range m.nodes {
			assert.Equal(t, commits, count(n), "n%d: quiet edit %d alone was committed", i, step)
		}
	}
	for i, rec := range m.recs {
		evs := rec.allFrom(marks[i], func(ev Event) bool {
			return ev.Kind == EventRemoteApplied || ev.Kind == EventLocalChanges
		})
		var kinds []string
		for _, ev := range evs {
			kinds = append(kinds, string(ev.Kind)+" "+strings.Join(append(ev.Paths, changePaths(ev.Changes)...), ","))
		}
		assert.Len(t, evs, 2, "n%d: only the two quiet edits after convergence: %v", i, kinds)
	}
}

func changePaths(cs []gitstore.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Path)
	}
	return out
}
