package gitstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing bytes [off, off+n) of f
// to disk now, without waiting for them (sync_file_range with
// SYNC_FILE_RANGE_WRITE). It makes nothing durable: the fsync that must
// come before a ref moves still does that, but finds little left to write.
// Errors are ignored: it is only a hint (see writeback).
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
