//go:build linux || darwin || freebsd

package gitstore

import "golang.org/x/sys/unix"

// diskFree returns the bytes available to an unprivileged user on the file
// system of dir.
func diskFree(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	if free > 1<<62 {
		free = 1 << 62
	}
	return int64(free), true
}
