package sync

import (
	"errors"
	"fmt"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// folder is the engine's state of one shared folder. Its fields are
// guarded by Engine.mu.
type folder struct {
	// store is the folder's open history; nil until first used, and again
	// after its marker vanished (it is reopened once the marker is back).
	store *gitstore.Store
	// stopped says why the folder cannot sync (its store failed to open,
	// its marker is gone, a guard tripped); nil while it syncs.
	stopped error
	// paused says why the folder waits for the user to confirm a peer's
	// mass deletion (Engine.AllowMassDelete); nil otherwise.
	paused error
	// watching is the store a file watcher runs on; nil when none.
	watching *gitstore.Store
	// fetches are the bundles asked of each peer for this folder.
	fetches map[crypto.DeviceID]*inbound
	// sent caches the count of local changes not sent (receive-only).
	sent notSent
	// scan is how far a long scan has got, while one runs (progress.go).
	scan *ScanProgress
}

// folderLocked returns the state of folder id, creating it. e.mu must be
// held.
func (e *Engine) folderLocked(id string) *folder {
	f := e.folders[id]
	if f == nil {
		f = &folder{fetches: map[crypto.DeviceID]*inbound{}}
		e.folders[id] = f
	}
	return f
}

// store returns the open store of a folder, opening it if needed. A folder
// whose marker is gone (gitstore.ErrNotInitialized) is reported stopped.
func (e *Engine) store(id string) (*gitstore.Store, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if st := e.folderLocked(id).store; st != nil {
		e.mu.Unlock()
		return st, nil
	}
	fc, ok := e.conf.folder(id)
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownFolder, id)
	}
	st, err := gitstore.Open(e.storeConfig(fc.Path, false))
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("sync: folder %q at %q: %w", id, fc.Path, err)
	}
	if e.closed {
		_ = st.Close()
		return nil, ErrClosed
	}
	f := e.folderLocked(id)
	if f.store != nil { // lost a race with another opener
		_ = st.Close()
		return f.store, nil
	}
	f.store = st
	return st, nil
}

// folderGone reports whether folder is stopped because its marker is
// missing (then nothing may be fetched into it).
func (e *Engine) folderGone(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.folderLocked(id).stopped
	return err != nil && errors.Is(err, gitstore.ErrNotInitialized)
}

// folderTrouble marks a folder stopped and reports it, once per reason.
func (e *Engine) folderTrouble(id string, err error) {
	e.mu.Lock()
	f := e.folderLocked(id)
	prev := f.stopped
	f.stopped = err
	e.mu.Unlock()
	if prev == nil || prev.Error() != err.Error() {
		e.log.Warn("folder stopped", "folder", id, "err", err)
		e.emit(Event{Kind: EventFolderStopped, Folder: id, Err: err})
	}
}

func (e *Engine) folderOK(id string) {
	e.mu.Lock()
	f := e.folderLocked(id)
	was := f.stopped != nil
	f.stopped = nil
	e.mu.Unlock()
	if was {
		e.log.Info("folder syncing again", "folder", id)
		e.emit(Event{Kind: EventFolderResumed, Folder: id})
		e.announce(id) // peers that lack our head ask for it
	}
}

// closeStore closes st, the store of folder id (it is reopened on the
// next use).
func (e *Engine) closeStore(id string, st *gitstore.Store) {
	e.mu.Lock()
	if f := e.folderLocked(id); f.store == st {
		f.store = nil
	}
	e.mu.Unlock()
	_ = st.Close()
}

// closeStoreOf closes the open store of folder id, if any.
func (e *Engine) closeStoreOf(id string) {
	e.mu.Lock()
	st := e.folderLocked(id).store
	e.mu.Unlock()
	if st != nil {
		e.closeStore(id, st)
	}
}
