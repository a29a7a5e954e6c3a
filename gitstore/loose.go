package gitstore

import (
	"bytes"
	"errors"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Loose objects in an export.
//
// The newest commits of a watched folder are loose (a small scan writes
// loose objects, not a tiny pack: see "Packs" in doc.go) until maintenance
// consolidates them, so a 1-commit bundle is mostly loose objects written
// afresh (packstream.go). The tree walk (treewalk.go) has already read the
// new trees and their previous versions into the source's cache to compare
// them; the pack writer takes them from there instead of opening and
// inflating each file a second time. The since commits (the peer's head,
// likely loose too) are read once, through the source, for the walk and
// the header's subject lines, not through go-git (one lstat per path
// component, one open per read).

// looseCached returns the content of h, a loose object of at most limit
// bytes, as looseUpTo does, but from the cache when the walk of this
// export (or an earlier one) read it. The content is a copy: a cached one
// may go back to the cache's buffer pool while the caller still holds it.
func (src *objectSource) looseCached(h plumbing.Hash, limit int64) (plumbing.ObjectType, []byte, error) {
	if o := src.cache.get(h); o != nil && int64(len(o.data)) <= limit {
		return o.typ, slices.Clone(o.data), nil
	}
	return src.looseUpTo(h, limit)
}

// hasCommit reports whether h is a commit we have. An export reads a
// since commit again in its walk and for the bundle header's subject
// line, and the newest commit a peer has is likely loose: a loose or whole
// packed commit is read through src and kept in its cache. Anything else
// (not a commit, a delta, a commit over maxCachedCommit) is looked up
// through st, reading nothing big into memory.
func (src *objectSource) hasCommit(st *filesystem.Storage, h plumbing.Hash) (bool, error) {
	if o := src.cache.get(h); o != nil {
		return o.typ == plumbing.CommitObject, nil
	}
	if l, ok := src.locate(h); ok {
		eh, err := src.header(l)
		if err != nil {
			return false, err
		}
		if eh.typ != plumbing.CommitObject || eh.size > maxCachedCommit {
			return hasCommitIn(st, h)
		}
		_, err = src.object(h, true)
		return err == nil, err
	}
	typ, data, err := src.looseUpTo(h, maxCachedCommit)
	switch {
	case errors.Is(err, plumbing.ErrObjectNotFound):
		return false, nil
	case errors.Is(err, errLooseTooBig):
		return hasCommitIn(st, h)
	case err != nil:
		return false, err
	case typ != plumbing.CommitObject:
		return false, nil
	}
	src.cache.put(&cobj{h: h, typ: typ, data: data})
	return true, nil
}

// minDeltaAffixes is the least prefix and suffix in common with its base
// for which the pack writer sends a small object as a delta: so an object
// smaller than that is written whole without reading its base.
const minDeltaAffixes = 64

// maxCachedCommit bounds the commits hasCommit reads itself (ours are a
// few hundred bytes).
const maxCachedCommit = 64 << 10

// subject returns the first line of commit h's message ("" if it cannot
// be read: the subject is only a comment in a bundle's header).
func (src *objectSource) subject(h plumbing.Hash) string {
	o, err := src.object(h, true)
	if err != nil || o.typ != plumbing.CommitObject {
		return ""
	}
	_, msg, _ := bytes.Cut(o.data, []byte("\n\n"))
	line, _, _ := bytes.Cut(msg, []byte{'\n'})
	return string(line)
}
