package gitstore

import (
	"errors"
	"io/fs"
	"os"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
)

// listingFS is the filesystem every go-git storage of a Store reads
// through. Its ReadDir survives entries that vanish while the directory is
// listed.
//
// go-billy's osfs lists a directory with os.ReadDir and then stats every
// entry; an entry renamed or removed in between (a temporary pack or index
// renamed into place by a scan, an apply or maintenance, a spool removed)
// fails the whole listing with "no such file or directory". go-git takes
// that error, on objects/pack, for "no pack directory": the storage then
// indexes no pack at all and keeps that empty index, so every packed
// object is "not found" until it is reindexed. That was the read view's
// transient "object not found" and the apply's "missing prerequisite"
// (TestHistoryDuringAppliesAndMaintenance, TestListingSurvivesRenames):
// objects/pack always changes while scans, applies and maintenance run
// beside readers.
//
// So a listing that fails with ErrNotExist while the directory itself is
// there is taken again: an entry that is gone is no longer listed the next
// time (or, renamed, is listed under its new name).
type listingFS struct{ billy.Filesystem }

// newListingFS returns the listing-safe filesystem rooted at gitDir.
func newListingFS(gitDir string) listingFS { return listingFS{osfs.New(gitDir)} }

// listingTries bounds the listings of one ReadDir: each failure means an
// entry vanished during that very listing, so a few suffice.
const listingTries = 100

// ReadDir lists dir, again when an entry vanished while it was listed.
func (l listingFS) ReadDir(dir string) ([]os.FileInfo, error) {
	var err error
	for range listingTries {
		var infos []os.FileInfo
		infos, err = l.Filesystem.ReadDir(dir)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return infos, err
		}
		if _, serr := l.Filesystem.Stat(dir); serr != nil {
			return nil, err // the directory itself is missing
		}
	}
	return nil, err
}
