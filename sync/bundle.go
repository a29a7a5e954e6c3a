package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// ImportPeer is the name under which bundles imported from a file (not
// received from a connected peer) record their head:
// refs/peers/IMPORT/main.
const ImportPeer = "IMPORT"

// ExportBundle writes a plain git bundle of folder's head to w, containing
// what is not reachable from since (nil = the whole history). It returns
// gitstore.ErrNothingToSend when since already covers our head.
func (e *Engine) ExportBundle(ctx context.Context, folder string, since []gitstore.Hash, w io.Writer) (gitstore.BundleInfo, error) {
	if err := e.owner(); err != nil {
		return gitstore.BundleInfo{}, err
	}
	st, err := e.store(folder)
	if err != nil {
		return gitstore.BundleInfo{}, err
	}
	// Commit what is on disk first, so the bundle carries the folder as it is.
	if _, err := e.scanFolder(ctx, folder); err != nil {
		return gitstore.BundleInfo{}, err
	}
	info, err := st.WriteBundle(ctx, w, since)
	if err != nil {
		return info, fmt.Errorf("sync: export %q: %w", folder, err)
	}
	return info, nil
}

// ImportBundle validates and applies a bundle read from r to folder (the
// sneakernet path: a USB stick, mail), merging and checking out as for a
// bundle from a connected peer. from names the source for
// refs/peers/<from>/main: a DeviceID string, or ImportPeer. A hostile or
// broken bundle returns a *gitstore.BundleError naming the offending entry,
// and nothing is written.
func (e *Engine) ImportBundle(ctx context.Context, folder string, r io.Reader, from string) (gitstore.ApplyResult, error) {
	if err := e.owner(); err != nil {
		return gitstore.ApplyResult{}, err
	}
	st, err := e.store(folder)
	if err != nil {
		return gitstore.ApplyResult{}, err
	}
	before, _ := st.Head()
	res, err := st.ApplyBundle(ctx, r, from)
	if err != nil {
		return res, fmt.Errorf("sync: import into %q: %w", folder, err)
	}
	if res.Kind != gitstore.UpToDate {
		e.emit(Event{Kind: EventRemoteApplied, Folder: folder, Head: res.Head, Paths: res.Changed, Conflicts: res.Conflicts})
		e.announce(folder)
	} else if res.Head != before {
		// An apply first commits the folder's local edits (gitstore's
		// ApplyBundle): a bundle we already had can still move our head,
		// and no scan will report those commits.
		e.announce(folder)
	}
	return res, nil
}

// ExportSealedBundle writes a bundle of folder sealed to the recipients
// (crypto.Seal: age, openable only by them, signed by this device). With
// since nil, the bundle starts from the revision the sync table says every
// recipient already has (if they all have the same one), so a regular
// courier only carries what is new. A recipient we only receive the
// folder from (DirReceive) is refused.
func (e *Engine) ExportSealedBundle(ctx context.Context, folder string, since []gitstore.Hash, to []crypto.DeviceID, w io.Writer) (gitstore.BundleInfo, error) {
	if len(to) == 0 {
		return gitstore.BundleInfo{}, errors.New("sync: sealed export needs at least one recipient")
	}
	e.mu.Lock()
	for _, d := range to {
		if p, ok := e.conf.peer(d); ok && !p.direction(folder).sends() {
			e.mu.Unlock()
			return gitstore.BundleInfo{}, fmt.Errorf("sync: sealed export: folder %q is only received from %s (direction receive)", folder, d)
		}
	}
	e.mu.Unlock()
	if since == nil {
		// Incremental only from a revision every recipient is known to have;
		// otherwise one of them could lack the prerequisites.
		e.mu.Lock()
		h := e.tab.Known[to[0]][folder]
		for _, d := range to[1:] {
			if e.tab.Known[d][folder] != h {
				h = gitstore.Hash{}
			}
		}
		e.mu.Unlock()
		if !h.IsZero() {
			since = []gitstore.Hash{h}
		}
	}
	sw, err := crypto.Seal(ctx, w, to, e.cfg.Identity)
	if err != nil {
		return gitstore.BundleInfo{}, fmt.Errorf("sync: seal: %w", err)
	}
	info, err := e.ExportBundle(ctx, folder, since, sw)
	if err != nil {
		return info, err
	}
	if err := sw.Close(); err != nil {
		return info, fmt.Errorf("sync: seal: %w", err)
	}
	return info, nil
}

// ImportSealedBundle opens a sealed bundle with this device's identity,
// checks that it was sealed by a peer that shares folder (and whose
// direction is not DirSend: we never apply its history), and applies it
// like ImportBundle. The whole stream is decrypted and its signature
// verified (into a temporary file in the state directory) before any of it
// is applied. It returns the verified sender.
func (e *Engine) ImportSealedBundle(ctx context.Context, folder string, r io.Reader) (gitstore.ApplyResult, crypto.DeviceID, error) {
	tmpDir := filepath.Join(e.cfg.Home, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return gitstore.ApplyResult{}, crypto.DeviceID{}, fmt.Errorf("sync: %w", err)
	}
	vf, sender, err := crypto.OpenVerified(ctx, r, e.cfg.Identity, tmpDir)
	if err != nil {
		return gitstore.ApplyResult{}, sender, fmt.Errorf("sync: open sealed bundle: %w", err)
	}
	defer vf.Close()
	e.mu.Lock()
	p, known := e.conf.peer(sender)
	shared := e.conf.shares(sender, folder)
	e.mu.Unlock()
	switch {
	case !known:
		return gitstore.ApplyResult{}, sender, fmt.Errorf("sync: sealed bundle from %s: %w", sender, crypto.ErrUnknownPeer)
	case !shared:
		return gitstore.ApplyResult{}, sender, fmt.Errorf("sync: sealed bundle from %s: folder %q is not shared with that peer", sender, folder)
	case !p.direction(folder).receives():
		return gitstore.ApplyResult{}, sender, fmt.Errorf("sync: sealed bundle from %s: folder %q is only sent to that peer (direction send)", sender, folder)
	}
	res, err := e.ImportBundle(ctx, folder, vf, sender.String())
	if err == nil {
		e.setKnown(sender, folder, res.PeerHead)
	}
	return res, sender, err
}
