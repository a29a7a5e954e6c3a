package gitstore

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// maxPackObjects caps the object count a pack header may declare.
const maxPackObjects = 1 << 24

// packObject is a fully resolved object read from a pack.
type packObject struct {
	typ  plumbing.ObjectType
	data []byte // the content; nil for a large blob left in the spool
	size int64
	// spool and spoolOff locate a large blob's zlib stream in the spooled
	// pack (see readPackSpooled).
	spool    *os.File
	spoolOff int64
	// hash is the object's name; for an object that came as a delta,
	// baseHash and delta are its base and the delta, reused when storing.
	hash     plumbing.Hash
	baseHash plumbing.Hash
	delta    []byte
}

// reader returns the content of o, streaming it from the spool for a large
// blob.
func (o *packObject) reader() (io.ReadCloser, error) {
	if o.data != nil || o.spool == nil {
		return io.NopCloser(bytes.NewReader(o.data)), nil
	}
	zr, err := zlib.NewReader(bufio.NewReaderSize(io.NewSectionReader(o.spool, o.spoolOff, 1<<62), 64<<10))
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(zr, o.size), zr}, nil
}

// content returns the content of o, reading a large blob into memory (only
// for the rare delta against one).
func (o *packObject) content() ([]byte, error) {
	if o.data != nil || o.spool == nil {
		return o.data, nil
	}
	rc, err := o.reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data := make([]byte, 0, o.size)
	if _, err := io.Copy(bytesWriter{&data}, rc); err != nil {
		return nil, err
	}
	if int64(len(data)) != o.size {
		return nil, fmt.Errorf("spooled object is %d bytes, want %d", len(data), o.size)
	}
	return data, nil
}

// packEntry is an object as stored in the pack: a whole object or a delta.
type packEntry struct {
	offset   int64
	typ      plumbing.ObjectType
	data     []byte // inflated content, or the delta
	baseOff  int64  // OFS_DELTA base offset
	baseHash plumbing.Hash
	// A large blob is not kept in memory: its hash and size are computed
	// while it streams by, and it is read again from the spool.
	large   bool
	hash    plumbing.Hash
	size    int64
	dataOff int64
}

// hashingReader hashes every byte read, for the pack trailer checksum. It
// implements io.ByteReader so that zlib reads exactly its own stream.
type hashingReader struct {
	r       *bufio.Reader
	h       hash.Hash
	pending []byte
	n       int64
	tee     *bufio.Writer // when not nil, gets every byte read
	teeErr  error
}

func (p *hashingReader) flush() {
	p.h.Write(p.pending)
	p.copyToTee(p.pending)
	p.pending = p.pending[:0]
}

func (p *hashingReader) copyToTee(b []byte) {
	if p.tee != nil && p.teeErr == nil {
		_, p.teeErr = p.tee.Write(b)
	}
}

func (p *hashingReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.flush()
	p.h.Write(b[:n])
	p.copyToTee(b[:n])
	p.n += int64(n)
	return n, err
}

func (p *hashingReader) ReadByte() (byte, error) {
	c, err := p.r.ReadByte()
	if err == nil {
		p.pending = append(p.pending, c)
		if len(p.pending) >= 4096 {
			p.flush()
		}
		p.n++
	}
	return c, err
}

// readPack reads a whole packfile from r and resolves its deltas. Bases of a
// thin pack that are not in the pack come from external. Every object's
// hash is computed from its content; the trailer checksum must match and
// nothing may follow it.
func readPack(ctx context.Context, r *bufio.Reader, maxObject int64, external func(plumbing.Hash) (*packObject, error)) (map[plumbing.Hash]*packObject, error) {
	return readPackSpooled(ctx, r, maxObject, external, nil)
}

// readPackSpooled is readPack that, when spool is not nil, copies the pack
// into spool (an empty temporary file) as it reads and keeps blobs larger
// than largeObjectThreshold out of memory: their hash is computed while they
// stream by, and packObject.reader reads them again from the spool. Memory
// then stays bounded whatever the size of the files in the bundle (except
// for a delta against a large blob, resolved in memory).
func readPackSpooled(ctx context.Context, r *bufio.Reader, maxObject int64, external func(plumbing.Hash) (*packObject, error), spool *os.File) (map[plumbing.Hash]*packObject, error) {
	hr := &hashingReader{r: r, h: sha1.New()}
	if spool != nil {
		hr.tee = bufio.NewWriterSize(spool, 256<<10)
	}
	var hdr [12]byte
	if _, err := io.ReadFull(hr, hdr[:]); err != nil {
		return nil, fmt.Errorf("pack header: %w", err)
	}
	if string(hdr[:4]) != "PACK" {
		return nil, errors.New("pack signature missing")
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != 2 && v != 3 {
		return nil, fmt.Errorf("pack version %d not supported", v)
	}
	count := binary.BigEndian.Uint32(hdr[8:12])
	if count > maxPackObjects {
		return nil, fmt.Errorf("pack declares %d objects (limit %d)", count, maxPackObjects)
	}
	entries := make([]*packEntry, 0, min(count, 1<<16))
	byOffset := map[int64]*packEntry{}
	zr := io.ReadCloser(nil)
	for i := uint32(0); i < count; i++ {
		if i%256 == 0 {
			if err := ctxErr(ctx); err != nil {
				return nil, err
			}
		}
		e := &packEntry{offset: hr.n}
		c, err := hr.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", i, err)
		}
		e.typ = plumbing.ObjectType((c >> 4) & 7)
		size := int64(c & 15)
		for shift := 4; c&0x80 != 0; shift += 7 {
			if shift > 56 {
				return nil, fmt.Errorf("object %d: size overflow", i)
			}
			if c, err = hr.ReadByte(); err != nil {
				return nil, fmt.Errorf("object %d: %w", i, err)
			}
			size |= int64(c&0x7f) << shift
		}
		if size > maxObject {
			return nil, fmt.Errorf("object %d: size %d exceeds limit %d", i, size, maxObject)
		}
		switch e.typ {
		case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
		case plumbing.OFSDeltaObject:
			c, err := hr.ReadByte()
			if err != nil {
				return nil, fmt.Errorf("object %d: %w", i, err)
			}
			off := int64(c & 0x7f)
			for c&0x80 != 0 {
				if off > 1<<48 {
					return nil, fmt.Errorf("object %d: delta offset overflow", i)
				}
				if c, err = hr.ReadByte(); err != nil {
					return nil, fmt.Errorf("object %d: %w", i, err)
				}
				off = ((off + 1) << 7) | int64(c&0x7f)
			}
			e.baseOff = e.offset - off
			if off <= 0 || byOffset[e.baseOff] == nil {
				return nil, fmt.Errorf("object %d: bad delta base offset", i)
			}
		case plumbing.REFDeltaObject:
			if _, err := io.ReadFull(hr, e.baseHash[:]); err != nil {
				return nil, fmt.Errorf("object %d: %w", i, err)
			}
		default:
			return nil, fmt.Errorf("object %d: invalid type %d", i, e.typ)
		}
		dataOff := hr.n
		if zr == nil {
			zr, err = zlib.NewReader(hr)
		} else {
			err = zr.(zlib.Resetter).Reset(hr, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", i, err)
		}
		if spool != nil && e.typ == plumbing.BlobObject && size > largeObjectThreshold {
			e.large, e.size, e.dataOff = true, size, dataOff
			hs := sha1.New()
			fmt.Fprintf(hs, "blob %d\x00", size)
			n, err := io.Copy(hs, io.LimitReader(zr, size+1))
			if err != nil {
				return nil, fmt.Errorf("object %d: inflate: %w", i, err)
			}
			if n != size {
				return nil, fmt.Errorf("object %d: inflated size %d, header says %d", i, n, size)
			}
			hs.Sum(e.hash[:0])
			entries = append(entries, e)
			byOffset[e.offset] = e
			continue
		}
		var buf bytes.Buffer
		n, err := io.Copy(&buf, io.LimitReader(zr, size+1))
		if err != nil {
			return nil, fmt.Errorf("object %d: inflate: %w", i, err)
		}
		if n != size {
			return nil, fmt.Errorf("object %d: inflated size %d, header says %d", i, n, size)
		}
		e.data = buf.Bytes()
		entries = append(entries, e)
		byOffset[e.offset] = e
	}
	hr.flush()
	sum := hr.h.Sum(nil)
	var trailer [20]byte
	if _, err := io.ReadFull(r, trailer[:]); err != nil {
		return nil, fmt.Errorf("pack trailer: %w", err)
	}
	if !bytes.Equal(sum, trailer[:]) {
		return nil, errors.New("pack checksum mismatch")
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return nil, errors.New("trailing data after pack")
	}
	if hr.tee != nil {
		if err := errors.Join(hr.teeErr, hr.tee.Flush()); err != nil {
			return nil, fmt.Errorf("spool pack: %w", err)
		}
	}
	return resolvePack(ctx, entries, maxObject, external, spool)
}

// resolvePack applies deltas until every entry is a whole object.
func resolvePack(ctx context.Context, entries []*packEntry, maxObject int64, external func(plumbing.Hash) (*packObject, error), spool *os.File) (map[plumbing.Hash]*packObject, error) {
	objs := make(map[plumbing.Hash]*packObject, len(entries))
	byOffset := map[int64]*packObject{}
	var pending []*packEntry
	for _, e := range entries {
		if e.typ.IsDelta() {
			pending = append(pending, e)
			continue
		}
		if e.large {
			o := &packObject{typ: e.typ, size: e.size, spool: spool, spoolOff: e.dataOff, hash: e.hash}
			objs[e.hash] = o
			byOffset[e.offset] = o
			continue
		}
		o := &packObject{typ: e.typ, data: e.data, size: int64(len(e.data))}
		o.hash = plumbing.ComputeHash(o.typ, o.data)
		objs[o.hash] = o
		byOffset[e.offset] = o
	}
	for len(pending) > 0 {
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		var next []*packEntry
		for _, e := range pending {
			var base *packObject
			if e.typ == plumbing.OFSDeltaObject {
				base = byOffset[e.baseOff]
			} else if base = objs[e.baseHash]; base == nil {
				b, err := external(e.baseHash)
				if err != nil {
					return nil, err
				}
				if b != nil {
					b.hash = e.baseHash
				}
				base = b
			}
			if base == nil {
				next = append(next, e)
				continue
			}
			if sz := deltaTargetSize(e.data); sz < 0 || sz > maxObject {
				return nil, fmt.Errorf("delta at offset %d: bad or oversized target", e.offset)
			}
			baseData, err := base.content()
			if err != nil {
				return nil, fmt.Errorf("delta base at offset %d: %w", e.offset, err)
			}
			data, err := patchDelta(baseData, e.data)
			if err != nil {
				return nil, fmt.Errorf("delta at offset %d: %w", e.offset, err)
			}
			o := &packObject{typ: base.typ, data: data, size: int64(len(data)), baseHash: base.hash, delta: e.data}
			o.hash = plumbing.ComputeHash(o.typ, o.data)
			objs[o.hash] = o
			byOffset[e.offset] = o
		}
		if len(next) == len(pending) {
			e := next[0]
			return nil, &BundleError{Object: fromPlumbing(e.baseHash), Reason: "delta base not found (missing prerequisite?)"}
		}
		pending = next
	}
	return objs, nil
}

// patchDelta applies a git delta; go-git refuses an empty base, which git
// itself may use, so that case is handled here.
func patchDelta(base, delta []byte) ([]byte, error) {
	if len(base) == 0 {
		base = []byte{}
		src, rest, ok := deltaVarint(delta)
		if !ok || src != 0 {
			return nil, errors.New("invalid delta")
		}
		size, rest, ok := deltaVarint(rest)
		if !ok {
			return nil, errors.New("invalid delta")
		}
		var out []byte
		for len(rest) > 0 {
			cmd := rest[0]
			rest = rest[1:]
			if cmd == 0 || cmd&0x80 != 0 || int(cmd) > len(rest) {
				return nil, errors.New("invalid delta against empty base")
			}
			out = append(out, rest[:cmd]...)
			rest = rest[cmd:]
		}
		if int64(len(out)) != size {
			return nil, errors.New("invalid delta size")
		}
		return out, nil
	}
	return packfile.PatchDelta(base, delta)
}

// deltaTargetSize returns the result size a delta declares, -1 if malformed.
func deltaTargetSize(delta []byte) int64 {
	_, rest, ok := deltaVarint(delta)
	if !ok {
		return -1
	}
	sz, _, ok := deltaVarint(rest)
	if !ok {
		return -1
	}
	return sz
}

func deltaVarint(b []byte) (int64, []byte, bool) {
	var v int64
	for shift := 0; shift < 63; shift += 7 {
		if len(b) == 0 {
			return 0, nil, false
		}
		c := b[0]
		b = b[1:]
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, b, true
		}
	}
	return 0, nil, false
}
