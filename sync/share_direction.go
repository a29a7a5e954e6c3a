package sync

import (
	"context"
	"fmt"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// notSent caches FolderStatus.NotSent for one pair of our head and the
// state received (computing it reads both trees).
type notSent struct {
	head, received gitstore.Hash
	n              int
}

// receiveOnlyPeersLocked lists the peers folder id is shared with in
// DirReceive. e.mu must be held.
func (e *Engine) receiveOnlyPeersLocked(id string) []crypto.DeviceID {
	var out []crypto.DeviceID
	for _, p := range e.conf.Peers {
		if e.conf.shares(p.Device, id) && p.direction(id) == DirReceive {
			out = append(out, p.Device)
		}
	}
	return out
}

// receivedState returns the last state folder id received from a peer it
// only receives from: the head of the last bundle applied from the first
// such peer (in the order of the configuration) that sent one. ok is
// false when the folder is receive-only with no peer; rev is zero when
// nothing was received yet.
func (e *Engine) receivedState(id string, st *gitstore.Store) (rev gitstore.Hash, ok bool, err error) {
	e.mu.Lock()
	peers := e.receiveOnlyPeersLocked(id)
	e.mu.Unlock()
	for _, d := range peers {
		h, err := st.PeerHead(d.String())
		if err != nil {
			return gitstore.Hash{}, true, err
		}
		if !h.IsZero() {
			return h, true, nil
		}
	}
	return gitstore.Hash{}, len(peers) > 0, nil
}

// notSentCount returns FolderStatus.NotSent of folder id, whose head is
// head.
func (e *Engine) notSentCount(id string, st *gitstore.Store, head gitstore.Hash) int {
	rev, ok, err := e.receivedState(id, st)
	if err != nil || !ok {
		return 0
	}
	// Nothing received yet (rev zero): every file here is not sent.
	e.mu.Lock()
	c := e.folderLocked(id).sent
	e.mu.Unlock()
	if c.head == head && c.received == rev {
		return c.n
	}
	paths, err := st.Differs(rev)
	if err != nil {
		return 0
	}
	e.mu.Lock()
	e.folderLocked(id).sent = notSent{head: head, received: rev, n: len(paths)}
	e.mu.Unlock()
	return len(paths)
}

// RevertFolder brings folder id, which this device only receives from some
// peer (DirReceive), back to the last state received from it (see
// FolderStatus.NotSent): every file edited, added or deleted here since is
// put back as a new commit, one per file, so the local versions stay in the
// history. Local edits are committed first. It returns the commits made.
func (e *Engine) RevertFolder(ctx context.Context, id string) ([]gitstore.Change, error) {
	if err := e.owner(); err != nil {
		return nil, err
	}
	st, err := e.store(id)
	if err != nil {
		return nil, err
	}
	rev, ok, err := e.receivedState(id, st)
	switch {
	case err != nil:
		return nil, fmt.Errorf("sync: revert %q: %w", id, err)
	case !ok:
		return nil, fmt.Errorf("sync: revert %q: the folder is not receive-only with any peer", id)
	case rev.IsZero():
		return nil, fmt.Errorf("sync: revert %q: nothing received yet", id)
	}
	changes, err := st.Revert(ctx, rev)
	e.localChanges(id, st, changes)
	if err != nil {
		return changes, fmt.Errorf("sync: revert %q: %w", id, err)
	}
	return changes, nil
}
