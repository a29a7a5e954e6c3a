package gitstore

import (
	"errors"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// readView is a second object storage on the git directory, for reads that
// must not wait for writers: objects never change once written, and main is
// read from the Store's published head, so a reader needs neither the
// Store's mutex nor its storage (go-git's storage is not safe for
// concurrent use). Readers share a view under its mu; it is reindexed when
// main has moved since it was last indexed, so the objects main reaches are
// always found.
//
// A Store has two: rd for History and PeerHead, and exp for WriteBundle,
// which also owns the reader of our packs (src), so that a long export
// waits for no scan or apply and holds up no History (and none of them
// waits for it). Only maintenance, which removes files, takes them all
// (maintain.go: lockAll).
type readView struct {
	mu      sync.Mutex
	st      *filesystem.Storage // nil until first used, and after close
	indexed plumbing.Hash       // main when st was last (re)indexed
	closed  bool
	// src reads our packs (packread.go), for exp only; nil until the
	// first bundle.
	src *objectSource
}

// view locks the read view of History and PeerHead (s.rd) and returns its
// storage, up to date for main at head. The caller calls the returned
// unlock.
func (s *Store) view(head plumbing.Hash) (*filesystem.Storage, func(), error) {
	return s.viewOf(&s.views.rd, head)
}

// viewOf locks rv and returns its storage, up to date for main at head.
// The caller calls the returned unlock.
func (s *Store) viewOf(rv *readView, head plumbing.Hash) (*filesystem.Storage, func(), error) {
	rv.mu.Lock()
	if rv.closed || s.pub.shut.Load() {
		rv.mu.Unlock()
		return nil, nil, ErrClosed
	}
	switch {
	case rv.st == nil:
		rv.st = filesystem.NewStorageWithOptions(newListingFS(s.gitDir), cache.NewObjectLRU(objectCacheSize),
			filesystem.Options{LargeObjectThreshold: largeObjectThreshold, MaxOpenDescriptors: storeOpenPacks})
	case rv.indexed != head:
		rv.st.Reindex()
	}
	rv.indexed = head
	return rv.st, rv.mu.Unlock, nil
}

// release closes the view's storage and pack reader, which keep packs
// open (a file open cannot be removed on Windows), before maintenance
// removes packs; the next view opens new ones. The caller holds rv.mu.
func (rv *readView) release() error {
	if rv.src != nil {
		rv.src.close()
		rv.src = nil
	}
	if rv.st == nil {
		return nil
	}
	err := rv.st.Close()
	rv.st, rv.indexed = nil, plumbing.ZeroHash
	return err
}

// close closes the storage; later views return ErrClosed. It waits for the
// view's current user.
func (rv *readView) close() error {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.closed = true
	if rv.src != nil {
		rv.src.close()
		rv.src = nil
	}
	if rv.st == nil {
		return nil
	}
	st := rv.st
	rv.st = nil
	return st.Close()
}

// viewObjects reads objects through a read view's storage (the caller
// holds the view's lock). An object not found is looked for once more
// after the storage lists our packs again. Objects main reaches are always
// on disk (a ref moves only after its objects are complete, and
// maintenance removes nothing before its new pack is in place); the
// transient misses once seen here (TestHistoryDuringAppliesAndMaintenance)
// came from listings of objects/pack that failed while a file there was
// renamed, which listingFS now takes again. The second look stays as a
// guard; a miss costs one re-listing.
type viewObjects struct{ *filesystem.Storage }

// EncodedObject returns the object h, re-listing the packs once on a miss.
func (v viewObjects) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := v.Storage.EncodedObject(t, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		v.Reindex()
		o, err = v.Storage.EncodedObject(t, h)
	}
	return o, err
}
