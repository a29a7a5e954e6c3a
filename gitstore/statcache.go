package gitstore

import (
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/peersync/peersync/internal/atomicfile"
)

// statCacheFile is the stat cache's file name inside the git directory.
const statCacheFile = "peersync-statcache.json"

// statEntry remembers what a file looked like when we last hashed it, so an
// unchanged file is not read again.
type statEntry struct {
	Size  int64  `json:"s"`
	Mtime int64  `json:"m"` // UnixNano
	Mode  uint32 `json:"p"` // fs.FileMode
	Ino   uint64 `json:"i"`
	Hash  Hash   `json:"h"` // blob hash of the content
}

// statCache maps slash paths to statEntry. Only the Store's mutex guards it.
type statCache struct {
	entries map[string]statEntry
	dirty   bool
}

func newStatEntry(fi fs.FileInfo, h plumbing.Hash) statEntry {
	return statEntry{
		Size:  fi.Size(),
		Mtime: fi.ModTime().UnixNano(),
		Mode:  uint32(fi.Mode()),
		Ino:   inode(fi),
		Hash:  fromPlumbing(h),
	}
}

// lookup returns the cached blob hash of p if fi still matches.
func (c *statCache) lookup(p string, fi fs.FileInfo) (plumbing.Hash, bool) {
	e, ok := c.entries[p]
	if !ok {
		return plumbing.ZeroHash, false
	}
	if e.Size != fi.Size() || e.Mtime != fi.ModTime().UnixNano() ||
		e.Mode != uint32(fi.Mode()) || e.Ino != inode(fi) {
		return plumbing.ZeroHash, false
	}
	return e.Hash.plumbing(), true
}

// put records p's stat and hash, unless the file is racy: modified at or
// after racyFrom (see Store.racyFromLocked), so that an edit after our
// look could keep the same modification time.
func (c *statCache) put(p string, fi fs.FileInfo, h plumbing.Hash, racyFrom time.Time) {
	if !fi.ModTime().Before(racyFrom) {
		c.drop(p)
		return
	}
	c.entries[p] = newStatEntry(fi, h)
	c.dirty = true
}

// racyWindow is how far back from a scan's start a modification counts as
// racy when the filesystem's own clock cannot be read.
const racyWindow = 2 * time.Second

// scanClockFile, inside the git directory, is rewritten at the start of
// every scan: its modification time is the filesystem's clock.
const scanClockFile = "peersync-scanclock"

// racyFromLocked returns, for a scan starting now (start), the time from
// which a file's modification time makes it racy: the filesystem's own
// clock, read as the modification time of scanClockFile just rewritten.
// As git compares with its index file's time, this compares two times of
// one clock at one granularity: a file modified after this instant gets a
// later time than any we cache, on a filesystem with nanosecond times or
// FAT's 2 s alike, and a file copied in a moment before the scan is cached
// at once (a 1 GiB file is not hashed twice by the scans that follow).
// When the file cannot be written, it is start less racyWindow.
func (s *Store) racyFromLocked(start time.Time) time.Time {
	f, err := os.OpenFile(filepath.Join(s.gitDir, scanClockFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return start.Add(-racyWindow)
	}
	defer f.Close()
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return start.Add(-racyWindow)
	}
	fi, err := f.Stat()
	if err != nil {
		return start.Add(-racyWindow)
	}
	return fi.ModTime()
}

func (c *statCache) drop(p string) {
	if _, ok := c.entries[p]; ok {
		delete(c.entries, p)
		c.dirty = true
	}
}

func (s *Store) statCachePath() string { return filepath.Join(s.gitDir, statCacheFile) }

// loadStatCache reads the cache; a missing or damaged file gives an empty
// cache (everything is hashed again, which is always correct).
func loadStatCache(path string, log *slog.Logger) statCache {
	c := statCache{entries: map[string]statEntry{}}
	b, err := os.ReadFile(path)
	if err != nil {
		return c
	}
	if err := json.Unmarshal(b, &c.entries); err != nil {
		log.Warn("gitstore: ignoring damaged stat cache", "path", path, "err", err)
		c.entries = map[string]statEntry{}
	}
	return c
}

// saveStatCacheLocked writes the cache atomically if it changed.
func (s *Store) saveStatCacheLocked() error {
	if !s.fst.stats.dirty {
		return nil
	}
	b, err := json.Marshal(s.fst.stats.entries)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.statCachePath(), b, 0o644); err != nil {
		return err
	}
	s.fst.stats.dirty = false
	return nil
}

// writeFileAtomic writes data to path through a temp file (named with our
// temp prefix) in the same directory, fsync, rename and directory fsync.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return atomicfile.WriteFileVia(path, data, perm, filepath.Dir(path), tmpPrefix+"*")
}

// lookupKey is lookup with the path as bytes (a reused buffer: the map
// lookup does not allocate).
func (c *statCache) lookupKey(key []byte, fi fs.FileInfo) (plumbing.Hash, bool) {
	e, ok := c.entries[string(key)]
	if !ok || e.Size != fi.Size() || e.Mtime != fi.ModTime().UnixNano() ||
		e.Mode != uint32(fi.Mode()) || e.Ino != inode(fi) {
		return plumbing.ZeroHash, false
	}
	return e.Hash.plumbing(), true
}
