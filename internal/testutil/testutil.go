// Package testutil holds helpers shared by peersync's tests: building the
// example binaries, running them as real processes, comparing folders, and
// asking the git CLI about a folder's history.
package testutil

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// BuildBinary builds the Go package pkg (e.g. "./examples/desktop", relative
// to the module root) into a temporary directory and returns its path.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	root := ModuleRoot(t)
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Snapshot maps every file below dir (slash paths) to the SHA-256 of its
// content and its executable bit. It skips .peersync and peersync's
// temporary files (.peersync-tmp-*): those are never synced, and one left by
// a crash during a checkout stays until a scan finds it a minute old
// (gitstore/doc.go), so it is not part of the folder's synced content.
func Snapshot(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".peersync" || strings.HasPrefix(d.Name(), ".peersync-tmp-") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".peersync-tmp-") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = fmt.Sprintf("%x %v", sha256.Sum256(b), info.Mode().Perm()&0o100 != 0)
		return nil
	})
	return out, err
}

// SameTree reports whether two folders hold the same files with the same
// content; if not, it says the first difference.
func SameTree(a, b string) (bool, string) {
	sa, err := Snapshot(a)
	if err != nil {
		return false, err.Error()
	}
	sb, err := Snapshot(b)
	if err != nil {
		return false, err.Error()
	}
	var keys []string
	for k := range sa {
		keys = append(keys, k)
	}
	for k := range sb {
		if _, ok := sa[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if sa[k] != sb[k] {
			return false, fmt.Sprintf("%s differs (%q vs %q)", k, sa[k], sb[k])
		}
	}
	return true, ""
}

// Git runs the git CLI on the history of a shared folder
// (git --git-dir=<folder>/.peersync --work-tree=<folder> ARGS...).
func Git(t testing.TB, folder string, args ...string) string {
	t.Helper()
	full := append([]string{"--git-dir=" + filepath.Join(folder, ".peersync"), "--work-tree=" + folder}, args...)
	cmd := exec.Command("git", full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// CheckOneFilePerCommit asserts with the git CLI that every non-merge commit
// in the folder's history touches exactly one file, and that
// `git fsck --strict` is clean. It returns the number of commits.
func CheckOneFilePerCommit(t testing.TB, folder string) int {
	t.Helper()
	Git(t, folder, "fsck", "--strict", "--no-dangling")
	revs := strings.Fields(Git(t, folder, "rev-list", "--no-merges", "refs/heads/main"))
	for _, rev := range revs {
		files := strings.Fields(Git(t, folder, "diff-tree", "--root", "--no-commit-id", "-r", "--name-only", rev))
		if len(files) != 1 {
			t.Errorf("commit %s in %s touches %d files: %v", rev, folder, len(files), files)
		}
	}
	return len(revs)
}

// SyncBuffer is a bytes.Buffer safe for a child process's output copier to
// write while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
