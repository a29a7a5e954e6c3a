//go:build !linux

package gitstore

import "os"

// startWriteback does nothing here: only Linux has sync_file_range. The
// fsync before a ref moves writes everything, as before.
func startWriteback(f *os.File, off, n int64) {}
