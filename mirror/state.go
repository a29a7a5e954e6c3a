package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ManifestName is the name of the manifest file at the target's root.
const ManifestName = ".peersync-mirror.json"

// tempPrefix starts the names of our temporary files, locally and remotely.
const tempPrefix = ".peersync-tmp-"

// manifestVersion is the only manifest version this package reads and writes.
const manifestVersion = 1

// maxManifest caps the size of a manifest we read (about 2 million files).
const maxManifest = 512 << 20

// FileState is what the manifest and the local cache record of one file.
type FileState struct {
	// Size in bytes.
	Size int64 `json:"size"`
	// MTime is the local file's modification time when it was read.
	MTime time.Time `json:"mtime"`
	// SHA256 is the lowercase hex SHA-256 of the content.
	SHA256 string `json:"sha256"`
}

// manifest is the JSON document at the target's root (see the package doc,
// "Manifest").
type manifest struct {
	Version   int                  `json:"version"`
	Generator string               `json:"generator"`
	Updated   time.Time            `json:"updated"`
	Files     map[string]FileState `json:"files"`
	Pending   []string             `json:"pending,omitempty"`
}

// parseManifest decodes and checks a manifest read from a target. Any path
// that a sync of ours could not have written makes the whole manifest
// unusable (the caller then lists the target instead).
func parseManifest(b []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("manifest: version %d, want %d", m.Version, manifestVersion)
	}
	if m.Files == nil {
		m.Files = map[string]FileState{}
	}
	for p, st := range m.Files {
		if err := checkRemotePath(p); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		if st.Size < 0 || len(st.SHA256) != 64 {
			return nil, fmt.Errorf("manifest: entry %q: bad size or sha256", p)
		}
		if _, err := hex.DecodeString(st.SHA256); err != nil {
			return nil, fmt.Errorf("manifest: entry %q: bad sha256", p)
		}
	}
	for _, p := range m.Pending {
		if err := checkRemotePath(p); err != nil {
			return nil, fmt.Errorf("manifest: pending: %w", err)
		}
	}
	return &m, nil
}

// checkRemotePath accepts the clean, relative, slash-separated paths that a
// local scan produces.
func checkRemotePath(p string) error {
	if p == "" || p != path.Clean(p) || strings.HasPrefix(p, "/") || p == "." || p == ".." ||
		strings.HasPrefix(p, "../") || strings.ContainsAny(p, "\\\x00\r\n") {
		return fmt.Errorf("path %q is not a clean relative path", p)
	}
	for _, part := range strings.Split(p, "/") {
		if skipName(part, true) || strings.HasPrefix(part, tempPrefix) {
			return fmt.Errorf("path %q has a name that is never mirrored", p)
		}
	}
	if p == ManifestName {
		return fmt.Errorf("path %q is the manifest", p)
	}
	return nil
}

// encodeManifest renders m with sorted keys and pending paths.
func encodeManifest(m *manifest) ([]byte, error) {
	sort.Strings(m.Pending)
	return json.MarshalIndent(m, "", " ")
}

// skipName reports whether a directory entry is never mirrored by name:
// .peersync (any case) and, for directories, .git (a nested history).
func skipName(name string, dir bool) bool {
	return strings.EqualFold(name, ".peersync") || (dir && strings.EqualFold(name, ".git"))
}

// tempName is the temporary name an upload of p goes to before its rename:
// a hidden file in the same directory, derived from p so that a later sync
// can find and remove one that a broken connection left behind.
func tempName(p string) string {
	dir, base := path.Split(p)
	name := tempPrefix + base
	if len(name) > 200 {
		sum := sha256.Sum256([]byte(base))
		name = tempPrefix + hex.EncodeToString(sum[:16])
	}
	return dir + name
}

// localFile is one file of the local tree.
type localFile struct {
	FileState
	abs string
}

// scanLocal walks root and returns its mirrored files by slash path. Files
// whose size and mtime match the cache keep the cached hash; the others have
// none yet (hashLocal computes it only where a comparison needs it; an
// upload hashes what it sends). Skipped: .peersync directories, subdirectories that hold their own
// .peersync or .git (independent histories), our .peersync-tmp-* files, a
// root-level file named like the manifest, what the .peersyncignore rules
// exclude, symlinks and anything that is not a regular file or directory.
func scanLocal(ctx context.Context, root string, cache map[string]FileState) (map[string]localFile, error) {
	out := map[string]localFile{}
	ign := ignoreRules{}
	err := filepath.WalkDir(root, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			if abs == root {
				return err
			}
			return fmt.Errorf("mirror: read %q: %w", abs, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if abs == root {
			return ign.enter(abs, "")
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if d.IsDir() {
			if skipName(name, true) || nestedHistory(abs) || ign.ignored(rel, true) {
				return filepath.SkipDir
			}
			return ign.enter(abs, rel)
		}
		if !d.Type().IsRegular() || skipName(name, false) || strings.HasPrefix(name, tempPrefix) || rel == ManifestName || ign.ignored(rel, false) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while we walked
		}
		if err != nil {
			return err
		}
		f := localFile{abs: abs, FileState: FileState{Size: fi.Size(), MTime: fi.ModTime().UTC()}}
		if c, ok := cache[rel]; ok && c.Size == f.Size && c.MTime.Equal(f.MTime) {
			f.SHA256 = c.SHA256
		}
		out[rel] = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// nestedHistory reports whether dir holds its own .peersync or .git.
func nestedHistory(dir string) bool {
	for _, n := range []string{".peersync", ".git"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// hashLocal fills in the hash of the files in qs (which must lack one).
// A file that vanished is dropped from local.
func hashLocal(ctx context.Context, local map[string]localFile, qs []string) error {
	for _, q := range qs {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := local[q]
		sum, err := hashFile(f.abs)
		if errors.Is(err, fs.ErrNotExist) {
			delete(local, q)
			continue
		}
		if err != nil {
			return fmt.Errorf("mirror: hash %q: %w", f.abs, err)
		}
		f.SHA256 = sum
		local[q] = f
	}
	return nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// localCache is the StateDir file that remembers the hashes of local files
// by size and mtime, so that a sync hashes only files that changed.
type localCache struct {
	Version int                  `json:"version"`
	Dir     string               `json:"dir"`
	Files   map[string]FileState `json:"files"`
}

func loadCache(file, dir string) map[string]FileState {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var c localCache
	if json.Unmarshal(b, &c) != nil || c.Version != 1 || c.Dir != dir {
		return nil
	}
	return c.Files
}

func saveCache(file, dir string, files map[string]localFile) error {
	c := localCache{Version: 1, Dir: dir, Files: make(map[string]FileState, len(files))}
	for p, f := range files {
		if f.SHA256 != "" {
			c.Files[p] = f.FileState
		}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	return writeFileAtomic(file, b)
}

// writeFileAtomic writes b to file through a temp file, fsync and rename.
func writeFileAtomic(file string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), tempPrefix+"*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}
