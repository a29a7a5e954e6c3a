package gitstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ApplyBundle reads a git bundle from r (ours or one made by
// `git bundle create`, thin or not) and integrates it into main. It never
// trusts the bundle: the header is parsed with hard caps, the only ref
// allowed is refs/heads/main, prerequisites must exist here, every object
// hashes to its name, the new history must be connected and every entry of
// every new tree must pass the safety rules ([ValidPath], no gitlinks, no
// symlinks unless allowed). A bundle failing any check returns a
// *BundleError and nothing is written: no object, no ref, no file.
//
// Then refs/peers/<peer>/main is set to the bundle head and main integrates
// it: UpToDate when the head is already in our history, FastForward when our
// head is an ancestor of it (or we have none), Merged otherwise (three-way
// merge, see the package documentation). Uncommitted local edits are
// committed first, as by [Store.Scan], so a local edit is never clobbered;
// a file edited while the checkout runs is left alone for the next Scan.
func (s *Store) ApplyBundle(ctx context.Context, r io.Reader, peer string) (ApplyResult, error) {
	pref, err := peerRef(peer)
	if err != nil {
		return ApplyResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ApplyResult{}, ErrClosed
	}
	if err := ctxErr(ctx); err != nil {
		return ApplyResult{}, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	hdr, err := readBundleHeader(br)
	if err != nil {
		return ApplyResult{}, &BundleError{Reason: "bad header", Err: err}
	}
	if len(hdr.refs) != 1 || hdr.refs[0].name != string(mainRef) {
		for _, ref := range hdr.refs {
			if ref.name != string(mainRef) {
				return ApplyResult{}, &BundleError{Object: fromPlumbing(ref.hash),
					Reason: fmt.Sprintf("ref %q not allowed (only %s)", ref.name, mainRef)}
			}
		}
		return ApplyResult{}, &BundleError{Reason: "duplicate ref " + string(mainRef)}
	}
	theirs := hdr.refs[0].hash
	for _, p := range hdr.prereqs {
		ok, err := s.hasCommitLocked(p)
		if err != nil {
			return ApplyResult{}, err
		}
		if !ok {
			return ApplyResult{}, &BundleError{Object: fromPlumbing(p), Reason: "missing prerequisite"}
		}
	}
	// The pack is spooled to a temporary file next to our packs, so large
	// blobs are never held in memory; what is kept is copied into a pack of
	// ours (a bundle may be thin, or hold objects we have), and the spool is
	// deleted whatever happens.
	spool, err := os.CreateTemp(filepath.Join(s.gitDir, "objects", "pack"), packTmpPrefix+"*.bundle")
	if err != nil {
		if _, merr := os.Lstat(s.gitDir); merr != nil {
			// The folder guard: never recreate a vanished marker.
			return ApplyResult{}, fmt.Errorf("%w: %w", ErrNotInitialized, merr)
		}
		return ApplyResult{}, fmt.Errorf("gitstore: %w", err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	objs, err := readPackSpooled(ctx, br, s.maxObject, s.externalBaseLocked, spool)
	if err != nil {
		var be *BundleError
		if errors.As(err, &be) || ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return ApplyResult{}, err
		}
		return ApplyResult{}, &BundleError{Reason: "bad pack", Err: err}
	}
	keep, err := s.validateLocked(ctx, objs, theirs)
	if err != nil {
		return ApplyResult{}, err
	}

	// Everything checked. Commit local edits, then store and integrate.
	if _, err := s.scanLocked(ctx); err != nil {
		return ApplyResult{}, err
	}
	// The new objects go into one pack of ours, complete before a ref moves.
	s.beginPackLocked()
	defer s.abortPackLocked()
	if err := s.storePackObjectsLocked(keep, objs); err != nil {
		return ApplyResult{}, err
	}
	if err := s.endPackLocked(); err != nil {
		return ApplyResult{}, err
	}
	if err := s.setRefLocked(pref, theirs); err != nil {
		return ApplyResult{}, err
	}
	res, err := s.integrateLocked(ctx, theirs)
	res.PeerHead = fromPlumbing(theirs)
	if err == nil {
		s.log.Info("gitstore: applied bundle", "peer", peer, "kind", res.Kind.String(),
			"head", res.Head, "changed", len(res.Changed), "conflicts", len(res.Conflicts))
	}
	return res, err
}

// storePackObjectsLocked writes the objects keep of objs into the pack
// being written, each delta base before the objects made from it, so that
// deltas that came in the bundle are kept (as OFS_DELTA) instead of storing
// every tree version whole.
func (s *Store) storePackObjectsLocked(keep []plumbing.Hash, objs map[plumbing.Hash]*packObject) error {
	kept := make(map[plumbing.Hash]bool, len(keep))
	for _, h := range keep {
		kept[h] = true
	}
	done := make(map[plumbing.Hash]bool, len(keep))
	for _, h := range keep {
		// Walk down the chain of bases not stored yet, store bottom up.
		var chain []plumbing.Hash
		for c := h; kept[c] && !done[c]; c = objs[c].baseHash {
			chain = append(chain, c)
			done[c] = true
		}
		for i := len(chain) - 1; i >= 0; i-- {
			if err := s.storePackObjectLocked(chain[i], objs[chain[i]]); err != nil {
				return err
			}
		}
	}
	return nil
}

// storePackObjectLocked writes o, named h, into the pack being written: as
// the delta it came as when its base is in that pack, streaming a large
// blob from the spool, else whole.
func (s *Store) storePackObjectLocked(h plumbing.Hash, o *packObject) error {
	if o.delta != nil {
		if done, err := s.pw.writeDelta(h, o.typ, o.data, o.baseHash, o.delta); err != nil || done {
			return err
		}
	}
	if o.data != nil || o.spool == nil {
		_, err := s.writeObjectLocked(o.typ, o.data)
		return err
	}
	rc, err := o.reader()
	if err != nil {
		return fmt.Errorf("gitstore: read spooled %s: %w", h, err)
	}
	defer rc.Close()
	got, ok, err := s.pw.writeBlobFrom(rc, o.size)
	if err != nil {
		return fmt.Errorf("gitstore: store %s: %w", h, err)
	}
	if !ok || got != h {
		return fmt.Errorf("gitstore: store %s: spooled copy differs", h)
	}
	return nil
}

// externalBaseLocked returns a local object as a delta base for a thin pack,
// or nil if we do not have it.
func (s *Store) externalBaseLocked(h plumbing.Hash) (*packObject, error) {
	o, err := s.st.EncodedObject(plumbing.AnyObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gitstore: read %s: %w", h, err)
	}
	if o.Size() > s.maxObject {
		return nil, &BundleError{Object: fromPlumbing(h), Reason: "delta base too large"}
	}
	rc, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return &packObject{typ: o.Type(), data: data, size: int64(len(data))}, nil
}

// validateLocked walks the history new in the pack from head and checks that
// it is connected and that every new tree is safe. It returns the pack
// objects reachable from head.
func (s *Store) validateLocked(ctx context.Context, objs map[plumbing.Hash]*packObject, head plumbing.Hash) ([]plumbing.Hash, error) {
	type item struct {
		h    plumbing.Hash
		typ  plumbing.ObjectType
		path string // directory path of a tree, file path of a blob
	}
	var keep []plumbing.Hash
	visited := map[plumbing.Hash]bool{}
	stack := []item{{head, plumbing.CommitObject, ""}}
	reject := func(it item, reason string, err error) error {
		return &BundleError{Path: it.path, Object: fromPlumbing(it.h), Reason: reason, Err: err}
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[it.h] {
			continue
		}
		visited[it.h] = true
		if len(visited)%1024 == 0 {
			if err := ctxErr(ctx); err != nil {
				return nil, err
			}
		}
		o, inPack := objs[it.h]
		if !inPack {
			lo, err := s.st.EncodedObject(plumbing.AnyObject, it.h)
			if errors.Is(err, plumbing.ErrObjectNotFound) {
				return nil, reject(it, "missing object (history not connected)", nil)
			}
			if err != nil {
				return nil, fmt.Errorf("gitstore: %w", err)
			}
			if lo.Type() != it.typ {
				return nil, reject(it, fmt.Sprintf("object is a %s, want %s", lo.Type(), it.typ), nil)
			}
			continue // ours: already validated and connected
		}
		if o.typ != it.typ {
			return nil, reject(it, fmt.Sprintf("object is a %s, want %s", o.typ, it.typ), nil)
		}
		keep = append(keep, it.h)
		mo := memObject(o)
		switch o.typ {
		case plumbing.CommitObject:
			var c object.Commit
			if err := c.Decode(mo); err != nil {
				return nil, reject(it, "malformed commit", err)
			}
			stack = append(stack, item{c.TreeHash, plumbing.TreeObject, ""})
			for _, p := range c.ParentHashes {
				stack = append(stack, item{p, plumbing.CommitObject, ""})
			}
		case plumbing.TreeObject:
			var t object.Tree
			if err := t.Decode(mo); err != nil {
				return nil, reject(it, "malformed tree", err)
			}
			names := make(map[string]bool, len(t.Entries))
			for _, e := range t.Entries {
				p := e.Name
				if it.path != "" {
					p = it.path + "/" + e.Name
				}
				sub := item{e.Hash, plumbing.BlobObject, p}
				if err := validComponent(e.Name); err != nil {
					return nil, reject(sub, "unsafe path", err)
				}
				if names[e.Name] {
					return nil, reject(sub, "duplicate tree entry", nil)
				}
				names[e.Name] = true
				switch e.Mode {
				case filemode.Dir:
					sub.typ = plumbing.TreeObject
				case filemode.Regular, filemode.Executable, filemode.Deprecated:
				case filemode.Symlink:
					if !s.allowSymlinks {
						return nil, reject(sub, "symlink not allowed in this folder", nil)
					}
				case filemode.Submodule:
					return nil, reject(sub, "gitlink (submodule) not allowed", nil)
				default:
					return nil, reject(sub, fmt.Sprintf("unsupported mode %o", uint32(e.Mode)), nil)
				}
				stack = append(stack, sub)
			}
		case plumbing.BlobObject:
			if o.size > s.maxObject {
				return nil, reject(it, "object too large", nil)
			}
		}
	}
	return keep, nil
}

func memObject(o *packObject) *plumbing.MemoryObject {
	mo := &plumbing.MemoryObject{}
	mo.SetType(o.typ)
	mo.Write(o.data)
	return mo
}

// integrateLocked moves main to include theirs: nothing, fast-forward or
// merge, checking out the difference.
func (s *Store) integrateLocked(ctx context.Context, theirs plumbing.Hash) (ApplyResult, error) {
	ours, ourTree, err := s.headTreeLocked()
	if err != nil {
		return ApplyResult{}, err
	}
	res := ApplyResult{Head: fromPlumbing(ours), Kind: UpToDate}
	theirC, err := s.commitLocked(theirs)
	if err != nil {
		return res, err
	}
	var ourC *object.Commit
	if !ours.IsZero() {
		if ourC, err = s.commitLocked(ours); err != nil {
			return res, err
		}
		if ours == theirs {
			return res, nil
		}
		if anc, err := theirC.IsAncestor(ourC); err != nil {
			return res, fmt.Errorf("gitstore: %w", err)
		} else if anc {
			return res, nil
		}
	}
	ourFlat := ourTree.flat()
	ff := ourC == nil
	if !ff {
		if ff, err = ourC.IsAncestor(theirC); err != nil {
			return res, fmt.Errorf("gitstore: %w", err)
		}
	}
	if ff {
		tree, err := s.loadTreeLocked(theirC.TreeHash)
		if err != nil {
			return res, err
		}
		changed, err := s.checkoutLocked(ctx, ourFlat, tree.flat())
		if err != nil {
			return res, err
		}
		if err := s.setRefLocked(mainRef, theirs); err != nil {
			return res, err
		}
		s.root, s.rootHead = tree, theirs
		return ApplyResult{Head: fromPlumbing(theirs), Kind: FastForward, Changed: changed}, nil
	}

	merged, conflicts, err := s.mergeLocked(ourC, theirC, ourFlat)
	if err != nil {
		return res, err
	}
	tree, err := buildTree(merged)
	if err != nil {
		return res, err
	}
	treeHash, err := s.writeTreeLocked(tree)
	if err != nil {
		return res, err
	}
	mh, err := s.mergeCommitLocked(ourC, theirC, treeHash)
	if err != nil {
		return res, err
	}
	changed, err := s.checkoutLocked(ctx, ourFlat, merged)
	if err != nil {
		return res, err
	}
	if err := s.setRefLocked(mainRef, mh); err != nil {
		return res, err
	}
	s.root, s.rootHead = tree, mh
	return ApplyResult{Head: fromPlumbing(mh), Kind: Merged, Changed: changed, Conflicts: conflicts}, nil
}

// mergeCommitLocked writes the merge commit of a and b. It is canonical, so
// two peers merging each other's heads make the very same commit: parents
// sorted by hash, author and committer taken from the newer parent (ties:
// larger e-mail), time = that parent's committer time, message "merge".
func (s *Store) mergeCommitLocked(a, b *object.Commit, tree plumbing.Hash) (plumbing.Hash, error) {
	parents := []plumbing.Hash{a.Hash, b.Hash}
	sort.Slice(parents, func(i, j int) bool { return parents[i].String() < parents[j].String() })
	newer := a
	if newerCommit(b, a) {
		newer = b
	}
	sig := newer.Committer
	return s.newCommitLocked(tree, parents, "merge\n", sig)
}

// newerCommit reports whether a wins over b: later committer time, ties by
// the larger author e-mail, then the larger hash.
func newerCommit(a, b *object.Commit) bool {
	ta, tb := a.Committer.When.Unix(), b.Committer.When.Unix()
	if ta != tb {
		return ta > tb
	}
	if a.Author.Email != b.Author.Email {
		return a.Author.Email > b.Author.Email
	}
	return a.Hash.String() > b.Hash.String()
}

// conflictName is Syncthing's conflict copy name for p, lost by commit c:
// name.sync-conflict-YYYYMMDD-HHMMSS-<first 7 of the author e-mail>.ext
func conflictName(p string, c *object.Commit) string {
	dir, base := path.Split(p)
	ext := path.Ext(base)
	if ext == base {
		ext = "" // a dotfile such as ".bashrc" has no extension
	}
	stem := base[:len(base)-len(ext)]
	dev := []byte(c.Author.Email)
	if len(dev) > 7 {
		dev = dev[:7]
	}
	for i, ch := range dev { // the e-mail came from a peer: keep it a plain name
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			dev[i] = '_'
		}
	}
	ts := c.Committer.When.UTC().Format("20060102-150405")
	return dir + stem + ".sync-conflict-" + ts + "-" + string(dev) + ext
}
