package gitstore

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peersync/peersync/internal/atomicfile"
)

// writeFileAtomicIn writes data to path through a temporary file created in
// tmpDir (which must be on the same file system), fsync, rename and
// directory fsync, so that path holds either its old content or data,
// whatever happens.
func writeFileAtomicIn(tmpDir, path string, data []byte, perm fs.FileMode) error {
	return atomicfile.WriteFileVia(path, data, perm, tmpDir, tmpPrefix+"*")
}

// orphanAge is how old a pack without index must be before Open deletes
// it: younger ones may be another process's pack being finished (a CLI
// command opening the folder beside the daemon).
const orphanAge = 10 * time.Minute

// removeOrphanPacks deletes from objects/pack every pack-*.pack that has no
// pack-*.idx beside it and is older than orphanAge: what a crash of an
// older version left between a pack's rename and its index's (packs are
// now completed index first). Such a pack is unreadable (git skips it, but
// go-git fails every read once it is listed) and unreferenced (refs move
// only after a pack is complete), so deleting it loses nothing. Run by
// Open, before any read.
func removeOrphanPacks(gitDir string, log *slog.Logger) {
	dir := filepath.Join(gitDir, "objects", "pack")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = true
	}
	for _, e := range entries {
		n := e.Name()
		base, ok := strings.CutSuffix(n, ".pack")
		if !ok || !strings.HasPrefix(n, "pack-") || have[base+".idx"] {
			continue
		}
		if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < orphanAge {
			continue
		}
		err := os.Remove(filepath.Join(dir, n))
		log.Warn("gitstore: removed a pack without index (left by a crash)", "pack", n, "err", err)
	}
}

// staleTempAge is how old one of our temporary files in the folder must be
// for Scan to delete it.
const staleTempAge = time.Minute

// removeStaleTemp deletes abs, one of our temporary files met by a scan,
// when it is older than staleTempAge: a file or symlink left by a crash
// during a checkout (our own checkouts hold the store's lock, as Scan does,
// so none is being written now; the age is a margin for anything else), or
// a half-made git directory left by a crash in Open (tmpPrefix + "init-").
// Other directories are left alone.
func removeStaleTemp(abs string, de fs.DirEntry, now time.Time, log *slog.Logger) {
	fi, err := os.Lstat(abs)
	if err != nil || now.Sub(fi.ModTime()) < staleTempAge {
		return
	}
	switch {
	case !fi.IsDir():
		err = os.Remove(abs)
	case strings.HasPrefix(de.Name(), tmpPrefix+"init-"):
		err = os.RemoveAll(abs)
	default:
		return
	}
	log.Debug("gitstore: scan: removed stale temporary file", "path", abs, "err", err)
}
