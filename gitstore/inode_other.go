//go:build !unix

package gitstore

import (
	"io/fs"
	"os"
)

func inode(fs.FileInfo) uint64 { return 0 }

// openNoFollow opens p for reading. Windows has no FIFOs in the file
// system, and the scan's Lstat already skipped symlinks (reparse points);
// the caller's fstat checks the file is still regular.
func openNoFollow(p string) (*os.File, error) { return os.Open(p) }

// isSymlinkLoop reports whether err is openNoFollow's refusal of a symlink
// (never, here).
func isSymlinkLoop(error) bool { return false }
