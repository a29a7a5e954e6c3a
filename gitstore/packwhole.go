package gitstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
)

// A stored pack sent whole.
//
// A bundle's pack ends with the SHA-1 of all of its bytes, and hashing the
// output cost the sender about 0.9 s per GiB even when every entry was
// copied as stored (packreuse.go). When the objects to send are exactly the
// objects of one of our packs (a first sync of a store whose history is
// one pack: after a first scan, or after maintenance consolidated
// everything), that pack is itself a valid pack of them, whatever the
// order the walk listed them in: git and ApplyBundle accept any order in
// which deltas come after their bases. So the bundle's pack is that pack,
// byte for byte, and its trailer is the one stored: nothing is hashed. Each
// entry is still checked against the CRC-32 its index recorded before it
// is sent (copyEntry), and the trailer was checked against the index's
// copy of it when the pack was opened, so nothing damaged goes out.
//
// It applies only when the stored pack's header is the one we would write
// (version 2, the count of the list), its entries start right after it
// (no gap), every delta's base is in the pack before it (an OFS_DELTA's
// always is; a REF_DELTA's must be), no chain is deeper than
// maxTreeDeltaDepth (the limit receivers hold stored packs to), and no
// whole tree has a previous version that the peer has (the entry-by-entry
// path sends such a tree as a small delta against it: an incremental
// bundle stays thin), unless the pack is to be self-contained anyway (a
// bundle carrying a big file: selfContainedMin). So a scan that committed
// a big file in a pack of its own (a scan commits big files last, after
// the small ones) sends that pack as it is, and the receiver adopts it.
// Otherwise the pack is written entry by entry.

// wholePack returns the one stored pack that holds exactly list's objects
// and can be sent as it is (see above), or nil.
func (p *bundlePackWriter) wholePack() (*packFile, error) {
	objs := p.list.objs
	if len(objs) == 0 {
		return nil, nil
	}
	first, ok := p.src.locate(objs[0].h)
	if !ok || first.p.n != len(objs) {
		return nil, nil
	}
	pk := first.p
	// The list's hashes are distinct and as many as the pack's entries:
	// all of them in pk means they are pk's objects.
	for i := range objs {
		if l, ok := p.src.locate(objs[i].h); !ok || l.p != pk {
			return nil, nil
		}
	}
	hdr, err := p.src.read(pk, 0, 12)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(hdr, packHeader(len(objs))) || pk.offset(int(pk.order[0])) != 12 {
		return nil, nil
	}
	depth := make([]int32, pk.n)
	for _, pos := range pk.order {
		l := objLoc{pk, int(pos)}
		h, err := p.src.header(l)
		if err != nil {
			return nil, err
		}
		var base int
		switch h.typ {
		case plumbing.OFSDeltaObject:
			if base, ok = pk.atOffset(h.baseOff); !ok {
				return nil, fmt.Errorf("pack %s: no entry at delta base offset %d", pk.name, h.baseOff)
			}
		case plumbing.REFDeltaObject:
			if base, ok = pk.find(h.baseHash); !ok || pk.offset(base) >= l.off() {
				return nil, nil // a thin pack's base, or a later one
			}
		case plumbing.TreeObject:
			if i := p.list.index[pk.hash(int(pos))]; !p.selfContained && !objs[i].base.IsZero() && !p.list.has(objs[i].base) {
				return nil, nil // the peer has a version to send it against
			}
			continue
		default:
			continue
		}
		if depth[pos] = depth[base] + 1; depth[pos] > maxTreeDeltaDepth {
			return nil, nil
		}
	}
	return pk, nil
}

// packHeader is the header of a version 2 pack of n objects.
func packHeader(n int) []byte {
	hdr := make([]byte, 12)
	copy(hdr, "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(n))
	return hdr
}

// copyPack writes pk (see wholePack) as the bundle's pack: its header, each
// entry after its CRC check, and its stored trailer, hashing nothing.
func (p *bundlePackWriter) copyPack(ctx context.Context, pk *packFile) error {
	p.sum = nil
	if _, err := p.Write(packHeader(pk.n)); err != nil {
		return err
	}
	for i, pos := range pk.order {
		if i%256 == 0 {
			if err := ctxErr(ctx); err != nil {
				return err
			}
		}
		l := objLoc{pk, int(pos)}
		p.buf = p.buf[:0]
		if err := p.copyEntry(l, l.off()); err != nil {
			return fmt.Errorf("gitstore: write pack: object %s: %w", pk.hash(int(pos)), err)
		}
	}
	trailer, err := p.src.read(pk, pk.size-20, 20)
	if err != nil {
		return err
	}
	if _, err := p.w.Write(trailer); err != nil {
		return err
	}
	p.src.reused, p.src.fresh, p.src.whole = pk.n, 0, true
	return nil
}
