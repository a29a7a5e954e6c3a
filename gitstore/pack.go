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
	"hash/crc32"
	"hash/maphash"
	"io"
	"os"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// packObject is an object read from a pack. Read without a spool
// (readPack), it holds its content in data. Read with one
// (readPackSpooled), it only records where it is in the spooled pack: the
// zlib stream at spoolOff holds its content or, for a delta, the delta
// against base; content and reader fetch it from there when needed.
type packObject struct {
	hash     plumbing.Hash       // the object's name (once resolved)
	typ      plumbing.ObjectType // for a delta, its base's (once resolved)
	isDelta  bool
	resolved bool   // hash, typ and size are known
	stored   bool   // written by applyRun.storeObjects
	kept     bool   // reachable from the bundle's head (applyRun.validate)
	inRaw    bool   // the content is in the spool's raw file at rawOff
	hdrLen   uint8  // length of the entry's header in the pack
	size     int64  // content size (once resolved)
	spoolOff int64  // offset of the entry's zlib stream (after its header)
	dsize    int64  // a delta's size
	rawOff   int64  // see inRaw
	crc      uint32 // CRC-32 of the entry as it is in the pack (header and zlib data)
	// data is what is held in memory: a delta's delta (without a spool, or
	// a small one), else the content (without a spool, or an external base).
	data []byte
	// base is a delta's base: an OFS_DELTA's entry; a REF_DELTA's object
	// once found (its name is in resolvePack's refBase until then).
	base  *packObject
	spool *packSpool
}

// offset returns the offset of o's entry in the pack.
func (o *packObject) offset() int64 { return o.spoolOff - int64(o.hdrLen) }

// reader returns the content of o, streaming it from the spool for a whole
// object there.
func (o *packObject) reader() (io.ReadCloser, error) {
	if o.inRaw {
		return io.NopCloser(io.NewSectionReader(o.spool.raw, o.rawOff, o.size)), nil
	}
	if o.spool == nil || o.data != nil || o.isDelta {
		data, err := o.content()
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	zr, err := zlib.NewReader(bufio.NewReaderSize(io.NewSectionReader(o.spool.f, o.spoolOff, 1<<62), 64<<10))
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(zr, o.size), zr}, nil
}

// content returns the content of o, reading it from the spool (and
// resolving its delta chain there) when it is not in memory.
func (o *packObject) content() ([]byte, error) {
	if o.spool == nil && o.isDelta {
		return nil, errors.New("delta not resolved")
	}
	if !o.inRaw && !o.isDelta && (o.data != nil || o.spool == nil) {
		return o.data, nil
	}
	return o.spool.content(o)
}

// deltaData returns the delta of o, a delta object.
func (o *packObject) deltaData() ([]byte, error) {
	if o.data != nil || o.spool == nil {
		return o.data, nil
	}
	return o.spool.inflate(o.spoolOff, o.dsize)
}

// spoolDeltaInMemory: a spooled delta this small is also kept in memory.
// 0: every delta is read back from the spool (a first sync of 100,000
// files brings 200,000 tree deltas; keeping them would cost ~12 MB).
const spoolDeltaInMemory = 0

// hashingReader hashes every byte read, for the pack trailer checksum. It
// implements io.ByteReader so that zlib reads exactly its own stream.
type hashingReader struct {
	r       *bufio.Reader
	h       hash.Hash
	pending []byte
	n       int64
	crc     uint32        // CRC-32 of the bytes hashed since it was last zeroed
	tee     *bufio.Writer // when not nil, gets every byte read
	teeErr  error
}

func (p *hashingReader) flush() {
	p.h.Write(p.pending)
	p.crc = crc32.Update(p.crc, crc32.IEEETable, p.pending)
	p.copyToTee(p.pending)
	p.pending = p.pending[:0]
}

func (p *hashingReader) copyToTee(b []byte) {
	if p.tee != nil && p.teeErr == nil {
		_, p.teeErr = p.tee.Write(b)
	}
}

func (p *hashingReader) Read(b []byte) (int, error) {
	if p.teeErr != nil {
		return 0, p.teeErr // the spool is full: stop reading
	}
	n, err := p.r.Read(b)
	p.flush()
	p.h.Write(b[:n])
	p.crc = crc32.Update(p.crc, crc32.IEEETable, b[:n])
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
func readPack(ctx context.Context, r *bufio.Reader, maxObject int64, external func(plumbing.Hash) (*packObject, error)) (*packObjects, error) {
	lim := packLimits{maxObject: maxObject, maxTree: maxObject, maxObjects: defaultMaxObjects, maxSpool: defaultMaxSpoolBytes}
	return readPackSpooled(ctx, r, lim, func(h plumbing.Hash, _ *packSpool) (*packObject, error) { return external(h) }, nil, -1)
}

// readPackSpooled is readPack that, when spool is not nil, copies the pack
// into spool (an empty temporary file) as it reads and keeps no object's
// content in memory: a whole object's name is computed while it streams by,
// a delta is resolved by reading its base back (see packSpool), and the
// objects returned read their content from the spool when asked. With
// prefilled >= 0, spool already holds the pack (prefilled bytes, as
// Incoming received it) and r reads it from there: nothing is copied. Memory
// then stays bounded whatever the number and size of the objects in the
// bundle: about 110 bytes per object (at most Limits.MaxObjects), a 4 MiB
// cache of contents, and one tree or commit (at most Limits.MaxTreeSize);
// deltas over 1 MiB are resolved streaming (see packSpool). The limits lim
// are enforced as the pack is read. The caller closes the returned
// objects' spool (packObjects.close) and removes spool and its raw file.
func readPackSpooled(ctx context.Context, r *bufio.Reader, lim packLimits, external func(plumbing.Hash, *packSpool) (*packObject, error),
	spool *os.File, prefilled int64) (*packObjects, error) {
	maxObject := lim.maxObject
	hr := &hashingReader{r: r, h: sha1.New()}
	var sp *packSpool
	if spool != nil {
		sp = newPackSpool(spool, lim)
		if prefilled < 0 {
			hr.tee = bufio.NewWriterSize(spoolWriter{sp}, 256<<10)
		} else {
			sp.spooled = prefilled // counted against Limits.MaxSpoolBytes with the raw file
		}
	}
	var objs *packObjects
	pe, err := readPackEntries(ctx, hr, r, lim, sp)
	if err == nil {
		objs, err = resolvePack(ctx, pe, maxObject, external, sp)
	}
	if err != nil && sp != nil {
		sp.close()
	}
	return objs, err
}

// readPackEntries reads the entries of the pack, checks its trailer and
// returns the entries, in pack order, for resolvePack.
// (One function over 120 lines: a single pass over the stream, whose
// offset bookkeeping every kind of entry shares.)
func readPackEntries(ctx context.Context, hr *hashingReader, r *bufio.Reader, lim packLimits, sp *packSpool) (*packEntries, error) {
	maxObject := lim.maxObject
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
	if int64(count) > lim.maxObjects {
		return nil, &LimitError{Limit: "Limits.MaxObjects", Value: int64(count), Max: lim.maxObjects}
	}
	entries := make([]*packObject, 0, min(count, 1<<16))
	byOffset := func(off int64) *packObject {
		i := sort.Search(len(entries), func(i int) bool { return entries[i].offset() >= off })
		if i < len(entries) && entries[i].offset() == off {
			return entries[i]
		}
		return nil
	}
	zr := io.ReadCloser(nil)
	var hs hash.Hash
	var refBase map[*packObject]plumbing.Hash // REF_DELTA bases, by name
	copyBuf := make([]byte, 32<<10)
	for i := uint32(0); i < count; i++ {
		if i%256 == 0 {
			if err := ctxErr(ctx); err != nil {
				return nil, err
			}
		}
		hr.flush() // the previous entry's last bytes
		if len(entries) > 0 {
			entries[len(entries)-1].crc = hr.crc
		}
		hr.crc = 0
		offset := hr.n
		e := &packObject{spool: sp}
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
			return nil, fmt.Errorf("object %d: size %d exceeds limit %d: %w", i, size, maxObject,
				&LimitError{Limit: "MaxObjectSize", Value: size, Max: maxObject})
		}
		if (e.typ == plumbing.CommitObject || e.typ == plumbing.TreeObject) && size > lim.maxTree {
			return nil, fmt.Errorf("object %d: %w", i, &LimitError{Limit: "Limits.MaxTreeSize", Value: size, Max: lim.maxTree})
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
			if off <= 0 {
				return nil, fmt.Errorf("object %d: bad delta base offset", i)
			}
			if e.base = byOffset(offset - off); e.base == nil {
				return nil, fmt.Errorf("object %d: bad delta base offset", i)
			}
			e.isDelta = true
		case plumbing.REFDeltaObject:
			var bh plumbing.Hash
			if _, err := io.ReadFull(hr, bh[:]); err != nil {
				return nil, fmt.Errorf("object %d: %w", i, err)
			}
			if refBase == nil {
				refBase = map[*packObject]plumbing.Hash{}
			}
			refBase[e] = bh
			e.isDelta = true
		default:
			return nil, fmt.Errorf("object %d: invalid type %d", i, e.typ)
		}
		hr.flush() // so that the spool holds everything before the zlib stream
		e.spoolOff = hr.n
		if hr.n-offset > 255 {
			return nil, fmt.Errorf("object %d: header too long", i)
		}
		e.hdrLen = uint8(hr.n - offset)
		if zr == nil {
			zr, err = zlib.NewReader(hr)
		} else {
			err = zr.(zlib.Resetter).Reset(hr, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", i, err)
		}
		if hr.teeErr != nil {
			return nil, hr.teeErr
		}
		if sp != nil && (!e.isDelta || size > spoolDeltaInMemory) {
			// Leave it in the spool: hash a whole object as it streams by.
			var n int64
			if e.isDelta {
				e.dsize = size
				n, err = io.Copy(io.Discard, io.LimitReader(zr, size+1))
			} else {
				if hs == nil {
					hs = sha1.New()
				}
				hs.Reset()
				fmt.Fprintf(hs, "%s %d\x00", e.typ, size)
				dst := io.Writer(hs)
				pre := sp.pre.start(e.typ, size) // a big file, into the folder too
				if pre != nil {
					dst = io.MultiWriter(hs, pre)
				}
				n, err = io.CopyBuffer(dst, io.LimitReader(zr, size+1), copyBuf)
				hs.Sum(e.hash[:0])
				e.size, e.resolved = size, true
				if pre != nil {
					sp.pre.end(e.hash, err == nil && n == size)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("object %d: inflate: %w", i, err)
			}
			if n != size {
				return nil, fmt.Errorf("object %d: inflated size %d, header says %d", i, n, size)
			}
			entries = append(entries, e)
			continue
		}
		var data []byte
		if sp != nil {
			// A small delta: exactly its size (a bytes.Buffer would take
			// at least 512 bytes for each).
			data = make([]byte, size)
			_, err = io.ReadFull(zr, data)
			if err == nil {
				var one [1]byte
				if n, rerr := zr.Read(one[:]); n > 0 || rerr != io.EOF {
					err = fmt.Errorf("object %d: inflated data longer than header says", i)
				}
			} else if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = fmt.Errorf("object %d: inflated size shorter than header says", i)
			}
			if err != nil {
				return nil, err
			}
		} else {
			buf := bytes.NewBuffer(make([]byte, 0, min(size, 64<<10)))
			n, err := io.Copy(buf, io.LimitReader(zr, size+1))
			if err != nil {
				return nil, fmt.Errorf("object %d: inflate: %w", i, err)
			}
			if n != size {
				return nil, fmt.Errorf("object %d: inflated size %d, header says %d", i, n, size)
			}
			data = buf.Bytes()
		}
		if e.isDelta {
			e.data = data
			e.dsize = size
		} else {
			e.data = data
			e.size, e.resolved = size, true
			e.hash = plumbing.ComputeHash(e.typ, e.data)
		}
		entries = append(entries, e)
	}
	hr.flush()
	if len(entries) > 0 {
		entries[len(entries)-1].crc = hr.crc
	}
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
		if err := hr.teeErr; err != nil {
			return nil, err
		}
		if err := hr.tee.Flush(); err != nil {
			return nil, fmt.Errorf("spool pack: %w", err)
		}
	}
	return &packEntries{list: entries, refBase: refBase, version: binary.BigEndian.Uint32(hdr[4:8]), sum: plumbing.Hash(trailer), end: hr.n}, nil
}

// packEntries are the entries of a pack read by readPackEntries; refBase
// names the bases of its REF_DELTA entries.
type packEntries struct {
	list    []*packObject
	refBase map[*packObject]plumbing.Hash
	version uint32        // the pack's version (2 or 3)
	sum     plumbing.Hash // its trailer checksum
	end     int64         // where the trailer starts
}

// resolvePack names every delta entry (resolving it against its base: an
// OFS_DELTA's entry, or a REF_DELTA's object in the pack or, for a thin
// pack, from external) and returns the objects by name.
func resolvePack(ctx context.Context, pe *packEntries, maxObject int64, external func(plumbing.Hash, *packSpool) (*packObject, error),
	sp *packSpool) (*packObjects, error) {
	entries, refBase := pe.list, pe.refBase
	objs := newPackObjects(len(entries))
	objs.spool = sp
	objs.entries, objs.version, objs.sum, objs.end = len(entries), pe.version, pe.sum, pe.end
	var pending []*packObject
	var externals map[plumbing.Hash]*packObject // bases of a thin pack, from external
	for _, e := range entries {
		if e.isDelta {
			pending = append(pending, e)
			continue
		}
		objs.add(e)
	}
	for len(pending) > 0 {
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		var next []*packObject
		for i, e := range pending {
			if i%1024 == 0 {
				if err := ctxErr(ctx); err != nil {
					return nil, err
				}
			}
			if e.base == nil {
				bh := refBase[e]
				if b := objs.get(bh); b != nil {
					e.base = b
				} else if b := externals[bh]; b != nil {
					e.base = b
				} else {
					b, err := external(bh, sp)
					if err != nil {
						return nil, err
					}
					if b != nil {
						// Kept (once per name) while the delta needs it.
						b.hash, b.resolved = bh, true
						if externals == nil {
							externals = map[plumbing.Hash]*packObject{}
						}
						externals[bh] = b
					}
					e.base = b
				}
			}
			if e.base == nil || !e.base.resolved {
				next = append(next, e)
				continue
			}
			if e.spool != nil {
				if err := e.spool.resolve(ctx, e); err != nil {
					return nil, fmt.Errorf("delta at offset %d: %w", e.offset(), err)
				}
			} else {
				base, err := e.base.content()
				var data []byte
				if err == nil {
					data, err = applyDelta(base, e.data, maxObject)
				}
				if err != nil {
					return nil, fmt.Errorf("delta at offset %d: %w", e.offset(), err)
				}
				e.typ, e.size = e.base.typ, int64(len(data))
				e.hash = plumbing.ComputeHash(e.typ, data)
				e.data, e.isDelta = data, false // now a whole object in memory
			}
			e.resolved = true
			delete(refBase, e)
			objs.add(e)
		}
		if len(next) == len(pending) {
			e := next[0]
			return nil, &BundleError{Object: fromPlumbing(refBase[e]), Reason: "delta base not found (missing prerequisite?)"}
		}
		pending = next
	}
	objs.thin = len(externals) > 0
	return objs, nil
}

// packObjects holds the objects of a pack by name: an open-addressing hash
// table of indexes into list, 8 to 16 bytes per object where a Go map of
// pointers takes about 50 (a bundle may hold millions of objects). A name
// added twice keeps the last object.
type packObjects struct {
	list  []*packObject
	slots []int32 // 1 + index into list; 0 = empty
	seed  maphash.Seed
	spool *packSpool // where their contents are, nil if in memory
	// What the pack was: its number of entries (duplicates included), its
	// version and trailer checksum, and whether it was thin (deltas against
	// objects it does not hold). See applyRun.adoptable.
	entries int
	version uint32
	sum     plumbing.Hash
	end     int64 // the offset of the trailer
	thin    bool
}

// close releases the spool's files (not removing them).
func (p *packObjects) close() {
	if p != nil && p.spool != nil {
		p.spool.close()
	}
}

func newPackObjects(n int) *packObjects {
	p := &packObjects{seed: maphash.MakeSeed(), list: make([]*packObject, 0, min(n, 1<<20))}
	p.rehash(max(16, 2*min(n, 1<<20)))
	return p
}

func (p *packObjects) slot(h plumbing.Hash) int {
	return int(maphash.Bytes(p.seed, h[:]) & uint64(len(p.slots)-1))
}

// get returns the object named h, nil if none.
func (p *packObjects) get(h plumbing.Hash) *packObject {
	for i := p.slot(h); ; i = (i + 1) & (len(p.slots) - 1) {
		j := p.slots[i]
		if j == 0 {
			return nil
		}
		if o := p.list[j-1]; o.hash == h {
			return o
		}
	}
}

// add adds o under its name.
func (p *packObjects) add(o *packObject) {
	if 2*(len(p.list)+1) > len(p.slots) {
		p.rehash(2 * len(p.slots))
	}
	for i := p.slot(o.hash); ; i = (i + 1) & (len(p.slots) - 1) {
		j := p.slots[i]
		if j == 0 {
			p.list = append(p.list, o)
			p.slots[i] = int32(len(p.list))
			return
		}
		if p.list[j-1].hash == o.hash {
			p.list[j-1] = o
			return
		}
	}
}

// rehash makes the table n slots (a power of two) long.
func (p *packObjects) rehash(n int) {
	size := 16
	for size < n {
		size *= 2
	}
	p.slots = make([]int32, size)
	for j, o := range p.list {
		i := p.slot(o.hash)
		for p.slots[i] != 0 {
			i = (i + 1) & (size - 1)
		}
		p.slots[i] = int32(j + 1)
	}
}

// applyDelta patches base with delta in memory, refusing a target over
// maxObject.
func applyDelta(base, delta []byte, maxObject int64) ([]byte, error) {
	if sz := deltaTargetSize(delta); sz < 0 || sz > maxObject {
		return nil, errors.New("bad or oversized delta target")
	}
	return patchDelta(base, delta)
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
