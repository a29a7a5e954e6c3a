//go:build unix

package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// kinds are the three target kinds, each with its real server.
var kinds = []struct {
	name  string
	start func(t testing.TB) *server
}{
	{"ftp", func(t testing.TB) *server { return startVsftpd(t, false) }},
	{"ftps", func(t testing.TB) *server { return startVsftpd(t, true) }},
	{"sftp", startSSHD},
}

// writeFile writes content at the slash path rel under root.
func writeFile(t testing.TB, root, rel string, content []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, content, 0o644))
}

// randBytes returns n pseudo-random bytes from seed.
func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// treeHashes returns every regular file under root by slash path → SHA-256,
// and every directory. Nothing is skipped.
func treeHashes(t testing.TB, root string) (files map[string]string, dirs []string) {
	t.Helper()
	files = map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, rel)
			return nil
		}
		if !d.Type().IsRegular() {
			files[rel] = "(" + d.Type().String() + ")"
			return nil
		}
		h, err := hashFile(p)
		require.NoError(t, err)
		files[rel] = h
		return nil
	}))
	return files, dirs
}

// expectedTree is what the target must hold for local: every regular file
// except under .peersync, nested histories (.git or .peersync inside),
// symlinks and our temp files.
func expectedTree(t testing.TB, local string) map[string]string {
	t.Helper()
	all, _ := treeHashes(t, local)
	want := map[string]string{}
	for p, h := range all {
		parts := strings.Split(p, "/")
		skip := strings.HasPrefix(h, "(") || strings.HasPrefix(parts[len(parts)-1], ".peersync-tmp-")
		for i, part := range parts[:len(parts)-1] {
			dir := filepath.Join(local, filepath.FromSlash(strings.Join(parts[:i+1], "/")))
			if part == ".peersync" || fileExists(filepath.Join(dir, ".git")) || fileExists(filepath.Join(dir, ".peersync")) {
				skip = true
			}
		}
		if !skip {
			want[p] = h
		}
	}
	return want
}

// writeRemote writes a file into a target directory as the servers' login
// user would have.
func writeRemote(t testing.TB, root, rel string, content []byte) {
	t.Helper()
	writeFile(t, root, rel, content)
	for p := filepath.Join(root, filepath.FromSlash(rel)); p != root; p = filepath.Dir(p) {
		require.NoError(t, os.Chown(p, testUID, testGID))
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// assertMirrored checks that the target directory (a local path: the
// servers run here) holds exactly local's tree, byte for byte, plus the
// manifest; no temp file, no .peersync, no empty directory; and that the
// manifest describes the tree with nothing pending.
func assertMirrored(t testing.TB, local, remote string) {
	t.Helper()
	want := expectedTree(t, local)
	got, dirs := treeHashes(t, remote)
	require.Contains(t, got, ManifestName, "the manifest is missing")
	delete(got, ManifestName)
	assert.Equal(t, want, got, "the target's tree differs from the folder's")
	for _, d := range dirs {
		ents, err := os.ReadDir(filepath.Join(remote, d))
		require.NoError(t, err)
		assert.NotEmpty(t, ents, "empty directory %q left on the target", d)
		assert.NotContains(t, strings.Split(d, "/"), ".peersync")
	}
	man := readManifest(t, remote)
	assert.Empty(t, man.Pending)
	assert.Len(t, man.Files, len(want))
	for p, h := range want {
		assert.Equal(t, h, man.Files[p].SHA256, "manifest entry %q", p)
	}
}

func readManifest(t testing.TB, remote string) *manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(remote, ManifestName))
	require.NoError(t, err)
	man, err := parseManifest(b)
	require.NoError(t, err)
	return man
}

// TestSyncTree runs add, no change, modify, delete, rename and nested
// directories against each real server, checking the target after each
// step; .peersync, nested histories, symlinks and temp files stay home.
func TestSyncTree(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.start(t)
			m := openMirror(t, s)
			ctx := context.Background()
			local := t.TempDir()

			// Add, nested.
			writeFile(t, local, "a.txt", []byte("hello"))
			writeFile(t, local, "empty.txt", nil)
			writeFile(t, local, "docs/b.txt", []byte("bee"))
			writeFile(t, local, "docs/deep/er/c.bin", randBytes(1<<20+3, 1))
			writeFile(t, local, "sp ace/ünï.txt", []byte("unicode"))
			writeFile(t, local, ".peersync/HEAD", []byte("ref: refs/heads/main\n"))
			writeFile(t, local, ".peersync-tmp-123", []byte("half a file"))
			writeFile(t, local, "docs/.peersync-tmp-9", []byte("half"))
			writeFile(t, local, "nested/.git/HEAD", []byte("ref"))
			writeFile(t, local, "nested/x.txt", []byte("another history"))
			writeFile(t, local, "inner/.peersync/HEAD", []byte("ref"))
			writeFile(t, local, "inner/y.txt", []byte("another shared folder"))
			require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(local, "link")))
			require.NoError(t, os.Symlink("/etc", filepath.Join(local, "dirlink")))
			res, err := m.Sync(ctx, local, nil)
			require.NoError(t, err)
			assert.Equal(t, 5, res.Uploaded)
			assert.True(t, res.Listed, "first sync: no manifest yet")
			assertMirrored(t, local, s.root)
			for _, gone := range []string{".peersync", "nested", "inner", "link", "dirlink", ".peersync-tmp-123"} {
				assert.NoFileExists(t, filepath.Join(s.root, gone))
				assert.NoDirExists(t, filepath.Join(s.root, gone))
			}

			// No change: nothing sent, the manifest is trusted.
			res, err = m.Sync(ctx, local, nil)
			require.NoError(t, err)
			assert.Equal(t, Result{Unchanged: 5}, res)

			// Modify: same size, new content; and a size change.
			writeFile(t, local, "a.txt", []byte("HELLO"))
			later := time.Now().Add(time.Minute)
			require.NoError(t, os.Chtimes(filepath.Join(local, "a.txt"), later, later))
			writeFile(t, local, "docs/deep/er/c.bin", randBytes(2<<20, 2))
			res, err = m.Sync(ctx, local, nil)
			require.NoError(t, err)
			assert.Equal(t, 2, res.Uploaded)
			assert.Equal(t, 0, res.Deleted)
			assertMirrored(t, local, s.root)

			// Delete: the emptied directories go too.
			require.NoError(t, os.Remove(filepath.Join(local, "docs/deep/er/c.bin")))
			res, err = m.Sync(ctx, local, nil)
			require.NoError(t, err)
			assert.Equal(t, 1, res.Deleted)
			assertMirrored(t, local, s.root)
			assert.NoDirExists(t, filepath.Join(s.root, "docs/deep"))

			// Rename = delete + add, across directories.
			require.NoError(t, os.MkdirAll(filepath.Join(local, "moved/here"), 0o755))
			require.NoError(t, os.Rename(filepath.Join(local, "docs/b.txt"), filepath.Join(local, "moved/here/b2.txt")))
			res, err = m.Sync(ctx, local, nil)
			require.NoError(t, err)
			assert.Equal(t, 1, res.Uploaded)
			assert.Equal(t, 1, res.Deleted)
			assertMirrored(t, local, s.root)
			assert.NoDirExists(t, filepath.Join(s.root, "docs"))

			// A file becomes a directory of the same name.
			require.NoError(t, os.Remove(filepath.Join(local, "a.txt")))
			writeFile(t, local, "a.txt/inside.txt", []byte("now a directory"))
			_, err = m.Sync(ctx, local, nil)
			require.NoError(t, err)
			assertMirrored(t, local, s.root)
		})
	}
}

// TestSyncLargeFile uploads a 100 MiB file to each server and checks the
// progress reports: monotonic bytes, ending at the total.
func TestSyncLargeFile(t *testing.T) {
	big := randBytes(100<<20, 3)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.start(t)
			m := openMirror(t, s)
			local := t.TempDir()
			writeFile(t, local, "big/100MiB.bin", big)
			writeFile(t, local, "small.txt", []byte("x"))
			var reports []Progress
			res, err := m.Sync(context.Background(), local, func(p Progress) { reports = append(reports, p) })
			require.NoError(t, err)
			assert.Equal(t, int64(100<<20+1), res.BytesUploaded)
			assertMirrored(t, local, s.root)
			require.NotEmpty(t, reports)
			last := reports[len(reports)-1]
			last.Path = ""
			assert.Equal(t, Progress{FilesDone: 2, FilesTotal: 2, BytesDone: 100<<20 + 1, BytesTotal: 100<<20 + 1}, last)
			assert.Greater(t, len(reports), 50, "a report about every MiB")
			for i := 1; i < len(reports); i++ {
				assert.GreaterOrEqual(t, reports[i].BytesDone, reports[i-1].BytesDone)
			}
		})
	}
}

// killAfter returns an upload hook that calls kill once, inside the upload
// of name, after n bytes were read; fired counts the calls.
func killAfter(name string, n int64, kill func(), fired *atomic.Int32) func(string, io.Reader) io.Reader {
	return func(p string, r io.Reader) io.Reader {
		if p != name || fired.Load() > 0 {
			return r
		}
		return &tripReader{r: r, at: n, trip: func() {
			if fired.Add(1) == 1 {
				kill()
			}
		}}
	}
}

type tripReader struct {
	r    io.Reader
	n    int64
	at   int64
	trip func()
}

func (t *tripReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.n += int64(n)
	if t.n >= t.at && t.trip != nil {
		t.trip()
		t.trip = nil
	}
	return n, err
}

// TestSyncSessionKilledMidUpload kills the server process serving our
// connection in the middle of an upload: the sync reconnects, finishes,
// and the target equals the folder.
func TestSyncSessionKilledMidUpload(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.start(t)
			cfg := s.config(t)
			var logs syncBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			m, err := New(cfg)
			require.NoError(t, err)
			defer m.Close()
			var fired atomic.Int32
			m.testHookUpload = killAfter("data/big.bin", 4<<20, s.killSessions, &fired)
			local := t.TempDir()
			writeFile(t, local, "data/big.bin", randBytes(24<<20, 4))
			writeFile(t, local, "data/after.txt", []byte("after"))
			res, err := m.Sync(context.Background(), local, nil)
			require.NoError(t, err)
			require.Equal(t, int32(1), fired.Load(), "the connection was killed")
			assert.GreaterOrEqual(t, res.Retries, 1)
			assert.Equal(t, 2, res.Uploaded)
			assertMirrored(t, local, s.root)
			assert.Contains(t, logs.String(), "trying again")
			assert.NotContains(t, logs.String(), testUserPass, "a password in the logs")
		})
	}
}

// TestSyncServerDownMidUpload stops the whole server in the middle of
// replacing a file: the sync gives up after its tries, the target still
// holds the old version whole, the manifest marks the file pending; once
// the server is back the next sync completes and leaves no temp file.
func TestSyncServerDownMidUpload(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.start(t)
			cfg := s.config(t)
			cfg.MaxAttempts = 3
			m, err := New(cfg)
			require.NoError(t, err)
			defer m.Close()
			local := t.TempDir()
			old := randBytes(1<<20, 5)
			writeFile(t, local, "big.bin", old)
			writeFile(t, local, "keep.txt", []byte("keep"))
			_, err = m.Sync(context.Background(), local, nil)
			require.NoError(t, err)

			var fired atomic.Int32
			m.testHookUpload = killAfter("big.bin", 4<<20, s.stop, &fired)
			writeFile(t, local, "big.bin", randBytes(24<<20, 6))
			writeFile(t, local, "new.txt", []byte("new"))
			res, err := m.Sync(context.Background(), local, nil)
			require.Error(t, err)
			require.Equal(t, int32(1), fired.Load())
			assert.Contains(t, err.Error(), "gave up after 3 tries")
			assert.GreaterOrEqual(t, res.Retries, 2, "every connection tried 3 times")
			got, err := os.ReadFile(filepath.Join(s.root, "big.bin"))
			require.NoError(t, err)
			assert.True(t, string(got) == string(old), "the target's big.bin is no longer the old version")
			man := readManifest(t, s.root)
			assert.Contains(t, man.Pending, "big.bin")
			assert.NotContains(t, man.Files, "big.bin")

			s.start()
			res, err = m.Sync(context.Background(), local, nil)
			require.NoError(t, err)
			assert.Zero(t, res.Retries)
			assertMirrored(t, local, s.root)
		})
	}
}

// TestSyncManifestUnusable replaces the target's manifest with garbage and
// plants a stale file and a leftover temp file: the next sync lists the
// target and leaves exactly the folder's tree.
func TestSyncManifestUnusable(t *testing.T) {
	s := startSSHD(t)
	m := openMirror(t, s)
	local := t.TempDir()
	writeFile(t, local, "a/b.txt", []byte("b"))
	writeFile(t, local, "c.txt", []byte("c"))
	_, err := m.Sync(context.Background(), local, nil)
	require.NoError(t, err)

	writeRemote(t, s.root, ManifestName, []byte("{not json"))
	writeRemote(t, s.root, "stale/old.txt", []byte("stale"))
	writeRemote(t, s.root, "a/.peersync-tmp-b.txt", []byte("half"))
	writeFile(t, local, "c.txt", []byte("c2"))
	res, err := m.Sync(context.Background(), local, nil)
	require.NoError(t, err)
	assert.True(t, res.Listed)
	assert.Equal(t, 2, res.Deleted)
	assertMirrored(t, local, s.root)
}

// TestSFTPHostKeyChanged pins the server's host key on first use, then
// restarts the server with a new key: the sync is refused at once with both
// fingerprints, and nothing is written.
func TestSFTPHostKeyChanged(t *testing.T) {
	s := startSSHD(t)
	cfg := s.config(t)
	m, err := New(cfg)
	require.NoError(t, err)
	defer m.Close()
	local := t.TempDir()
	writeFile(t, local, "a.txt", []byte("a"))
	_, err = m.Sync(context.Background(), local, nil)
	require.NoError(t, err)
	kh, err := os.ReadFile(filepath.Join(cfg.StateDir, "known_hosts"))
	require.NoError(t, err)
	assert.Contains(t, string(kh), strings.TrimSpace(string(marshalKey(s))))

	oldFP := ssh256(s)
	s.stop()
	s.newHostKey()
	s.start()
	writeFile(t, local, "a.txt", []byte("changed"))
	res, err := m.Sync(context.Background(), local, nil)
	var hk *HostKeyChangedError
	require.ErrorAs(t, err, &hk)
	assert.Equal(t, oldFP, hk.Pinned)
	assert.Equal(t, ssh256(s), hk.Got)
	assert.NotEqual(t, hk.Pinned, hk.Got)
	assert.Contains(t, err.Error(), hk.Pinned)
	assert.Contains(t, err.Error(), hk.Got)
	assert.Zero(t, res.Retries, "a changed host key is not retried")
	got, err := os.ReadFile(filepath.Join(s.root, "a.txt"))
	require.NoError(t, err)
	assert.Equal(t, "a", string(got))
}

// TestFTPSCertificate checks that the self-signed certificate is refused
// without a pin, refused with a wrong pin, and that neither is retried.
func TestFTPSCertificate(t *testing.T) {
	s := startVsftpd(t, true)
	local := t.TempDir()
	writeFile(t, local, "a.txt", []byte("a"))

	cfg := s.config(t)
	cfg.CertFingerprint = ""
	m, err := New(cfg)
	require.NoError(t, err)
	res, err := m.Sync(context.Background(), local, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
	assert.Zero(t, res.Retries)
	require.NoError(t, m.Close())

	cfg.CertFingerprint = "SHA256:" + strings.Repeat("ab", 32)
	m, err = New(cfg)
	require.NoError(t, err)
	res, err = m.Sync(context.Background(), local, nil)
	var ce *CertificateError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, CertFingerprint(s.certDER), ce.Got)
	assert.Zero(t, res.Retries)
	require.NoError(t, m.Close())
	assert.NoFileExists(t, filepath.Join(s.root, "a.txt"))
}

// TestSFTPPassword logs in with a password file, and checks that a wrong
// password is refused at once without retries and without being printed.
func TestSFTPPassword(t *testing.T) {
	s := startSSHD(t)
	local := t.TempDir()
	writeFile(t, local, "a.txt", []byte("a"))
	cfg := s.config(t)
	cfg.KeyFile = ""
	pw := filepath.Join(cfg.StateDir, "password")
	require.NoError(t, os.WriteFile(pw, []byte(testUserPass+"\n"), 0o600))
	cfg.PasswordFile = pw
	m, err := New(cfg)
	require.NoError(t, err)
	_, err = m.Sync(context.Background(), local, nil)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	assertMirrored(t, local, s.root)

	require.NoError(t, os.WriteFile(pw, []byte("wrong-password-1234\n"), 0o600))
	m, err = New(cfg)
	require.NoError(t, err)
	defer m.Close()
	res, err := m.Sync(context.Background(), local, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "login")
	assert.NotContains(t, err.Error(), "wrong-password-1234")
	assert.Zero(t, res.Retries)
}

// TestSyncCancelAndClose cancels a sync in the middle of an upload (from its
// progress callback), then closes the Mirror.
func TestSyncCancelAndClose(t *testing.T) {
	s := startSSHD(t)
	m, err := New(s.config(t))
	require.NoError(t, err)
	local := t.TempDir()
	writeFile(t, local, "big.bin", randBytes(16<<20, 7))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = m.Sync(ctx, local, func(p Progress) {
		if p.BytesDone > 2<<20 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.NoFileExists(t, filepath.Join(s.root, "big.bin"))

	_, err = m.Sync(context.Background(), local, func(Progress) { _ = m.Close() })
	require.ErrorIs(t, err, context.Canceled, "Close cancels the running sync")
	_, err = m.Sync(context.Background(), local, nil)
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, m.Close())
}

func marshalKey(s *server) []byte { return ssh.MarshalAuthorizedKey(s.hostKey.PublicKey()) }

func ssh256(s *server) string { return ssh.FingerprintSHA256(s.hostKey.PublicKey()) }

// TestManifestFormat checks the manifest's JSON field names, which other
// tools may read.
func TestManifestFormat(t *testing.T) {
	m := &manifest{Version: 1, Generator: "peersync mirror", Updated: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Files: map[string]FileState{"a/b.txt": {Size: 3, MTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), SHA256: hex.EncodeToString(sha256.New().Sum(nil))}}}
	b, err := encodeManifest(m)
	require.NoError(t, err)
	var generic map[string]any
	require.NoError(t, json.Unmarshal(b, &generic))
	assert.Equal(t, map[string]any{
		"version": 1.0, "generator": "peersync mirror", "updated": "2026-01-02T03:04:05Z",
		"files": map[string]any{"a/b.txt": map[string]any{"size": 3.0, "mtime": "2026-01-01T00:00:00Z",
			"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},
	}, generic)
	back, err := parseManifest(b)
	require.NoError(t, err)
	assert.Equal(t, m.Files, back.Files)

	for _, bad := range []string{
		`{"version":2,"files":{}}`,
		`{"version":1,"files":{"../x":{"size":1,"sha256":"` + strings.Repeat("0", 64) + `"}}}`,
		`{"version":1,"files":{"/etc/passwd":{"size":1,"sha256":"` + strings.Repeat("0", 64) + `"}}}`,
		`{"version":1,"files":{".peersync/HEAD":{"size":1,"sha256":"` + strings.Repeat("0", 64) + `"}}}`,
		`{"version":1,"files":{"a":{"size":1,"sha256":"xyz"}}}`,
		`{"version":1,"files":{},"pending":["a/../../b"]}`,
	} {
		_, err := parseManifest([]byte(bad))
		assert.Error(t, err, bad)
	}
}

// TestSyncCreatesTarget points each kind at a directory that does not
// exist yet, two levels deep: the first sync creates it.
func TestSyncCreatesTarget(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.start(t)
			cfg := s.config(t)
			cfg.URL += "/new/sub"
			m, err := New(cfg)
			require.NoError(t, err)
			defer m.Close()
			local := t.TempDir()
			writeFile(t, local, "x/y.txt", []byte("y"))
			_, err = m.Sync(context.Background(), local, nil)
			require.NoError(t, err)
			assertMirrored(t, local, filepath.Join(s.root, "new/sub"))
		})
	}
}

// TestSyncConnectionCap runs against an FTP server that allows one
// connection per address: the extra upload connections are refused and the
// sync goes on with one, without counting that as a retry.
func TestSyncConnectionCap(t *testing.T) {
	s := startVsftpd(t, false, "max_per_ip=1\n")
	cfg := s.config(t)
	cfg.Connections = 4
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(cfg)
	require.NoError(t, err)
	defer m.Close()
	local := t.TempDir()
	for i := range 20 {
		writeFile(t, local, fmt.Sprintf("f%02d.txt", i), randBytes(100+i, uint64(i)))
	}
	res, err := m.Sync(context.Background(), local, nil)
	require.NoError(t, err)
	assert.Equal(t, 20, res.Uploaded)
	assert.Zero(t, res.Retries, logs.String())
	assertMirrored(t, local, s.root)
	assert.Contains(t, logs.String(), "no extra connection", "the server refused the extra connections")
	assert.NotContains(t, logs.String(), testUserPass)
}

// TestSyncLocalCache checks that a file whose size and mtime are unchanged
// is not read again: its content is changed behind the cache's back (same
// size, mtime restored) and the sync leaves the target alone; touching the
// mtime makes the next sync hash and upload it.
func TestSyncLocalCache(t *testing.T) {
	s := startSSHD(t)
	m := openMirror(t, s)
	local := t.TempDir()
	p := filepath.Join(local, "f.txt")
	writeFile(t, local, "f.txt", []byte("one"))
	_, err := m.Sync(context.Background(), local, nil)
	require.NoError(t, err)
	fi, err := os.Stat(p)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(p, []byte("two"), 0o644))
	require.NoError(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
	res, err := m.Sync(context.Background(), local, nil)
	require.NoError(t, err)
	assert.Equal(t, Result{Unchanged: 1}, res, "size and mtime match the cache: not hashed")
	got, err := os.ReadFile(filepath.Join(s.root, "f.txt"))
	require.NoError(t, err)
	assert.Equal(t, "one", string(got))

	later := fi.ModTime().Add(time.Second)
	require.NoError(t, os.Chtimes(p, later, later))
	res, err = m.Sync(context.Background(), local, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Uploaded)
	assertMirrored(t, local, s.root)
}

// TestSyncRefusedFile makes one remote directory unwritable for the login
// user: the sync reports that file in a *FileError without retrying,
// mirrors the others, keeps the file pending, and completes once the
// directory is writable again.
func TestSyncRefusedFile(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.start(t)
			m := openMirror(t, s)
			local := t.TempDir()
			writeFile(t, local, "locked/x.txt", []byte("x1"))
			writeFile(t, local, "open.txt", []byte("o1"))
			_, err := m.Sync(context.Background(), local, nil)
			require.NoError(t, err)

			lockedDir := filepath.Join(s.root, "locked")
			require.NoError(t, os.Chown(lockedDir, 0, 0))
			writeFile(t, local, "locked/x.txt", []byte("x2"))
			writeFile(t, local, "open.txt", []byte("o2"))
			res, err := m.Sync(context.Background(), local, nil)
			var fe *FileError
			require.ErrorAs(t, err, &fe)
			assert.Contains(t, fe.Failed, "locked/x.txt")
			assert.Len(t, fe.Failed, 1)
			assert.Zero(t, res.Retries, "a refusal is not retried")
			assert.Equal(t, 1, res.Uploaded)
			got, err := os.ReadFile(filepath.Join(s.root, "open.txt"))
			require.NoError(t, err)
			assert.Equal(t, "o2", string(got))
			got, err = os.ReadFile(filepath.Join(lockedDir, "x.txt"))
			require.NoError(t, err)
			assert.Equal(t, "x1", string(got), "the old version stays whole")
			assert.Contains(t, readManifest(t, s.root).Pending, "locked/x.txt")

			require.NoError(t, os.Chown(lockedDir, testUID, testGID))
			res, err = m.Sync(context.Background(), local, nil)
			require.NoError(t, err)
			assert.Equal(t, 1, res.Uploaded)
			assertMirrored(t, local, s.root)
		})
	}
}

// openMirror makes a Mirror of s's target, closed at the end of the test
// (before s stops: cleanups run last first).
func openMirror(t *testing.T, s *server) *Mirror {
	t.Helper()
	m, err := New(s.config(t))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}
