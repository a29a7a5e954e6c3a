package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// chaosRoundsEnv sets how many kill -9 rounds TestChaosKill9 runs (default
// 20; .ci/run sets 20, scripts/chaos.sh 200 or more).
const chaosRoundsEnv = "PEERSYNC_CHAOS_ROUNDS"

// chaosNode is one desktop installation whose daemon the chaos test kills
// and restarts.
type chaosNode struct {
	bin, name, home, folder string
	port                    int
	id                      string
	logs                    testutil.SyncBuffer // every incarnation's output, in order

	mu      gosync.Mutex // guards cmd and startAt
	cmd     *exec.Cmd    // the running daemon, nil while down
	startAt int          // length of logs when cmd started
}

func (n *chaosNode) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(n.bin, append([]string{"--home", n.home}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "desktop %v: %s", args, errb.String())
	return out.String()
}

// start launches the daemon; it does not wait for it to be ready.
func (n *chaosNode) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(n.bin, "--home", n.home, "run", "--listen", fmt.Sprintf("127.0.0.1:%d", n.port),
		"--ui", "none", "--scan-interval", "200ms", "--no-discovery")
	fmt.Fprintf(&n.logs, "==== start %s\n", time.Now().Format(time.StampMilli))
	cmd.Stdout, cmd.Stderr = &n.logs, &n.logs
	require.NoError(t, cmd.Start())
	n.mu.Lock()
	n.cmd, n.startAt = cmd, len(n.logs.String())
	n.mu.Unlock()
}

// kill9 kills the daemon with SIGKILL and reaps it.
func (n *chaosNode) kill9(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	cmd := n.cmd
	n.cmd = nil
	n.mu.Unlock()
	require.NotNil(t, cmd, "%s is not running", n.name)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err := cmd.Wait()
	fmt.Fprintf(&n.logs, "==== kill -9 %s: %v\n", time.Now().Format(time.StampMilli), err)
}

// stop ends the daemon with SIGINT and checks that it exits cleanly.
func (n *chaosNode) stop(t *testing.T) {
	n.mu.Lock()
	cmd := n.cmd
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "%s must exit cleanly on SIGINT", n.name)
	case <-time.After(30 * time.Second): // a hang, not a performance bound
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop within 30 s of SIGINT", n.name)
	}
}

// ready reports whether the running daemon has logged "running" (with
// its listening address), the line the engine writes once it serves. (Not
// runtime.json: it is rewritten from the engine's Status, which can wait
// behind a long store operation, so it may lag well behind the daemon.)
func (n *chaosNode) ready() (bool, string) {
	n.mu.Lock()
	cmd, from := n.cmd, n.startAt
	n.mu.Unlock()
	if cmd == nil {
		return false, n.name + " is not running"
	}
	return strings.Contains(n.logs.String()[from:], "msg=running"), n.name + ` has not logged "running" yet`
}

// commits returns the commits of the folder's history (refs/heads/main),
// read with the git CLI while the daemon may be writing; a read that races
// with a ref update is retried.
func (n *chaosNode) commits(t *testing.T) []string {
	t.Helper()
	var lastErr error
	for try := 0; try < 5; try++ {
		cmd := exec.Command("git", "--git-dir="+filepath.Join(n.folder, ".peersync"), "rev-list", "refs/heads/main")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			if strings.Contains(errb.String(), "unknown revision") || strings.Contains(errb.String(), "bad revision") {
				return nil // no commit yet
			}
			lastErr = fmt.Errorf("%v: %s", err, errb.String())
			continue
		}
		return strings.Fields(out.String())
	}
	t.Fatalf("git rev-list in %s: %v", n.name, lastErr)
	return nil
}

func (n *chaosNode) head(t *testing.T) string {
	c := n.commits(t)
	if len(c) == 0 {
		return ""
	}
	return c[0]
}

// waitUntil polls cond every 20 ms until it holds, failing after limit
// with cond's last reason. The daemons are separate processes with no event
// to wait on, so polling their files is the only signal; limit only bounds
// a hang.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	lastLog := time.Now()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Since(lastLog) > 10*time.Second { // progress, for a slow run's log
			t.Logf("waiting for %s: %s", what, why)
			lastLog = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %s", what, limit, why)
		}
		time.Sleep(20 * time.Millisecond) // polling interval (see above)
	}
}

// chaosWriter edits, adds and deletes files on random nodes (running or
// not) until stop is closed.
func chaosWriter(nodes []*chaosNode, rnd *rand.Rand, stop <-chan struct{}, ops *int) error {
	for {
		// Pace: one operation every 20–100 ms, like a busy user or a build
		// tool writing; not a wait for anything.
		select {
		case <-stop:
			return nil
		case <-time.After(time.Duration(20+rnd.IntN(80)) * time.Millisecond):
		}
		n := nodes[rnd.IntN(len(nodes))]
		p := filepath.Join(n.folder, fmt.Sprintf("d%d", rnd.IntN(4)), fmt.Sprintf("f%02d.txt", rnd.IntN(12)))
		if _, err := os.Stat(p); err == nil && rnd.IntN(5) == 0 {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				return err
			}
		} else {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			data := make([]byte, 10+rnd.IntN(4000))
			for i := range data {
				data[i] = byte('a' + rnd.IntN(26))
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return err
			}
		}
		*ops++
	}
}

// TestChaosKill9 is the process-level crash promise: four daemons syncing a
// folder in a full mesh, while files are edited, added and deleted on
// random daemons and one daemon at a time is killed with SIGKILL at a
// random moment and restarted. After the writes stop and the daemons are
// quiet: the four trees are identical, the four heads are equal, every
// commit seen in any history during the run (in particular just before each
// kill) is in every final history, and `git fsck --strict` is clean.
func TestChaosKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs four desktop processes")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("LOUD SKIP: the git CLI is needed to check the histories; .ci/run installs it")
	}
	rounds := 20
	if v := os.Getenv(chaosRoundsEnv); v != "" {
		var err error
		rounds, err = strconv.Atoi(v)
		require.NoError(t, err, "%s=%q", chaosRoundsEnv, v)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d rounds", seed, rounds)
	rnd := rand.New(rand.NewPCG(seed, 1))

	bin := testutil.BuildBinary(t, "./examples/desktop")
	nodes := make([]*chaosNode, 4)
	for i := range nodes {
		n := &chaosNode{bin: bin, name: fmt.Sprintf("node%d", i), home: filepath.Join(t.TempDir(), "home"),
			folder: t.TempDir(), port: testutil.FreeUDPPort(t)}
		n.id = strings.TrimSpace(n.run(t, "init", "--name", n.name))
		n.run(t, "folder", "add", "--id", "docs", n.folder)
		nodes[i] = n
	}
	for _, n := range nodes { // full mesh, everyone knows everyone's address
		for _, o := range nodes {
			if o != n {
				n.run(t, "peer", "add", "--name", o.name, "--addr", fmt.Sprintf("127.0.0.1:%d", o.port), "--folders", "docs", o.id)
			}
		}
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(t)
		}
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("logs of %s (last 6000 bytes):\n%s", n.name, tail(n.logs.String(), 6000))
			}
		}
	})
	for _, n := range nodes {
		n.start(t)
	}
	for _, n := range nodes {
		waitUntil(t, 3*time.Minute, n.name+" ready", n.ready)
	}

	seen := map[string]string{} // commit → where it was first seen
	collect := func(when string) {
		for _, n := range nodes {
			for _, c := range n.commits(t) {
				if _, ok := seen[c]; !ok {
					seen[c] = n.name + " " + when
				}
			}
		}
	}

	stop := make(chan struct{})
	var ops int
	writerDone := make(chan error, 1)
	go func() { writerDone <- chaosWriter(nodes, rand.New(rand.NewPCG(seed, 2)), stop, &ops) }()
	writerStopped := false
	stopWriter := func() {
		if !writerStopped {
			writerStopped = true
			close(stop)
			require.NoError(t, <-writerDone, "writer")
		}
	}
	defer stopWriter()

	for r := 0; r < rounds; r++ {
		victim := nodes[rnd.IntN(len(nodes))]
		// A random moment in the victim's life: 0–1.5 s after it became
		// ready (the round's randomness, not a wait for readiness).
		<-time.After(time.Duration(rnd.IntN(1500)) * time.Millisecond)
		collect(fmt.Sprintf("before kill %d", r))
		victim.kill9(t)
		if rnd.IntN(3) == 0 { // sometimes stay down while the others write on
			<-time.After(time.Duration(rnd.IntN(500)) * time.Millisecond)
		}
		victim.start(t)
		waitUntil(t, 3*time.Minute, fmt.Sprintf("%s ready after kill %d", victim.name, r), victim.ready)
		collect(fmt.Sprintf("after restart %d", r))
		if (r+1)%10 == 0 {
			t.Logf("%d rounds done, %d commits seen", r+1, len(seen))
		}
	}
	stopWriter()
	collect("end of writes")
	t.Logf("%d rounds, %d file operations, %d commits seen", rounds, ops, len(seen))

	// Quiet: the trees and heads converge.
	converge := time.Now()
	waitUntil(t, 3*time.Minute, "convergence", func() (bool, string) {
		for _, n := range nodes[1:] {
			if same, why := testutil.SameTree(nodes[0].folder, n.folder); !same {
				return false, nodes[0].name + " vs " + n.name + ": " + why
			}
		}
		var heads []string
		for _, n := range nodes {
			heads = append(heads, n.head(t))
		}
		for _, h := range heads[1:] {
			if h != heads[0] {
				return false, fmt.Sprintf("trees agree, heads differ: %v", heads)
			}
		}
		return true, ""
	})
	t.Logf("converged %v after the last write", time.Since(converge).Round(time.Millisecond))
	collect("converged")

	// The stores are checked at rest: a running daemon's background
	// maintenance may be removing the packs it just consolidated, which
	// git fsck, listing the packs first, reports as "index not opened".
	for _, n := range nodes {
		n.stop(t)
	}
	for _, n := range nodes {
		have := map[string]bool{}
		for _, c := range n.commits(t) {
			have[c] = true
		}
		var missing []string
		for c, where := range seen {
			if !have[c] {
				missing = append(missing, c+" (seen in "+where+")")
			}
		}
		sort.Strings(missing)
		assert.Empty(t, missing, "commits missing from %s's history", n.name)
		testutil.Git(t, n.folder, "fsck", "--strict", "--no-dangling")
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
