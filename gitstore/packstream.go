package gitstore

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// The pack of a bundle, streamed.
//
// go-git's packfile encoder reads every object into memory and searches
// deltas in a window; for a bundle we know better deltas for free: the walk
// (treewalk.go) gives each tree and blob its previous version, the object at
// the same path in a parent commit. A tree, or a blob under
// bundleDeltaMaxSize, is sent as a delta against that version when the
// delta (copy the common prefix, insert the middle, copy the common suffix)
// is less than half its size: an OFS_DELTA when the base is earlier in this
// pack, a REF_DELTA when the peer already has it (a thin pack, as
// `git bundle create` writes; git fetch and ApplyBundle complete it). Every
// other object is copied whole, streaming from the object store, so a
// multi-GiB file never sits in memory. This is the path of the objects
// that cannot go out as stored (packreuse.go): loose ones, and deltas whose
// base is not sent before them.

const (
	// bundleDeltaMaxSize: blobs at least this big are always sent whole.
	bundleDeltaMaxSize = 1 << 20
	// rawCacheEntries bounds the cache of object contents kept as delta
	// bases for the next versions.
	rawCacheEntries = 256
)

// bundlePackWriter writes the pack of a bundle.
type bundlePackWriter struct {
	// st reads the objects src does not (loose ones, streamed big ones):
	// the export's read view, or maintenance's own storage.
	st    storer.EncodedObjectStorer
	src   *objectSource
	list  *sendList
	w     *bufio.Writer
	sum   hash.Hash // nil when a stored pack is copied whole (packwhole.go)
	off   int64
	z     zlibWriters
	buf   []byte
	delta []byte
	raw   map[plumbing.Hash][]byte // small contents kept as delta bases
	// onObject, if set, is called before object i is written, and with
	// len(list.objs) after the last (maintain.go keeps each entry's CRC).
	onObject func(i int) error
	// selfContained: no delta against a base outside this pack (see
	// selfContainedMin).
	selfContained bool
}

// selfContainedMin is how many bytes of stored entries make a bundle's
// pack self-contained: no delta against an object the peer has (a tree's
// previous version goes out whole instead, a few KiB more), so that the
// receiver can adopt the pack as it comes (apply_adopt.go) rather than
// store every object again: for a bundle that carries a big file (a video
// added to a folder already in sync), that second store meant hashing,
// compressing and writing the file again. Smaller bundles stay thin, as
// git's are. A variable for tests.
var selfContainedMin int64 = 16 << 20

// carriesAtLeast reports whether list's objects stored in our packs take
// min bytes or more there (loose objects are small: they do not count).
// Only a bundle that names objects the peer has (some base set) asks.
func carriesAtLeast(src *objectSource, list *sendList, min int64) bool {
	var n int64
	for i := range list.objs {
		if l, ok := src.locate(list.objs[i].h); ok {
			if n += l.p.end[l.pos] - l.off(); n >= min {
				return true
			}
		}
	}
	return false
}

func (p *bundlePackWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if p.sum != nil {
		p.sum.Write(b[:n])
	}
	p.off += int64(n)
	return n, err
}

// writeBundlePack writes to w the pack of list's objects, reading them
// from src and st: one of our packs as it is when it holds exactly those
// objects (packwhole.go), else the objects in list's order.
func writeBundlePack(ctx context.Context, w *bufio.Writer, st storer.EncodedObjectStorer, src *objectSource, list *sendList) error {
	p := &bundlePackWriter{st: st, src: src, list: list, w: w, sum: sha1.New(), raw: map[plumbing.Hash][]byte{}}
	defer p.z.release()
	src.whole = false
	for i := range list.objs {
		if !list.objs[i].base.IsZero() { // the peer has versions of some
			p.selfContained = carriesAtLeast(src, list, selfContainedMin)
			break
		}
	}
	pk, err := p.wholePack()
	if err != nil {
		return fmt.Errorf("gitstore: write pack: %w", err)
	}
	if pk != nil {
		return p.copyPack(ctx, pk)
	}
	_, err = p.writePack(ctx)
	return err
}

// writePack writes the pack and returns its checksum.
func (p *bundlePackWriter) writePack(ctx context.Context) (plumbing.Hash, error) {
	src, list := p.src, p.list
	src.reused, src.fresh = 0, 0
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(list.objs)))
	if _, err := p.Write(hdr[:]); err != nil {
		return plumbing.ZeroHash, err
	}
	for i := range list.objs {
		if i%256 == 0 {
			if err := ctxErr(ctx); err != nil {
				return plumbing.ZeroHash, err
			}
		}
		if p.onObject != nil {
			if err := p.onObject(i); err != nil {
				return plumbing.ZeroHash, err
			}
		}
		o := &list.objs[i]
		if l, ok := src.locate(o.h); ok {
			done, err := p.reuse(o, l)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("gitstore: write pack: object %s: %w", o.h, err)
			}
			if done {
				src.reused++
				continue
			}
		}
		src.fresh++
		if err := p.object(o); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("gitstore: write pack: object %s: %w", o.h, err)
		}
	}
	if p.onObject != nil {
		if err := p.onObject(len(list.objs)); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	var sum plumbing.Hash
	p.sum.Sum(sum[:0])
	_, err := p.w.Write(sum[:])
	return sum, err
}

// written returns the entry of h in this pack, if written already.
func (p *bundlePackWriter) written(h plumbing.Hash) (*sendObj, bool) {
	i, ok := p.list.index[h]
	if !ok || p.list.objs[i].off < 0 {
		return nil, false
	}
	return &p.list.objs[i], true
}

// object writes o: as a delta against its base when that pays, else whole.
// A small loose object (the common case: the objects of single-file scans
// not yet consolidated) is read by src, in one read of its file; the rest
// through st, big blobs streaming.
func (p *bundlePackWriter) object(so *sendObj) error {
	h := so.h
	if _, packed := p.src.locate(h); !packed {
		typ, data, err := p.src.looseCached(h, bundleDeltaMaxSize-1)
		switch {
		case err == nil:
			return p.small(so, typ, data)
		case !errors.Is(err, errLooseTooBig) && !errors.Is(err, plumbing.ErrObjectNotFound):
			return err
		}
	}
	o, err := p.st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return err
	}
	typ, size := o.Type(), o.Size()
	off := p.off
	if typ == plumbing.TreeObject || typ == plumbing.BlobObject && size < bundleDeltaMaxSize {
		data, err := readAllObject(o)
		if err != nil {
			return err
		}
		return p.small(so, typ, data)
	}
	rc, err := o.Reader()
	if err != nil {
		return err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	head, _ := br.Peek(512)
	p.buf = objectHeader(p.buf[:0], typ, size)
	if _, err := p.Write(p.buf); err != nil {
		return err
	}
	z := p.z.get(p, size, typ == plumbing.BlobObject, head)
	n, err := io.Copy(z, br)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("object is %d bytes, header says %d", n, size)
	}
	if err := z.Close(); err != nil {
		return err
	}
	so.off, so.depth = off, 0
	return nil
}

// small writes so, of content data: a tree or a blob under
// bundleDeltaMaxSize as a delta against its base when that pays, anything
// else whole.
func (p *bundlePackWriter) small(so *sendObj, typ plumbing.ObjectType, data []byte) error {
	off := p.off
	deltaable := typ == plumbing.TreeObject || typ == plumbing.BlobObject && len(data) < bundleDeltaMaxSize
	if deltaable && !so.base.IsZero() && len(data) >= minDeltaAffixes {
		if done, err := p.tryDelta(so, data); err != nil || done {
			return err
		}
	}
	if err := p.entry(typ, data, -1, plumbing.ZeroHash); err != nil {
		return err
	}
	if deltaable {
		p.keep(so.h, data)
	}
	so.off, so.depth = off, 0
	return nil
}

// baseContent returns the content of base, a delta base for an object
// under bundleDeltaMaxSize, or nil when it is bigger or we lack it (the
// peer has it). Loose objects and whole packed entries are read by src;
// a stored delta through st.
func (p *bundlePackWriter) baseContent(base plumbing.Hash) ([]byte, error) {
	if l, ok := p.src.locate(base); ok {
		h, err := p.src.header(l)
		if err != nil {
			return nil, err
		}
		if h.typ != plumbing.OFSDeltaObject && h.typ != plumbing.REFDeltaObject {
			if h.size >= bundleDeltaMaxSize {
				return nil, nil
			}
			o, err := p.src.object(base, false)
			if err != nil {
				return nil, err
			}
			return o.data, nil
		}
	} else {
		_, data, err := p.src.looseCached(base, bundleDeltaMaxSize-1)
		switch {
		case err == nil:
			return data, nil
		case !errors.Is(err, errLooseTooBig) && !errors.Is(err, plumbing.ErrObjectNotFound):
			return nil, err
		}
	}
	o, err := p.st.EncodedObject(plumbing.AnyObject, base)
	if err != nil || o.Size() >= bundleDeltaMaxSize && o.Type() == plumbing.BlobObject {
		return nil, nil // the peer has it; we may not, or it is too big
	}
	return readAllObject(o)
}

// tryDelta writes so (content data) as a delta against its base if the
// base is usable and the delta is small enough; done reports whether it
// did.
func (p *bundlePackWriter) tryDelta(so *sendObj, data []byte) (done bool, err error) {
	h, base := so.h, so.base
	bo, written := p.written(base)
	switch {
	case written && bo.depth >= maxTreeDeltaDepth:
		return false, nil
	case !written && p.list.has(base):
		return false, nil // later in this pack: no forward references
	case !written && p.selfContained:
		return false, nil // the peer's version: not in a self-contained pack
	}
	baseData, ok := p.raw[base]
	if !ok {
		if baseData, err = p.baseContent(base); err != nil || baseData == nil {
			return false, err
		}
	}
	lo, tail := commonAffixes(baseData, data)
	if lo+tail < minDeltaAffixes {
		return false, nil
	}
	p.delta = appendDelta(p.delta[:0], len(baseData), data, lo, tail)
	if len(p.delta) >= len(data)/2 {
		return false, nil
	}
	off := p.off
	depth := int32(1)
	if written {
		err = p.entry(plumbing.OFSDeltaObject, p.delta, bo.off, plumbing.ZeroHash)
		depth = bo.depth + 1
	} else {
		err = p.entry(plumbing.REFDeltaObject, p.delta, -1, base)
	}
	if err != nil {
		return false, err
	}
	p.keep(h, data)
	so.off, so.depth = off, depth
	return true, nil
}

// entry writes one pack entry with content data: whole (type typ), or an
// OFS_DELTA against the entry at baseOff, or a REF_DELTA against baseHash.
func (p *bundlePackWriter) entry(typ plumbing.ObjectType, data []byte, baseOff int64, baseHash plumbing.Hash) error {
	p.buf = objectHeader(p.buf[:0], typ, int64(len(data)))
	switch typ {
	case plumbing.OFSDeltaObject:
		p.buf = ofsDeltaOffset(p.buf, p.off-baseOff)
	case plumbing.REFDeltaObject:
		p.buf = append(p.buf, baseHash[:]...)
	}
	if _, err := p.Write(p.buf); err != nil {
		return err
	}
	z := p.z.get(p, int64(len(data)), typ == plumbing.BlobObject, data)
	if _, err := z.Write(data); err != nil {
		return err
	}
	return z.Close()
}

// keep remembers data as the content of h for the next versions' deltas.
func (p *bundlePackWriter) keep(h plumbing.Hash, data []byte) {
	if len(p.raw) >= rawCacheEntries {
		for k := range p.raw {
			delete(p.raw, k)
			break
		}
	}
	p.raw[h] = data
}

// readAllObject returns the content of a (small) object.
func readAllObject(o plumbing.EncodedObject) ([]byte, error) {
	rc, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data := make([]byte, 0, o.Size())
	buf := bytesWriter{&data}
	if _, err := io.Copy(buf, rc); err != nil {
		return nil, err
	}
	if int64(len(data)) != o.Size() {
		return nil, fmt.Errorf("object is %d bytes, header says %d", len(data), o.Size())
	}
	return data, nil
}

type bytesWriter struct{ b *[]byte }

func (w bytesWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}
