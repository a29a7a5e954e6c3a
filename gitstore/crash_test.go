//go:build unix

package gitstore

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// crashIterations is the number of kill -9 rounds: 5 by default,
// PEERSYNC_CRASH_ITERATIONS in CI (which sets 50).
func crashIterations(t *testing.T) int {
	if v := os.Getenv("PEERSYNC_CRASH_ITERATIONS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "PEERSYNC_CRASH_ITERATIONS")
		return n
	}
	return 5
}

// TestCrashSafety runs internal/crashhelper (edits, scans, restores, bundle
// exchanges with fast-forwards and merges between two folders, and the
// background maintenance they start: the helper is built with
// maintain_crashtest.go, whose low thresholds make it run every few
// scans), kills it
// with SIGKILL at a random moment, and checks each folder: Open succeeds,
// git fsck --strict is clean, every content the helper saw committed is
// still reachable, and a Scan brings main in line with the folder. The next
// round restarts on what the kill left.
func TestCrashSafety(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	bin := filepath.Join(t.TempDir(), "crashhelper")
	build := exec.Command("go", "build", "-tags", "peersync_crashtest", "-o", bin, "./internal/crashhelper")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build crashhelper: %s", out)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	work := t.TempDir()
	for i := range crashIterations(t) {
		cmd := exec.Command(bin, "-dir", work, "-seed", fmt.Sprint(seed+uint64(i)))
		var stderr testutil.SyncBuffer // written by exec's copier while we read
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// Most rounds wait for the helper to be running; some kill it while
		// it opens (or creates) the stores.
		if rng.IntN(5) > 0 {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			require.Equal(t, "ready\n", line, "helper: %s", stderr.String())
		}
		time.Sleep(time.Duration(rng.IntN(800)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err = cmd.Wait()
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok && ee.Sys().(syscall.WaitStatus).Signaled(),
			"round %d: helper ended on its own (%v): %s", i, err, stderr.String())
		for _, name := range []string{"a", "b"} {
			checkAfterCrash(t, work, name, i)
		}
	}
}

// checkAfterCrash reopens the folder work/name after a kill and checks it.
func checkAfterCrash(t *testing.T, work, name string, round int) {
	t.Helper()
	dir := filepath.Join(work, name)
	logged, _ := os.ReadFile(filepath.Join(work, name+".committed"))
	if _, err := os.Lstat(filepath.Join(dir, GitDirName)); os.IsNotExist(err) {
		require.Empty(t, logged, "round %d %s: marker gone but contents were committed", round, name)
		return
	}
	// A maintenance run the kill cut short leaves its temporary pack.
	maint := 0
	packs, _ := os.ReadDir(filepath.Join(dir, GitDirName, "objects", "pack"))
	for _, p := range packs {
		if strings.HasPrefix(p.Name(), packTmpPrefix+"maint_") {
			maint++
		}
	}
	s, err := Open(Config{Dir: dir, AuthorName: name})
	require.NoError(t, err, "round %d %s: open", round, name)
	defer s.Close()
	fsck(t, s)

	// Every content recorded as committed is reachable from some ref.
	reach := map[string]bool{}
	for _, l := range strings.Split(gitStore(t, s, "rev-list", "--objects", "--all"), "\n") {
		if h, _, _ := strings.Cut(l, " "); h != "" {
			reach[h] = true
		}
	}
	n := 0
	for _, h := range strings.Split(string(logged), "\n") {
		if len(h) != 40 {
			continue // a line cut by the kill (never seen, but harmless)
		}
		n++
		require.True(t, reach[h], "round %d %s: committed blob %s lost", round, name, h)
	}

	// A scan brings main in line with the folder.
	_, err = s.Scan(context.Background())
	if err != nil {
		packs, _ := os.ReadDir(filepath.Join(dir, GitDirName, "objects", "pack"))
		for _, p := range packs {
			t.Logf("objects/pack/%s", p.Name())
		}
	}
	require.NoError(t, err, "round %d %s: scan", round, name)
	s.mu.Lock()
	_, root, err := s.headTreeLocked()
	s.mu.Unlock()
	require.NoError(t, err)
	want := map[string]plumbing.Hash{}
	for p, e := range root.flat() {
		want[p] = e.hash
	}
	got := map[string]plumbing.Hash{}
	tmps := 0
	for p, content := range folderFiles(t, dir) {
		if strings.HasPrefix(filepath.Base(p), tmpPrefix) {
			tmps++
			continue
		}
		got[p] = plumbing.ComputeHash(plumbing.BlobObject, []byte(content))
	}
	assert.Equal(t, want, got, "round %d %s: main differs from the folder after a scan", round, name)
	fsck(t, s)
	t.Logf("round %d %s: %d committed contents checked, %d files, %d leftover temp files, %d maintenance runs cut short",
		round, name, n, len(got), tmps, maint)
}
