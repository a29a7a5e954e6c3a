package sync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The home lock: an Engine that owns Config.Home (the default) holds an
// exclusive lock on <Home>/daemon.lock from New to Close; the OS drops it
// when the process dies, even on kill -9. A second owner, in this process
// or another, gets a *HomeInUseError from New. An Engine opened with
// Config.Shared takes no lock: it reads (Status, History) and changes the
// configuration beside the owner, which picks the change up, but runs and
// commits nothing (ErrShared).

const lockFile = "daemon.lock"

// HomeInUseError is returned by New when another Engine (a running
// daemon, here or in another process) owns Config.Home. Open the home with
// Config.Shared to read its status or change its configuration beside it.
type HomeInUseError struct {
	Home string
}

func (e *HomeInUseError) Error() string {
	return fmt.Sprintf("sync: %s is in use by another engine (a running daemon); stop it, or open the home with Config.Shared to read or configure beside it", e.Home)
}

// ErrShared is returned by the methods that run or commit (Run, Scan,
// Restore, ExportBundle, ImportBundle, AllowMassDelete) of an Engine
// opened with Config.Shared: the engine that owns the home does that.
var ErrShared = errors.New("sync: this engine shares its home with the engine that owns it, which runs and commits")

// errLocked is what lockExclusive returns when another holder has the lock.
var errLocked = errors.New("locked")

// lockHome takes the home lock; close the file to release it.
func lockHome(home string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(home, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sync: home lock: %w", err)
	}
	if err := lockExclusive(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errLocked) {
			return nil, &HomeInUseError{Home: home}
		}
		return nil, fmt.Errorf("sync: home lock: %w", err)
	}
	return f, nil
}

// owner returns ErrShared when e does not own its home.
func (e *Engine) owner() error {
	if e.cfg.Shared {
		return ErrShared
	}
	return nil
}
