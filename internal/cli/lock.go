package cli

import (
	"errors"
	"fmt"

	"github.com/peersync/peersync/sync"
)

// The daemon lock is the engine's home lock (see sync.Config.Shared): `run`
// owns the home for its lifetime, and so do the commands that commit to a
// folder's history (scan, restore, bundle import and export), so they never
// race a running daemon on the same repository; the commands that read or
// change the configuration (status, history, folder, peer) open the home
// shared.

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
