package gitstore

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/peersync/peersync/internal/atomicfile"
)

// Big files written as they arrive.
//
// A first sync's big file was written twice after its last byte came: the
// pack was read again (now read as it arrives, see Incoming) and the file
// then copied out of the pack into the folder by the checkout. While the
// pack of an Incoming is read as it arrives, each whole blob of at least
// prewriteMin bytes is also written, as its content streams by to be
// hashed, into a temporary file of ours in the folder's top directory
// (.peersync-tmp-arriving-*, never committed; what a crash leaves there is
// removed when the store is next opened), with holes for its zero blocks and its pages handed to the
// kernel to write as it grows, and fsynced in a goroutine of its own as
// soon as it is complete (drop waits for that fsync). The checkout then takes that file where it
// would have written one (only for a regular file at a path that holds no
// file yet, and only if its size is the blob's), fsyncs it with the rest
// of its batch and renames it into place: the same order as any file it
// writes, so a crash mid-checkout leaves either the old state or a
// complete, fsynced file, never a torn one taken for a local edit. The
// file is named by the blob's hash only once its content hashed to it; a
// file the checkout does not take is removed when the apply ends.

// prewriteMin is the smallest blob written into the folder as it arrives.
const prewriteMin = 16 << 20

// arrivingPrefix names the files of blobs written as they arrive, in the
// folder's top directory. A kill -9 during a transfer leaves one there
// (possibly gigabytes); Open removes them (removeArriving), since nothing
// writes them before the store is open.
const arrivingPrefix = tmpPrefix + "arriving-"

// removeArriving deletes what a crash left of blobs written as they
// arrived into the folder dir (see arrivingPrefix).
func removeArriving(dir string, log *slog.Logger) {
	left, _ := filepath.Glob(filepath.Join(dir, arrivingPrefix+"*"))
	for _, name := range left {
		err := os.Remove(name)
		log.Info("gitstore: removed a file left by an interrupted transfer", "path", name, "err", err)
	}
}

// prewrite is the blobs of a pack being read that were written into the
// folder as they arrived (see "Big files written as they arrive").
type prewrite struct {
	dir     string                   // the folder
	minFree int64                    // Limits.MinFreeBytes
	files   map[plumbing.Hash]string // blob → its temporary file
	cur     *os.File                 // the file being written, if any
	w       *sparseWriter
	err     error        // the first write error of cur: it is dropped
	syncs   []*earlySync // the fsyncs of the files kept, started as each was complete
}

// start returns a writer for the content of a blob of size bytes about to
// stream by, or nil when it is not written as it arrives.
func (pw *prewrite) start(typ plumbing.ObjectType, size int64) io.Writer {
	if pw == nil || typ != plumbing.BlobObject || size < prewriteMin {
		return nil
	}
	// Room for it twice (in the pack and here) above the reserve, or the
	// head start could take the space the pack needs: the checkout then
	// writes it, after checking the space itself.
	if checkFree(pw.dir, satAdd(size, size), pw.minFree, "checkout") != nil {
		return nil
	}
	f, err := atomicfile.CreateTemp(pw.dir, arrivingPrefix+"*", 0o666)
	if err != nil {
		return nil // only a head start: the checkout writes it
	}
	pw.cur, pw.w, pw.err = f, newSparseWriter(f), nil
	return pw
}

// Write writes the content of the blob being read into its file. It never
// fails: a failed write drops the file (end), not the read of the pack.
func (pw *prewrite) Write(p []byte) (int, error) {
	if pw.err == nil {
		_, pw.err = pw.w.Write(p)
	}
	return len(p), nil
}

// end finishes the file started for blob h; ok false (the blob was not
// whole, or a write failed) drops it.
func (pw *prewrite) end(h plumbing.Hash, ok bool) {
	if pw == nil || pw.cur == nil {
		return
	}
	f := pw.cur
	pw.cur = nil
	_, err := pw.w.finish()
	if err == nil {
		err = pw.err
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if _, dup := pw.files[h]; err != nil || !ok || dup {
		os.Remove(f.Name())
		return
	}
	if pw.files == nil {
		pw.files = map[plumbing.Hash]string{}
	}
	pw.files[h] = f.Name()
	// Complete: to the disk now, while the rest of the pack arrives and
	// is checked, so that the checkout's fsync finds it written (and the
	// journal commits of the checkout's small files do not wait for its
	// data). The checkout still fsyncs it before its rename.
	pw.syncs = append(pw.syncs, startEarlySyncPath(f.Name()))
}

// has reports whether blob h was written as it arrived.
func (pw *prewrite) has(h plumbing.Hash) bool {
	if pw == nil {
		return false
	}
	_, ok := pw.files[h]
	return ok
}

// drop removes every file written (once their early fsyncs returned).
func (pw *prewrite) drop() {
	if pw == nil {
		return
	}
	pw.end(plumbing.ZeroHash, false)
	for _, e := range pw.syncs {
		e.wait()
	}
	pw.syncs = nil
	for _, name := range pw.files {
		os.Remove(name)
	}
	pw.files = nil
}

// prewrittenLocked returns the temporary file holding blob e written as it
// arrived, for a checkout to put at abs, or "" when there is none it may
// take: e must be a regular file, abs hold no file yet, and the temporary
// file be e's size. The file is the caller's once returned.
func (s *Store) prewrittenLocked(e fileEntry, abs string) (string, int64) {
	pw := s.fst.prewritten
	if pw == nil {
		return "", 0
	}
	name, ok := pw.files[e.hash]
	if !ok || e.mode != filemode.Regular {
		return "", 0
	}
	if _, err := os.Lstat(abs); err == nil || !os.IsNotExist(err) {
		return "", 0
	}
	delete(pw.files, e.hash)
	fi, err := os.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != s.blobSizeLocked(e) {
		os.Remove(name)
		return "", 0
	}
	return name, fi.Size()
}
