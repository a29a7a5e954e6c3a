package sync

import (
	"context"
	"errors"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// integrateHeld integrates head, announced by pc's peer for folder, when
// we hold that commit already and so fetch nothing: it came in a bundle
// (of this peer or another) while the merge rule had the peer merge our
// two heads of the same files, and our head may have changed since (see
// gitstore's "Merge rule"). Without this, two peers could each wait for the
// other's merge for good. It runs aside from the control stream's reader;
// gitstore.Store.IntegrateHead is quick when there is nothing to do. A
// folder stopped by the mass-delete guard waits for the user, as fetches
// do; a failure is reported as a failed fetch.
func (e *Engine) integrateHeld(ctx context.Context, pc *peerConn, folder string, head gitstore.Hash) {
	st, err := e.store(folder)
	if err != nil {
		return
	}
	e.mu.Lock()
	stopped := e.folderLocked(folder).paused != nil
	e.mu.Unlock()
	if stopped {
		return
	}
	e.wg.Go(func() {
		r, err := st.IntegrateHead(ctx, head, pc.peer.String())
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, gitstore.ErrClosed) {
				e.mu.Lock()
				in := e.inboundLocked(jobKey{pc.peer, folder})
				e.mu.Unlock()
				e.fetchFailed(pc, folder, in, err)
			}
			return
		}
		if r.Kind != gitstore.UpToDate {
			e.emit(Event{Kind: EventRemoteApplied, Peer: pc.peer, Folder: folder, Head: r.Head, Paths: r.Changed, Conflicts: r.Conflicts})
			e.announce(folder)
		}
	})
}

// sendsTo reports whether we send folder to peer (announce our head to it).
func (e *Engine) sendsTo(peer crypto.DeviceID, folder string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conf.sendsTo(peer, folder)
}
