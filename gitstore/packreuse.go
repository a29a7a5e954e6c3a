package gitstore

import (
	"fmt"
	"hash/crc32"

	"github.com/go-git/go-git/v5/plumbing"
)

// Pack reuse, as git's pack-objects does it: an object stored in one of our
// packs goes into the bundle as stored, its compressed bytes copied without
// inflating and deflating them again, once the entry's CRC-32 matches the
// one our index recorded for it (a damaged pack is an error, never sent).
//
//   - A whole object (commit, tree, blob) is copied as is.
//   - A delta (OFS_DELTA, or REF_DELTA in a pack that ApplyBundle stored)
//     whose base is already in this bundle's pack is copied with a new
//     header: an OFS_DELTA pointing at the base's place in the bundle, while
//     the chain stays within maxTreeDeltaDepth.
//   - A delta whose base is not sent but is the object's previous version in
//     a commit the peer has (sendObj.base: the peer has it) becomes a
//     REF_DELTA against it, the thin pack git bundles are.
//   - A whole tree whose previous version the peer has (the first version
//     of that tree in its pack) is written fresh, as a delta against that.
//   - Neither of those two in a self-contained pack (a bundle carrying a big
//     file, see selfContainedMin): such a delta is written fresh, whole, and
//     such a tree is copied whole.
//   - Anything else (a loose object, a delta whose base comes later or is
//     unknown to the peer) is written fresh by bundlePackWriter.object.
//
// A scan stores each new tree version as a delta against the previous one,
// and the walk lists objects oldest commit first, so in a first sync nearly
// every object is copied: the bundle costs about what reading our packs and
// hashing the output cost.

// reuseChunk is the piece size in which a big stored entry is copied.
const reuseChunk = 1 << 20

// reuse copies o's entry from l if it can (see above).
func (p *bundlePackWriter) reuse(o *sendObj, l objLoc) (bool, error) {
	h, err := p.src.header(l)
	if err != nil {
		return false, err
	}
	off := p.off
	switch h.typ {
	case plumbing.OFSDeltaObject, plumbing.REFDeltaObject:
		baseHash := h.baseHash
		if h.typ == plumbing.OFSDeltaObject {
			pos, ok := l.p.atOffset(h.baseOff)
			if !ok {
				return false, fmt.Errorf("pack %s: no entry at delta base offset %d", l.p.name, h.baseOff)
			}
			baseHash = l.p.hash(pos)
		}
		if bo, ok := p.written(baseHash); ok {
			if bo.depth >= maxTreeDeltaDepth {
				return false, nil
			}
			p.buf = objectHeader(p.buf[:0], plumbing.OFSDeltaObject, h.size)
			p.buf = ofsDeltaOffset(p.buf, off-bo.off)
			o.depth = bo.depth + 1
		} else if baseHash == o.base && !p.list.has(baseHash) && !p.selfContained {
			p.buf = objectHeader(p.buf[:0], plumbing.REFDeltaObject, h.size)
			p.buf = append(p.buf, baseHash[:]...)
			o.depth = 1
		} else {
			return false, nil
		}
	case plumbing.TreeObject:
		if !o.base.IsZero() && !p.list.has(o.base) && !p.selfContained {
			// The first version in its pack of a tree the peer has in
			// another version: a delta against that (fresh) makes the
			// thin pack smaller.
			return false, nil
		}
		fallthrough
	default:
		p.buf = p.buf[:0]
		h.dataOff = l.off() // the stored header is right as it is
		o.depth = 0
	}
	if err := p.copyEntry(l, h.dataOff); err != nil {
		return false, err
	}
	o.off = off
	return true, nil
}

// copyEntry writes p.buf (a new header, or nothing) then the stored entry
// at l from dataOff on, after checking the whole stored entry's CRC-32.
func (p *bundlePackWriter) copyEntry(l objLoc, dataOff int64) error {
	start, end := l.off(), l.p.end[l.pos]
	if end-start <= reuseChunk {
		b, err := p.src.read(l.p, start, int(end-start))
		if err != nil {
			return err
		}
		if crc32.ChecksumIEEE(b) != l.p.crc(l.pos) {
			return fmt.Errorf("pack %s: entry at %d fails its CRC check", l.p.name, start)
		}
		if _, err := p.Write(p.buf); err != nil {
			return err
		}
		_, err = p.Write(b[dataOff-start:])
		return err
	}
	// Big: check the CRC on a first pass so that nothing damaged is sent,
	// then copy.
	var crc uint32
	for at := start; at < end; at += reuseChunk {
		b, err := p.src.read(l.p, at, int(min(reuseChunk, end-at)))
		if err != nil {
			return err
		}
		crc = crc32.Update(crc, crc32.IEEETable, b)
	}
	if crc != l.p.crc(l.pos) {
		return fmt.Errorf("pack %s: entry at %d fails its CRC check", l.p.name, start)
	}
	if _, err := p.Write(p.buf); err != nil {
		return err
	}
	for at := dataOff; at < end; at += reuseChunk {
		b, err := p.src.read(l.p, at, int(min(reuseChunk, end-at)))
		if err != nil {
			return err
		}
		if _, err := p.Write(b); err != nil {
			return err
		}
	}
	return nil
}
