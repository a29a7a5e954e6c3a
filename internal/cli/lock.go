package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The daemon lock: `run` holds an exclusive lock on <home>/daemon.lock for
// its lifetime (the OS drops it when the process dies, even on kill -9).
// Commands that commit to a folder's history (scan, restore, bundle import
// and export) take it too, so they never race a running daemon on the same
// repository; read-only commands (status, history) do not need it.

// errDaemonRunning says the lock is held by a running daemon.
var errDaemonRunning = errors.New("the daemon is running")

const lockFile = "daemon.lock"

// acquireLock takes the lock or returns errDaemonRunning; release it with
// the returned function.
func acquireLock(home string) (release func(), err error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(home, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon lock: %w", err)
	}
	if err := lockExclusive(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}

// exclusive runs fn holding the daemon lock, or explains what to do
// instead when the daemon runs.
func (a *app) exclusive(what string, fn func() error) error {
	release, err := acquireLock(a.home)
	if errors.Is(err, errDaemonRunning) {
		return fmt.Errorf("%s: %w for %s; it commits changes itself (stop it with Ctrl-C to %s by hand)", what, err, a.home, what)
	}
	if err != nil {
		return err
	}
	defer release()
	return fn()
}
