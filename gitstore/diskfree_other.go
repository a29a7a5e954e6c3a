//go:build !(linux || darwin || freebsd)

package gitstore

// diskFree reports that the free space is not known on this system: the
// checks of Limits.MinFreeBytes are skipped.
func diskFree(dir string) (int64, bool) { return 0, false }
