//go:build windows

package cli

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

func lockExclusive(f *os.File) error {
	ol := new(windows.Overlapped)
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errDaemonRunning
	}
	if err != nil {
		return fmt.Errorf("daemon lock: %w", err)
	}
	return nil
}
