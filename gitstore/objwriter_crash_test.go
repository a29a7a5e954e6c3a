//go:build unix

package gitstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPackCrashHelper is the child process of TestPackWriterKilled: it
// scans the folder named by PEERSYNC_PACK_CRASH_DIR (big scans: the pack
// path) until killed.
func TestPackCrashHelper(t *testing.T) {
	dir := os.Getenv("PEERSYNC_PACK_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := Open(Config{Dir: dir, Create: true, AuthorName: "crash"})
	require.NoError(t, err)
	fmt.Println("ready")
	for {
		_, err := s.Scan(context.Background())
		require.NoError(t, err)
	}
}

// TestPackWriterKilled kills a process in the middle of scans that write
// packs (SIGKILL at a random moment) and checks the folder each time: Open
// works, git fsck --strict is clean, and the next scan commits every file.
func TestPackWriterKilled(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	n, interrupted := 0, 0
	for round := range crashIterations(t) {
		// New files each round, so every scan of the child writes a pack.
		for i := 0; i < 400; i++ {
			writeFile(t, dir, fmt.Sprintf("r%02d/d%d/f%03d", round, i%7, i), strings.Repeat(fmt.Sprint(round, i), 1+rng.IntN(200)))
			n++
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestPackCrashHelper$")
		cmd.Env = append(os.Environ(), "PEERSYNC_PACK_CRASH_DIR="+dir)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		buf := make([]byte, 6)
		_, err = out.Read(buf)
		require.NoError(t, err)
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		cmd.Wait()

		s, err := Open(Config{Dir: dir, AuthorName: "check"})
		require.NoError(t, err, "round %d", round)
		fsck(t, s)
		if made := len(scan(t, s)); made > 0 {
			interrupted++ // the kill came before the child's scan ended
		}
		files := strings.Split(gitStore(t, s, "ls-tree", "-r", "--name-only", "HEAD"), "\n")
		assert.Len(t, files, n, "round %d: every file committed", round)
		fsck(t, s)
		require.NoError(t, s.Close())
	}
	t.Logf("%d of %d rounds killed a scan before it ended", interrupted, crashIterations(t))
	// Temporary packs a kill left are never read; only complete packs
	// (with their index) and loose objects are.
	entries, err := os.ReadDir(filepath.Join(dir, GitDirName, "objects", "pack"))
	require.NoError(t, err)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "pack-") && strings.HasSuffix(name, ".pack") {
			assert.FileExists(t, filepath.Join(dir, GitDirName, "objects", "pack", strings.TrimSuffix(name, ".pack")+".idx"))
		}
	}
}
