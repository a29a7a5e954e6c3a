package cli

import (
	"errors"
	"fmt"

	"github.com/peersync/peersync/sync"
)

// The daemon lock is the engine's home lock (see sync.Config.Shared): `run`
// owns the home for its lifetime. While it runs, the commands call its
// HTTP API (daemon.go), except bundle import and export, which refuse:
// they would race it on the same repository. Without a daemon, the
// commands that commit (scan, restore, revert, bundle) and those that
// change the configuration own the home for their moment; the commands
// that only read (status, history) open it shared.

// errDaemonRunning says the home is owned by a running daemon.
var errDaemonRunning = errors.New("the daemon is running")

// ownEngine opens the engine owning the home, for a command (what) that
// commits, or explains what to do instead when the daemon runs.
func (a *app) ownEngine(what string) (*sync.Engine, error) {
	e, _, err := a.engine(sync.Config{})
	var inUse *sync.HomeInUseError
	if errors.As(err, &inUse) {
		return nil, fmt.Errorf("%s: %w for %s; it commits changes itself (stop it with Ctrl-C to %s by hand)", what, errDaemonRunning, a.home, what)
	}
	return e, err
}
