package sync

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// heardLog records the heads a node heard (see testHooks.heard).
type heardLog struct {
	mu   gosync.Mutex
	list []heardHead
}

type heardHead struct {
	from  crypto.DeviceID
	head  gitstore.Hash
	fetch bool
}

func (l *heardLog) add(from crypto.DeviceID, _ string, head gitstore.Hash, fetch bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, heardHead{from, head, fetch})
}

func (l *heardLog) heads(from crypto.DeviceID) []heardHead {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(l.list), func(h heardHead) bool { return h.from != from })
}

func newHearingNode(t *testing.T, name string) (*node, *heardLog) {
	l := &heardLog{}
	return newNodeCfg(t, name, func(c *Config) { c.test = &testHooks{heard: l.add} }), l
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"--git-dir", filepath.Join(dir, ".peersync")}, args...)...).CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.TrimSpace(string(out))
}

func absent(dir, rel string) bool {
	_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
	return os.IsNotExist(err)
}

// TestDirectionsThreeEngines: A only sends to B; B syncs both ways with A
// and only receives from C; C syncs both ways with B. A's file reaches B
// but not C (B never sends to C); C's file reaches B but not A (A never
// applies B's); B's own edits stay on B, counted as not sent, and
// RevertFolder puts B back to C's state as new commits.
func TestDirectionsThreeEngines(t *testing.T) {
	a, aHeard := newHearingNode(t, "a")
	b, _ := newHearingNode(t, "b")
	c, cHeard := newHearingNode(t, "c")
	a.start(t)
	c.start(t)
	A, B, C := a.e.DeviceID(), b.e.DeviceID(), c.e.DeviceID()
	require.NoError(t, a.e.SetPeer(PeerConfig{Device: B, Folders: []string{"docs"}, Directions: map[string]Direction{"docs": DirSend}}))
	require.NoError(t, c.e.SetPeer(PeerConfig{Device: B, Folders: []string{"docs"}}))
	require.NoError(t, b.e.SetPeer(PeerConfig{Device: A, Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	require.NoError(t, b.e.SetPeer(PeerConfig{Device: C, Addrs: []string{c.e.Addr().String()}, Folders: []string{"docs"},
		Directions: map[string]Direction{"docs": DirReceive}}))
	b.start(t)

	write(t, a.dir, "a.txt", "from a")
	eventually(t, "a.txt reaches b", fileIs(b.dir, "a.txt", "from a"))
	write(t, c.dir, "c.txt", "from c")
	eventually(t, "c.txt reaches b", fileIs(b.dir, "c.txt", "from c"))

	// A heard B's head holding c.txt and did not fetch it.
	bHead := func() gitstore.Hash { return b.e.Status().Folders[0].Head }
	eventually(t, "a hears b's head with c.txt", func() bool {
		h := bHead()
		return slices.ContainsFunc(aHeard.heads(B), func(x heardHead) bool { return x.head == h })
	})
	for _, h := range aHeard.heads(B) {
		assert.False(t, h.fetch, "a (send-only) decided to fetch b's head %s", h.head)
	}

	write(t, b.dir, "b.txt", "from b")
	eventually(t, "b counts its changes not sent to c", func() bool { return b.e.Status().Folders[0].NotSent == 2 })
	assert.Equal(t, 0, a.e.Status().Folders[0].NotSent, "a is not receive-only")

	// A marker a full round later: C's second file reaches B. By then C
	// has never heard a head of B, and holds neither a.txt nor b.txt.
	write(t, c.dir, "c2.txt", "again")
	eventually(t, "c2.txt reaches b", fileIs(b.dir, "c2.txt", "again"))
	assert.Empty(t, cHeard.heads(B), "b (receive-only with c) announced its head to c")
	assert.True(t, absent(c.dir, "a.txt") && absent(c.dir, "b.txt"))
	assert.True(t, absent(a.dir, "c.txt") && absent(a.dir, "b.txt"))
	assert.NotContains(t, gitIn(t, a.dir, "log", "--format=%s", "main"), "c.txt")
	assert.NotContains(t, gitIn(t, c.dir, "log", "--format=%s", "main"), "a.txt")

	eventually(t, "b counts its changes not sent to c (c2 too)", func() bool { return b.e.Status().Folders[0].NotSent == 2 })
	changes, err := b.e.RevertFolder(context.Background(), "docs")
	require.NoError(t, err)
	var paths []string
	for _, ch := range changes {
		assert.Equal(t, gitstore.ActionDelete, ch.Action)
		paths = append(paths, ch.Path)
	}
	slices.Sort(paths)
	assert.Equal(t, []string{"a.txt", "b.txt"}, paths)
	assert.True(t, absent(b.dir, "a.txt") && absent(b.dir, "b.txt"))
	assert.True(t, fileIs(b.dir, "c2.txt", "again")())
	assert.Equal(t, 0, b.e.Status().Folders[0].NotSent)
	// git: B's tree is the one last received from C, and b.txt's version
	// is still in B's history.
	assert.Equal(t, gitIn(t, b.dir, "rev-parse", "refs/peers/"+C.String()+"/main^{tree}"), gitIn(t, b.dir, "rev-parse", "main^{tree}"))
	assert.Equal(t, "from b", gitIn(t, b.dir, "show", gitIn(t, b.dir, "log", "-1", "--format=%H", "--diff-filter=A", "--", "b.txt")+":b.txt"))

	// Reverting is for receive-only folders.
	_, err = a.e.RevertFolder(context.Background(), "docs")
	assert.ErrorContains(t, err, "not receive-only")
}

// TestWantRefusedWhenNotSending: a peer's want is refused, with no bundle
// byte, when we only receive the folder from it, when the folder is
// paused, and when the peer is paused (then it does not even get in).
func TestWantRefusedWhenNotSending(t *testing.T) {
	for name, tc := range map[string]struct {
		peer        func(PeerConfig) PeerConfig
		pauseFolder bool
	}{
		"receive-only": {peer: func(p PeerConfig) PeerConfig {
			p.Directions = map[string]Direction{"docs": DirReceive}
			return p
		}},
		"folder paused": {peer: func(p PeerConfig) PeerConfig { return p }, pauseFolder: true},
		"peer paused":   {peer: func(p PeerConfig) PeerConfig { p.Paused = true; return p }},
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t, "victim")
			write(t, n.dir, "private.txt", "not yours")
			n.start(t)
			f := newFakePeer(t)
			require.NoError(t, n.e.SetPeer(tc.peer(PeerConfig{Device: f.id.DeviceID(), Folders: []string{"docs"}})))
			require.NoError(t, n.e.PauseFolder("docs", tc.pauseFolder))
			_, err := n.e.Scan(context.Background(), "docs")
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := f.tr.Dial(ctx, n.e.Addr().String(), n.e.DeviceID())
			if name == "peer paused" {
				assert.ErrorIs(t, err, transport.ErrRefused)
				return
			}
			require.NoError(t, err)
			defer c.Close()
			s, err := c.OpenStream(ctx)
			require.NoError(t, err)
			sendJSON(t, s, message{Type: msgWant, Proto: protocolVersion, Folder: "docs"})
			// The victim may have answered and stopped reading already, which
			// cancels our side's write half: Close then reports that, and the
			// answer is still there to read.
			_ = s.Close()
			raw, err := transport.ReadFrame(s, 0)
			require.NoError(t, err)
			a, err := decodeAnswer(raw)
			require.NoError(t, err)
			assert.Equal(t, ansError, a.Type)
			rest, err := io.ReadAll(s)
			require.NoError(t, err)
			assert.Empty(t, rest, "no bundle bytes follow a refusal")
		})
	}
}

// TestSealedBundlesFollowDirections: a sealed bundle is not made for a peer
// we only receive from, and one from a peer we only send to is not applied.
func TestSealedBundlesFollowDirections(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	t.Cleanup(func() { _ = a.e.Close(); _ = b.e.Close() })
	A, B := a.e.DeviceID(), b.e.DeviceID()
	require.NoError(t, a.e.SetPeer(PeerConfig{Device: B, Folders: []string{"docs"}}))
	require.NoError(t, b.e.SetPeer(PeerConfig{Device: A, Folders: []string{"docs"}, Directions: map[string]Direction{"docs": DirSend}}))
	write(t, a.dir, "a.txt", "from a")
	ctx := context.Background()
	_, err := a.e.Scan(ctx, "docs")
	require.NoError(t, err)

	var sealed strings.Builder
	_, err = a.e.ExportSealedBundle(ctx, "docs", nil, []crypto.DeviceID{B}, &sealed)
	require.NoError(t, err)
	_, _, err = b.e.ImportSealedBundle(ctx, "docs", strings.NewReader(sealed.String()))
	assert.ErrorContains(t, err, "only sent to that peer")
	assert.True(t, absent(b.dir, "a.txt"))

	require.NoError(t, a.e.SetPeer(PeerConfig{Device: B, Folders: []string{"docs"}, Directions: map[string]Direction{"docs": DirReceive}}))
	_, err = a.e.ExportSealedBundle(ctx, "docs", nil, []crypto.DeviceID{B}, io.Discard)
	assert.ErrorContains(t, err, "only received from")
}
