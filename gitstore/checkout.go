package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// checkoutLocked makes the folder go from the old flat tree to the new one.
// Deleted files go first (and then their empty directories), then written
// files, each sorted by path. A path whose file on disk no longer has the old
// content (a local edit raced in) is left alone for the next Scan. It returns
// the paths it changed, sorted.
func (s *Store) checkoutLocked(ctx context.Context, old, new map[string]fileEntry) ([]string, error) {
	var dels, puts []string
	for p := range old {
		if _, ok := new[p]; !ok {
			dels = append(dels, p)
		}
	}
	for p, e := range new {
		if o, ok := old[p]; !ok || o != e {
			puts = append(puts, p)
		}
	}
	sort.Strings(dels)
	sort.Strings(puts)
	if err := s.checkMassDeleteLocked(len(dels), len(old)); err != nil {
		return nil, err
	}
	var changed []string
	defer func() {
		if err := s.saveStatCacheLocked(); err != nil {
			s.log.Warn("gitstore: save stat cache", "err", err)
		}
	}()
	for _, p := range dels {
		if err := ctxErr(ctx); err != nil {
			return changed, err
		}
		ok, err := s.diskHasLocked(p, old[p], true)
		if err != nil {
			return changed, err
		}
		if !ok {
			s.log.Warn("gitstore: checkout: local edit kept", "path", p)
			continue
		}
		if err := s.removeFileLocked(p); err != nil {
			return changed, err
		}
		changed = append(changed, p)
	}
	for _, p := range puts {
		if err := ctxErr(ctx); err != nil {
			return changed, err
		}
		oe, had := old[p]
		ok, err := s.diskHasLocked(p, oe, had)
		if err != nil {
			return changed, err
		}
		if !ok {
			// Maybe it already has the new content.
			if same, _ := s.diskHasLocked(p, new[p], true); !same {
				s.log.Warn("gitstore: checkout: local edit kept", "path", p)
				continue
			}
		}
		wrote, err := s.writeFileLocked(p, new[p])
		if err != nil {
			return changed, err
		}
		if wrote {
			changed = append(changed, p)
		}
	}
	sort.Strings(changed)
	return changed, nil
}

// safeParentLocked checks that every parent directory of p inside the folder
// is a real directory (not a symlink), creating missing ones when create is
// set. ok is false when a parent is missing (and not created) or is not a
// plain directory.
func (s *Store) safeParentLocked(p string, create bool) (bool, error) {
	parts := strings.Split(p, "/")
	cur := s.dir
	for _, c := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if !create {
				return false, nil
			}
			if err := os.Mkdir(cur, 0o755); err != nil {
				return false, fmt.Errorf("gitstore: checkout: %w", err)
			}
			continue
		}
		if err != nil {
			return false, fmt.Errorf("gitstore: checkout: %w", err)
		}
		if !fi.IsDir() { // a file, or a symlink we must never write through
			return false, nil
		}
	}
	return true, nil
}

// diskHasLocked reports whether the folder holds exactly e at p; with
// present false, whether nothing is at p.
func (s *Store) diskHasLocked(p string, e fileEntry, present bool) (bool, error) {
	if err := ValidPath(p); err != nil {
		return false, fmt.Errorf("gitstore: checkout: %q: %w", p, err)
	}
	ok, err := s.safeParentLocked(p, false)
	if err != nil {
		return false, err
	}
	if !ok {
		return !present, nil // nothing can be there
	}
	abs := filepath.Join(s.dir, filepath.FromSlash(p))
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return !present, nil
	}
	if err != nil {
		return false, fmt.Errorf("gitstore: checkout: %w", err)
	}
	if !present {
		return false, nil
	}
	if e.mode == filemode.Symlink {
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false, nil
		}
		target, err := os.Readlink(abs)
		if err != nil {
			return false, nil
		}
		return plumbing.ComputeHash(plumbing.BlobObject, []byte(target)) == e.hash, nil
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	if h, ok := s.stats.lookup(p, fi); ok {
		return h == e.hash, nil
	}
	f, err := os.Open(abs)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	hasher := plumbing.NewHasher(plumbing.BlobObject, fi.Size())
	if _, err := io.Copy(hasher, f); err != nil {
		return false, nil
	}
	return hasher.Sum() == e.hash, nil
}

// writeFileLocked writes e at p through a temp file in the same directory,
// fsync and rename, and records it in the stat cache. wrote is false when p
// was skipped because a parent is not a plain directory or a directory is in
// the way (the next Scan sees the difference).
func (s *Store) writeFileLocked(p string, e fileEntry) (wrote bool, err error) {
	if err := ValidPath(p); err != nil {
		return false, fmt.Errorf("gitstore: checkout: %q: %w", p, err)
	}
	ok, err := s.safeParentLocked(p, true)
	if err != nil {
		return false, err
	}
	abs := filepath.Join(s.dir, filepath.FromSlash(p))
	if fi, err := os.Lstat(abs); err == nil && fi.IsDir() {
		ok = false
	}
	if !ok {
		s.log.Warn("gitstore: checkout: path blocked by a symlink, file or directory; skipped", "path", p)
		return false, nil
	}
	o, err := s.st.EncodedObject(plumbing.BlobObject, e.hash)
	if err != nil {
		return false, fmt.Errorf("gitstore: checkout %q: %w", p, err)
	}
	rc, err := o.Reader()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	dir := filepath.Dir(abs)
	if e.mode == filemode.Symlink {
		target, err := io.ReadAll(rc)
		if err != nil {
			return false, err
		}
		tmp := filepath.Join(dir, fmt.Sprintf("%s%d", tmpPrefix, s.now().UnixNano()))
		if err := os.Symlink(string(target), tmp); err != nil {
			return false, fmt.Errorf("gitstore: checkout: %w", err)
		}
		if err := os.Rename(tmp, abs); err != nil {
			os.Remove(tmp)
			return false, fmt.Errorf("gitstore: checkout: %w", err)
		}
		return true, nil
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return false, fmt.Errorf("gitstore: checkout: %w", err)
	}
	tmp := f.Name()
	_, err = io.Copy(f, rc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	perm := fs.FileMode(0o644)
	if e.mode == filemode.Executable {
		perm = 0o755
	}
	if err == nil {
		err = os.Chmod(tmp, perm)
	}
	if err == nil {
		err = os.Rename(tmp, abs)
	}
	if err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("gitstore: checkout %q: %w", p, err)
	}
	if fi, err := os.Lstat(abs); err == nil {
		s.stats.entries[p] = newStatEntry(fi, e.hash)
		s.stats.dirty = true
	}
	return true, nil
}
