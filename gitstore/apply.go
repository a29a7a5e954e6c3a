package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/peersync/peersync/internal/atomicfile"
)

// ApplyBundle reads a git bundle from r (ours or one made by
// `git bundle create`, thin or not) and integrates it into main. It never
// trusts the bundle: the header is parsed with hard caps, the only ref
// allowed is refs/heads/main, prerequisites must exist here, every object
// hashes to its name, the new history must be connected and every entry of
// every new tree must pass the safety rules ([ValidPath], no gitlinks, no
// symlinks unless allowed), and the bundle must stay within Config.Limits
// and MaxObjectSize (a *BundleError wrapping a *LimitError names the limit).
// A bundle failing any check returns a *BundleError and nothing is written:
// no object, no ref, no file. A *DiskFullError (wrapping ErrDiskFull) says the folder's disk is
// short of Limits.MinFreeBytes (nothing written either, or, when found
// before the checkout, only the verified objects).
//
// peer is the DeviceID that delivered the bundle, as authenticated by the
// caller; History reports it as Change.From for the commits new here.
//
// Then refs/peers/<peer>/main is set to the bundle head and main integrates
// it: UpToDate when the head is already in our history, FastForward when our
// head is an ancestor of it (or we have none), Merged otherwise (three-way
// merge, see the package documentation). Uncommitted local edits are
// committed first, as by [Store.Scan], so a local edit is never clobbered;
// a file edited while the checkout runs is left alone for the next Scan.
func (s *Store) ApplyBundle(ctx context.Context, r io.Reader, peer string) (ApplyResult, error) {
	return s.applyWith(ctx, peer, func() (plumbing.Hash, []plumbing.Hash, error) { return s.receiveBundle(ctx, r) })
}

// applyWith is ApplyBundle with the bundle received (read, checked and
// stored) by receive.
func (s *Store) applyWith(ctx context.Context, peer string, receive func() (plumbing.Hash, []plumbing.Hash, error)) (ApplyResult, error) {
	pref, err := peerRef(peer)
	if err != nil {
		return ApplyResult{}, err
	}
	// The long part (spool, checks, storing the pack) holds applyMu only,
	// and reads through a storage of its own: reads, scans and bundle
	// writes go on meanwhile. mu is taken for the rest.
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.pub.shut.Load() {
		return ApplyResult{}, ErrClosed
	}
	t0 := time.Now()
	theirs, newCommits, err := receive()
	if err != nil {
		return ApplyResult{}, err
	}
	tStored := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ApplyResult{}, ErrClosed
	}
	s.st.Reindex() // the new pack
	// Commit local edits, then integrate.
	if _, err := s.scanLocked(ctx); err != nil {
		return ApplyResult{}, err
	}
	tScanned := time.Now()
	if err := s.recordReceived(newCommits, peer); err != nil {
		return ApplyResult{}, diskFullError(err)
	}
	if err := s.setRefLocked(pref, theirs); err != nil {
		return ApplyResult{}, diskFullError(err)
	}
	res, err := s.integrateReportLocked(ctx, theirs, peer)
	res.PeerHead = fromPlumbing(theirs)
	if err == nil {
		// The phases' wall times say where a first sync's apply goes
		// (stored: the pack read, checked and kept; scan: local edits
		// committed first; checkout: the merge or fast-forward and files).
		s.opts.log.Info("gitstore: applied bundle", "peer", peer, "kind", res.Kind.String(),
			"head", res.Head, "changed", len(res.Changed), "conflicts", len(res.Conflicts),
			"stored", tStored.Sub(t0).Round(time.Millisecond), "scan", tScanned.Sub(tStored).Round(time.Millisecond),
			"checkout", time.Since(tScanned).Round(time.Millisecond))
	}
	return res, err
}

// applyRun is the state of the part of an ApplyBundle that runs under
// applyMu alone: a storage of its own (go-git's is not safe for concurrent
// use) and the pack being written.
type applyRun struct {
	s        *Store // its settings only (immutable), and treeStats (applyMu)
	st       *filesystem.Storage
	pw       *packWriter
	treeMemo map[plumbing.Hash]treeStat // the stats checkTreeLimits found
}

// applyPackGen is the generation of the packs ApplyBundle writes (scans
// count theirs from 1; no tree delta refers to an applied pack's objects).
const applyPackGen = 1 << 63

// receiveBundle reads, checks and stores the bundle of r: it returns its
// head and the commits new here once every object is in a complete pack of
// ours, or a *BundleError with nothing written.
func (s *Store) receiveBundle(ctx context.Context, r io.Reader) (theirs plumbing.Hash, newCommits []plumbing.Hash, err error) {
	if err := ctxErr(ctx); err != nil {
		return theirs, nil, err
	}
	// A bundle whose size is known is refused before it is read when it
	// could not be spooled.
	if n := declaredSize(r); n > s.opts.limits.MaxSpoolBytes {
		return theirs, nil, &BundleError{Reason: "over a limit",
			Err: &LimitError{Limit: "Limits.MaxSpoolBytes", Value: n, Max: s.opts.limits.MaxSpoolBytes}}
	} else if err := checkFree(spoolDir(s.gitDir), max(n, 0), s.opts.limits.MinFreeBytes, "spool"); err != nil {
		return theirs, nil, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	hdr, err := readBundleHeader(br)
	if err != nil {
		return theirs, nil, &BundleError{Reason: "bad header", Err: err}
	}
	// The pack is spooled to a temporary file next to our packs, so large
	// blobs are never held in memory; the spool becomes our pack when it
	// is what we would write (adoptSpool), else what is kept is copied into
	// a pack of ours (a bundle may be thin, or hold objects we have), and
	// the spool is deleted.
	// 0444 less the umask, as our packs: it may become one.
	spool, err := atomicfile.CreateTemp(spoolDir(s.gitDir), packTmpPrefix+"*.bundle", 0o444)
	if err != nil {
		if _, merr := os.Lstat(s.gitDir); merr != nil {
			// The folder guard: never recreate a vanished marker.
			return theirs, nil, fmt.Errorf("%w: %w", ErrNotInitialized, merr)
		}
		return theirs, nil, fmt.Errorf("gitstore: %w", err)
	}
	adopted := false
	defer func() {
		spool.Close()
		if !adopted {
			os.Remove(spool.Name())
		}
		os.Remove(rawName(spool.Name()))
	}()
	theirs, newCommits, adopted, err = s.receivePack(ctx, hdr, spool, func(a *applyRun) (*packObjects, error) {
		return readPackSpooled(ctx, br, s.packLimits(), a.external, spool, -1)
	})
	return theirs, newCommits, err
}

// newApplyStorage opens a go-git storage of the store's objects of its
// own, for a reader that runs beside the store's (go-git's storage is not
// safe for concurrent use).
func (s *Store) newApplyStorage() *filesystem.Storage {
	return filesystem.NewStorageWithOptions(newListingFS(s.gitDir), cache.NewObjectLRU(objectCacheSize),
		filesystem.Options{LargeObjectThreshold: largeObjectThreshold})
}

// external returns the local object h as a delta base of a thin pack (nil
// when we do not have it), for readPackSpooled.
func (a *applyRun) external(h plumbing.Hash, sp *packSpool) (*packObject, error) {
	return externalBase(a.st, a.s.opts.maxObject, h, sp)
}

// receivePack checks the bundle of header hdr whose pack read reads
// (readPackSpooled, into or from spool), and stores its objects: it
// returns the bundle's head and the commits new here once every object is
// in a complete pack of ours, and whether that pack is spool itself
// (renamed). A *BundleError says nothing was written.
func (s *Store) receivePack(ctx context.Context, hdr *bundleHeader, spool *os.File, read func(*applyRun) (*packObjects, error)) (theirs plumbing.Hash, newCommits []plumbing.Hash, adopted bool, err error) {
	a := &applyRun{s: s, st: s.newApplyStorage()}
	defer a.st.Close()
	if len(hdr.refs) != 1 || hdr.refs[0].name != string(mainRef) {
		for _, ref := range hdr.refs {
			if ref.name != string(mainRef) {
				return theirs, nil, false, &BundleError{Object: fromPlumbing(ref.hash),
					Reason: fmt.Sprintf("ref %q not allowed (only %s)", ref.name, mainRef)}
			}
		}
		return theirs, nil, false, &BundleError{Reason: "duplicate ref " + string(mainRef)}
	}
	theirs = hdr.refs[0].hash
	for _, p := range hdr.prereqs {
		ok, err := hasCommitIn(a.st, p)
		if err != nil {
			return theirs, nil, false, err
		}
		if !ok {
			return theirs, nil, false, &BundleError{Object: fromPlumbing(p), Reason: "missing prerequisite"}
		}
	}
	// Where the time after the last byte goes, for a bundle big enough for
	// it to matter (a first sync's, or one carrying a big file): the wait
	// for the read of the pack, the checks, and keeping the pack.
	pc := newPhaseClock()
	var objects int
	var packBytes int64
	defer func() {
		if objects >= phaseLogMinObjects || packBytes >= phaseLogMinBytes {
			pc.log(s.opts.log, "gitstore: stored bundle", "objects", objects, "bytes", packBytes)
		}
	}()
	objs, err := read(a)
	pc.mark("read")
	if err != nil {
		var be *BundleError
		var le *LimitError
		switch {
		case errors.As(err, &be) || errors.Is(err, ErrDiskFull) || ctx.Err() != nil && errors.Is(err, ctx.Err()):
			return theirs, nil, false, err
		case errors.As(err, &le):
			return theirs, nil, false, &BundleError{Reason: "over a limit", Err: le}
		case isNoSpace(err): // our disk, not the bundle
			return theirs, nil, false, diskFullError(err)
		}
		return theirs, nil, false, &BundleError{Reason: "bad pack", Err: err}
	}
	defer objs.close()
	objects, packBytes = len(objs.list), objs.end
	keep, err := a.validate(ctx, objs, theirs)
	pc.mark("validate")
	if err != nil {
		return theirs, nil, false, err
	}
	if err := a.checkTreeLimits(ctx, objs, theirs); err != nil {
		return theirs, nil, false, err
	}
	pc.mark("limits")
	// Everything checked. The commits new here, for the received log.
	for _, o := range keep {
		if o.typ == plumbing.CommitObject && a.st.HasEncodedObject(o.hash) != nil {
			newCommits = append(newCommits, o.hash)
		}
	}
	if adoptable(objs, keep) {
		// The pack is what we would write: it becomes ours as it came.
		if err := adoptSpool(spoolDir(s.gitDir), spool, objs, pc); err != nil {
			return theirs, nil, false, diskFullError(fmt.Errorf("gitstore: keep pack: %w", err))
		}
		a.keepTreeStats()
		return theirs, newCommits, true, nil
	}
	// Otherwise the new objects go into one pack of ours, complete before a ref moves;
	// all or nothing, even for a few objects (see packWriter.packOnly).
	a.pw = newPackWriter(spoolDir(s.gitDir), func(h plumbing.Hash) bool { return a.st.HasEncodedObject(h) == nil },
		applyPackGen, func(plumbing.ObjectType, []byte) (plumbing.Hash, error) {
			return plumbing.ZeroHash, errors.New("gitstore: an applied bundle is never stored loose")
		})
	a.pw.packOnly = true
	defer a.pw.abort()
	objs = nil // keep holds what is needed; the rest may go
	if err := a.storeObjects(keep); err != nil {
		return theirs, nil, false, diskFullError(err)
	}
	if _, err := a.pw.finish(); err != nil {
		return theirs, nil, false, diskFullError(fmt.Errorf("gitstore: write pack: %w", err))
	}
	pc.mark("store")
	a.keepTreeStats()
	return theirs, newCommits, false, nil
}

// storeObjects writes the objects keep into the pack being written, each
// delta base before the objects made from it, so that deltas that came in
// the bundle are kept (as OFS_DELTA) instead of storing every tree version
// whole. It clears keep as it goes.
func (a *applyRun) storeObjects(keep []*packObject) error {
	for _, o := range keep {
		o.kept = true
	}
	var chain []*packObject
	for i, o := range keep {
		keep[i] = nil // once stored, only later deltas keep it (as their base)
		// Walk down the chain of bases not stored yet, store bottom up.
		chain = chain[:0]
		for ; o != nil && o.kept && !o.stored; o = o.base {
			chain = append(chain, o)
			o.stored = true
		}
		for i := len(chain) - 1; i >= 0; i-- {
			if err := a.storeObject(chain[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// storeObject writes o into the pack being written: as the delta
// it came as when its base is in that pack and both its content and its
// base are at most largeObjectThreshold (go-git reads a delta's base and
// result into memory), else whole (a blob over 1 MiB streamed from the
// spool).
func (a *applyRun) storeObject(o *packObject) error {
	h := o.hash
	if o.isDelta && o.size <= largeObjectThreshold && o.base.size <= largeObjectThreshold && o.dsize < o.size/2 {
		delta, err := o.deltaData()
		if err != nil {
			return fmt.Errorf("gitstore: read spooled %s: %w", h, err)
		}
		if done, err := a.pw.writeDelta(h, o.typ, o.size, o.base.hash, delta); err != nil || done {
			return err
		}
	}
	if o.spool == nil || o.data != nil || o.size <= spoolCacheMax {
		var data []byte
		var err error
		if o.spool != nil && o.data == nil && !o.isDelta && !o.inRaw {
			data, err = o.spool.inflate(o.spoolOff, o.size) // read once: not worth caching
		} else {
			data, err = o.content()
		}
		if err != nil {
			return fmt.Errorf("gitstore: read spooled %s: %w", h, err)
		}
		got, err := a.pw.writeObject(o.typ, data)
		if err == nil && got != h {
			err = fmt.Errorf("gitstore: store %s: spooled copy differs", h)
		}
		return err
	}
	rc, err := o.reader()
	if err != nil {
		return fmt.Errorf("gitstore: read spooled %s: %w", h, err)
	}
	defer rc.Close()
	got, ok, err := a.pw.writeBlobFrom(rc, o.size)
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
	return externalBase(s.st, s.opts.maxObject, h, nil)
}

// externalBase is externalBaseLocked on storage st that copies a large
// object into sp's raw file rather than memory.
func externalBase(st *filesystem.Storage, maxObject int64, h plumbing.Hash, sp *packSpool) (*packObject, error) {
	o, err := st.EncodedObject(plumbing.AnyObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gitstore: read %s: %w", h, err)
	}
	if o.Size() > maxObject {
		return nil, &BundleError{Object: fromPlumbing(h), Reason: "delta base too large"}
	}
	rc, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if sp != nil && o.Size() > deltaInMemoryMax {
		off, err := sp.appendRaw(rc, o.Size())
		if err != nil {
			return nil, err
		}
		return &packObject{typ: o.Type(), size: o.Size(), resolved: true, inRaw: true, rawOff: off, spool: sp}, nil
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return &packObject{typ: o.Type(), data: data, size: int64(len(data)), resolved: true}, nil
}

// validate walks the history new in the pack from head and checks that
// it is connected and that every new tree is safe. It returns the pack
// objects reachable from head. Entries naming objects already checked are
// not walked again (a folder's trees change one entry per commit), and
// trees are parsed in place, so its cost follows the new entries.
func (a *applyRun) validate(ctx context.Context, objs *packObjects, head plumbing.Hash) ([]*packObject, error) {
	type item struct {
		h         plumbing.Hash
		typ       plumbing.ObjectType
		dir, name string // the entry's directory and name (a commit's tree: "", "")
	}
	pathOf := func(it item) string {
		if it.dir == "" {
			return it.name
		}
		return it.dir + "/" + it.name
	}
	var keep []*packObject
	visited := map[plumbing.Hash]bool{} // objects of ours met (those of the pack: packObject.kept)
	seen := func(h plumbing.Hash) bool {
		if o := objs.get(h); o != nil {
			return o.kept
		}
		return visited[h]
	}
	stack := []item{{h: head, typ: plumbing.CommitObject}}
	reject := func(it item, reason string, err error) error {
		return &BundleError{Path: pathOf(it), Object: fromPlumbing(it.h), Reason: reason, Err: err}
	}
	versions := treeVersions{}
	for n := 0; len(stack) > 0; n++ {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n%1024 == 0 {
			if err := ctxErr(ctx); err != nil {
				return nil, err
			}
		}
		o := objs.get(it.h)
		if o == nil {
			if visited[it.h] {
				continue
			}
			visited[it.h] = true
			lo, err := a.st.EncodedObject(plumbing.AnyObject, it.h)
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
		if o.kept {
			continue
		}
		if o.typ != it.typ {
			return nil, reject(it, fmt.Sprintf("object is a %s, want %s", o.typ, it.typ), nil)
		}
		keep = append(keep, o)
		o.kept = true
		var data []byte
		if o.typ != plumbing.BlobObject {
			var err error
			if data, err = o.content(); err != nil {
				return nil, fmt.Errorf("gitstore: read spooled %s: %w", it.h, err)
			}
		}
		switch o.typ {
		case plumbing.CommitObject:
			var c object.Commit
			if err := c.Decode(memObject(o.typ, data)); err != nil {
				return nil, reject(it, "malformed commit", err)
			}
			stack = append(stack, item{h: c.TreeHash, typ: plumbing.TreeObject})
			for _, p := range c.ParentHashes {
				stack = append(stack, item{h: p, typ: plumbing.CommitObject})
			}
		case plumbing.TreeObject:
			// Only the entries that differ from the directory's version
			// validated last are looked at (applytrees.go says why that
			// checks the same).
			dir := pathOf(it)
			err := versions.check(dir, data, func(mode filemode.FileMode, name []byte, h plumbing.Hash) error {
				if err := validComponentBytes(name); err != nil {
					return reject(item{h: h, dir: dir, name: string(name)}, "unsafe path", err)
				}
				typ := plumbing.BlobObject
				switch mode {
				case filemode.Dir:
					typ = plumbing.TreeObject
				case filemode.Regular, filemode.Executable, filemode.Deprecated:
				case filemode.Symlink:
					if !a.s.opts.allowSymlinks {
						return reject(item{h: h, dir: dir, name: string(name)}, "symlink not allowed in this folder", nil)
					}
				case filemode.Submodule:
					return reject(item{h: h, dir: dir, name: string(name)}, "gitlink (submodule) not allowed", nil)
				default:
					return reject(item{h: h, dir: dir, name: string(name)}, fmt.Sprintf("unsupported mode %o", uint32(mode)), nil)
				}
				if !seen(h) {
					stack = append(stack, item{h: h, typ: typ, dir: dir, name: string(name)})
				}
				return nil
			}, func(name []byte, h plumbing.Hash, reason string) error {
				if name == nil {
					return reject(it, reason, nil)
				}
				return reject(item{h: h, dir: dir, name: string(name)}, reason, nil)
			})
			if err != nil {
				return nil, err
			}
		case plumbing.BlobObject:
			if o.size > a.s.opts.maxObject {
				return nil, reject(it, "object too large", nil)
			}
		}
	}
	return keep, nil
}

// parseTreeEntry parses the first entry of a raw tree: "<octal mode>
// <name>\0<20-byte hash>". ok is false when it is malformed.
func parseTreeEntry(b []byte) (mode filemode.FileMode, name []byte, h plumbing.Hash, rest []byte, ok bool) {
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 || sp > 7 {
		return 0, nil, h, nil, false
	}
	var m uint32
	for _, c := range b[:sp] {
		if c < '0' || c > '7' {
			return 0, nil, h, nil, false
		}
		m = m<<3 | uint32(c-'0')
	}
	b = b[sp+1:]
	nul := bytes.IndexByte(b, 0)
	if nul < 0 || len(b) < nul+1+len(h) {
		return 0, nil, h, nil, false
	}
	copy(h[:], b[nul+1:])
	return filemode.FileMode(m), b[:nul], h, b[nul+1+len(h):], true
}

func memObject(typ plumbing.ObjectType, data []byte) *plumbing.MemoryObject {
	mo := &plumbing.MemoryObject{}
	mo.SetType(typ)
	mo.Write(data)
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
		theirFlat := tree.flat()
		changed, err := s.checkoutLocked(ctx, ourFlat, theirFlat)
		if err != nil {
			return res, err
		}
		if err := s.setRefLocked(mainRef, theirs); err != nil {
			return res, err
		}
		s.cur.root, s.cur.rootHead = tree, theirs
		return ApplyResult{Head: fromPlumbing(theirs), Kind: FastForward, Changed: changed}, nil
	}

	if othersMerge(ourC, theirC) {
		return res, nil
	}
	merged, conflicts, err := s.mergeLocked(ourC, theirC, ourFlat)
	if err != nil {
		return res, err
	}
	tree, err := buildTree(merged)
	if err != nil {
		return res, err
	}
	// The merge's trees and commit go into a pack of their own (loose when
	// few, as for a small scan), complete before any file or ref changes.
	s.beginPackLocked()
	defer s.abortPackLocked()
	s.packs.pw.checkAll = true
	treeHash, err := s.writeTreeLocked(tree)
	if err != nil {
		return res, err
	}
	mh, err := s.mergeCommitLocked(ourC, theirC, treeHash)
	if err != nil {
		return res, err
	}
	if err := s.endPackLocked(); err != nil {
		return res, err
	}
	changed, err := s.checkoutLocked(ctx, ourFlat, merged)
	if err != nil {
		return res, err
	}
	if err := s.setRefLocked(mainRef, mh); err != nil {
		return res, err
	}
	s.cur.root, s.cur.rootHead = tree, mh
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
