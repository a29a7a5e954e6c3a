package gitstore

import (
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
)

// Loose objects in an export.
//
// The newest commits of a watched folder are loose (a small scan writes
// loose objects, not a tiny pack: see "Packs" in doc.go) until maintenance
// consolidates them, so a 1-commit bundle is mostly loose objects written
// afresh (packstream.go). The tree walk (treewalk.go) has already read the
// new trees and their previous versions into the source's cache to compare
// them; the pack writer takes them from there instead of opening and
// inflating each file a second time.

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
