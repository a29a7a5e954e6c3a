package gitstore

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"container/list"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
)

// packSpool reads objects back from a pack spooled by readPackSpooled,
// keeping the most recently used contents (up to spoolCacheBytes) in
// memory: a delta's base is usually the object resolved just before.
//
// A delta whose result or base is larger than deltaInMemoryMax is never
// applied in memory: its base is read at random from the raw file (where a
// large whole object of the pack is first inflated), and its result is
// streamed, through the hash that names it, onto the end of the raw file.
// So a 16 KB bundle whose delta expands to 1 GiB costs 1 GiB of disk
// (bounded by Limits.MaxSpoolBytes and MinFreeBytes), not of memory.
type packSpool struct {
	f   *os.File
	lim packLimits
	br  *bufio.Reader
	zr  io.ReadCloser
	// The cache: an LRU list of objects whose content is held in cached.
	lru    list.List
	cached map[*packObject]*list.Element
	bytes  int
	// raw holds uncompressed contents too large for memory; created at its
	// first use as f's name + ".raw" (the caller removes both). rawEnd is
	// its length.
	raw    *os.File
	rawEnd int64
	// spooled counts the bytes written to f and raw; nextDiskCheck is the
	// count at which the free space is looked at again.
	spooled, nextDiskCheck int64
	copyBuf                []byte
	// pre, when not nil, writes big blobs into the folder as they stream
	// by (see "Big files written as they arrive").
	pre *prewrite
}

// packLimits are the limits readPackSpooled enforces (see Limits).
type packLimits struct {
	maxObject  int64 // Config.MaxObjectSize
	maxTree    int64 // Limits.MaxTreeSize: trees and commits
	maxObjects int64
	maxSpool   int64
	minFree    int64  // Limits.MinFreeBytes; < 0: no disk check
	diskDir    string // where to look at the free space; "": no check
	// prewriteDir, when set, is the folder big blobs are written into as
	// they stream by (see "Big files written as they arrive").
	prewriteDir string
}

// spoolCacheBytes bounds the contents a packSpool keeps; spoolCacheMax is
// the largest content it keeps. deltaInMemoryMax is the largest delta
// result (and base) applied in memory.
const (
	spoolCacheBytes  = 4 << 20
	spoolCacheMax    = 1 << 20
	deltaInMemoryMax = 1 << 20
	// diskCheckEvery is how much the spool grows between two looks at the
	// free space.
	diskCheckEvery = 64 << 20
)

type spoolCached struct {
	o    *packObject
	data []byte
}

// rawName is the name of the raw file of the spool named spool.
func rawName(spool string) string { return spool + ".raw" }

func newPackSpool(f *os.File, lim packLimits) *packSpool {
	sp := &packSpool{f: f, lim: lim, cached: map[*packObject]*list.Element{}}
	if lim.prewriteDir != "" {
		sp.pre = &prewrite{dir: lim.prewriteDir, minFree: lim.minFree}
	}
	return sp
}

// grow accounts for n more bytes of spool and refuses to go over
// Limits.MaxSpoolBytes or under Limits.MinFreeBytes.
func (sp *packSpool) grow(n int64) error {
	sp.spooled = satAdd(sp.spooled, n)
	if sp.spooled > sp.lim.maxSpool {
		return &LimitError{Limit: "Limits.MaxSpoolBytes", Value: sp.spooled, Max: sp.lim.maxSpool}
	}
	if sp.lim.diskDir != "" && sp.spooled >= sp.nextDiskCheck {
		sp.nextDiskCheck = sp.spooled + diskCheckEvery
		// What is about to be written (n) must fit above the reserve.
		if err := checkFree(sp.lim.diskDir, n, sp.lim.minFree, "spool"); err != nil {
			return err
		}
	}
	return nil
}

// spoolWriter writes the pack as received into the spool file, accounting
// for it.
type spoolWriter struct{ sp *packSpool }

func (w spoolWriter) Write(b []byte) (int, error) {
	if err := w.sp.grow(int64(len(b))); err != nil {
		return 0, err
	}
	return w.sp.f.Write(b)
}

func (sp *packSpool) get(o *packObject) ([]byte, bool) {
	el, ok := sp.cached[o]
	if !ok {
		return nil, false
	}
	sp.lru.MoveToFront(el)
	return el.Value.(spoolCached).data, true
}

func (sp *packSpool) put(o *packObject, data []byte) {
	if len(data) > spoolCacheMax {
		return
	}
	if _, ok := sp.cached[o]; ok {
		return
	}
	sp.cached[o] = sp.lru.PushFront(spoolCached{o, data})
	sp.bytes += len(data)
	for sp.bytes > spoolCacheBytes {
		el := sp.lru.Back()
		c := el.Value.(spoolCached)
		sp.lru.Remove(el)
		delete(sp.cached, c.o)
		sp.bytes -= len(c.data)
	}
}

// zlibAt returns a reader of the zlib stream at off in the spooled pack.
func (sp *packSpool) zlibAt(off int64) (io.ReadCloser, error) {
	return zlib.NewReader(bufio.NewReaderSize(io.NewSectionReader(sp.f, off, 1<<62), 64<<10))
}

// inflate reads the size bytes of the zlib stream at off.
func (sp *packSpool) inflate(off, size int64) ([]byte, error) {
	sr := io.NewSectionReader(sp.f, off, 1<<62)
	if sp.br == nil {
		sp.br = bufio.NewReaderSize(sr, 4<<10)
	} else {
		sp.br.Reset(sr)
	}
	var err error
	if sp.zr == nil {
		sp.zr, err = zlib.NewReader(sp.br)
	} else {
		err = sp.zr.(zlib.Resetter).Reset(sp.br, nil)
	}
	if err != nil {
		return nil, err
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(sp.zr, data); err != nil {
		return nil, fmt.Errorf("spooled object at %d: %w", off, err)
	}
	return data, nil
}

// readRaw reads o's content from the raw file.
func (sp *packSpool) readRaw(o *packObject) ([]byte, error) {
	data := make([]byte, o.size)
	if _, err := sp.raw.ReadAt(data, o.rawOff); err != nil {
		return nil, fmt.Errorf("spooled object %s: %w", o.hash, err)
	}
	return data, nil
}

// content returns o's content, applying the deltas down its chain to the
// nearest content at hand (cached, in memory, in the raw file or whole in
// the spool). Only objects resolved in memory (at most deltaInMemoryMax,
// their chains too) or trees and commits (at most Limits.MaxTreeSize) are
// read this way; a large blob is read with packObject.reader.
func (sp *packSpool) content(o *packObject) ([]byte, error) {
	var chain []*packObject
	var data []byte
	for cur := o; ; cur = cur.base {
		if cur == nil {
			return nil, errors.New("delta base not resolved")
		}
		if cur.inRaw {
			d, err := sp.readRaw(cur)
			if err != nil {
				return nil, err
			}
			sp.put(cur, d)
			data = d
			break
		}
		if !cur.isDelta && (cur.data != nil || cur.spool == nil) {
			data = cur.data
			break
		}
		if d, ok := sp.get(cur); ok {
			data = d
			break
		}
		if !cur.isDelta {
			d, err := sp.inflate(cur.spoolOff, cur.size)
			if err != nil {
				return nil, err
			}
			sp.put(cur, d)
			data = d
			break
		}
		chain = append(chain, cur)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		delta, err := chain[i].deltaData()
		if err != nil {
			return nil, err
		}
		if data, err = patchDeltaExact(data, delta, deltaInMemoryMax); err != nil {
			return nil, fmt.Errorf("delta at offset %d: %w", chain[i].offset(), err)
		}
		sp.put(chain[i], data)
	}
	return data, nil
}

// deltaHeader returns the base and result sizes a delta declares.
func (sp *packSpool) deltaHeader(e *packObject) (src, target int64, err error) {
	head := e.data
	if head == nil {
		if head, err = sp.inflate(e.spoolOff, min(e.dsize, 20)); err != nil {
			return 0, 0, err
		}
	}
	src, rest, ok := deltaVarint(head)
	if ok {
		target, _, ok = deltaVarint(rest)
	}
	if !ok {
		return 0, 0, errors.New("malformed delta header")
	}
	return src, target, nil
}

// resolve names the delta e, whose base is resolved: in memory when its
// result and base are small, else streaming into the raw file.
func (sp *packSpool) resolve(ctx context.Context, e *packObject) error {
	b := e.base
	src, target, err := sp.deltaHeader(e)
	if err != nil {
		return err
	}
	if src != b.size {
		return fmt.Errorf("delta base is %d bytes, delta says %d", b.size, src)
	}
	if target > sp.lim.maxObject {
		return &LimitError{Limit: "MaxObjectSize", Value: target, Max: sp.lim.maxObject}
	}
	if b.typ != plumbing.BlobObject && target > sp.lim.maxTree {
		return &LimitError{Limit: "Limits.MaxTreeSize", Value: target, Max: sp.lim.maxTree}
	}
	if target <= deltaInMemoryMax && b.size <= deltaInMemoryMax {
		data, err := sp.content(e)
		if err != nil {
			return err
		}
		e.typ, e.size = b.typ, int64(len(data))
		e.hash = plumbing.ComputeHash(e.typ, data)
		return nil
	}
	return sp.resolveStreaming(ctx, e, target)
}

// baseAt returns random access to the content of b, a delta base.
func (sp *packSpool) baseAt(b *packObject) (io.ReaderAt, error) {
	switch {
	case b.inRaw:
		return newBlockReaderAt(io.NewSectionReader(sp.raw, b.rawOff, b.size)), nil
	case !b.isDelta && (b.data != nil || b.spool == nil):
		return bytes.NewReader(b.data), nil
	}
	if d, ok := sp.get(b); ok {
		return bytes.NewReader(d), nil
	}
	if b.size <= deltaInMemoryMax {
		d, err := sp.content(b)
		return bytes.NewReader(d), err
	}
	if b.isDelta {
		return nil, errors.New("large delta base not resolved")
	}
	// A large whole object of the pack: inflate it into the raw file once.
	zr, err := sp.zlibAt(b.spoolOff)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	off, err := sp.appendRaw(zr, b.size)
	if err != nil {
		return nil, err
	}
	b.inRaw, b.rawOff = true, off
	return newBlockReaderAt(io.NewSectionReader(sp.raw, off, b.size)), nil
}

// openRaw creates the raw file at its first use.
func (sp *packSpool) openRaw() error {
	if sp.raw != nil {
		return nil
	}
	f, err := os.OpenFile(rawName(sp.f.Name()), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	sp.raw = f
	return nil
}

// close closes the raw file (the caller removes it with the spool).
func (sp *packSpool) close() {
	sp.pre.drop() // what no checkout took
	if sp.raw != nil {
		sp.raw.Close()
	}
}

// appendRaw copies size bytes of r onto the end of the raw file and returns
// where they start.
func (sp *packSpool) appendRaw(r io.Reader, size int64) (int64, error) {
	if err := sp.openRaw(); err != nil {
		return 0, err
	}
	if err := sp.grow(size); err != nil {
		return 0, err
	}
	off := sp.rawEnd
	if sp.copyBuf == nil {
		sp.copyBuf = make([]byte, 64<<10)
	}
	n, err := io.CopyBuffer(io.NewOffsetWriter(sp.raw, off), io.LimitReader(r, size), sp.copyBuf)
	if err == nil && n != size {
		err = fmt.Errorf("object shorter than its size (%d < %d)", n, size)
	}
	if err != nil {
		return 0, err
	}
	sp.rawEnd += size
	return off, nil
}

// resolveStreaming applies the delta e to its base without holding either
// in memory: the base is read at random (baseAt), the delta's instructions
// are read as they inflate, and the result goes through the hash onto the
// end of the raw file. Every instruction is checked against the base and
// the declared result size.
func (sp *packSpool) resolveStreaming(ctx context.Context, e *packObject, target int64) error {
	base, err := sp.baseAt(e.base)
	if err != nil {
		return err
	}
	baseSize := e.base.size
	var dr *bufio.Reader
	if e.data != nil {
		dr = bufio.NewReader(bytes.NewReader(e.data))
	} else {
		zr, err := sp.zlibAt(e.spoolOff)
		if err != nil {
			return err
		}
		defer zr.Close()
		dr = bufio.NewReaderSize(io.LimitReader(zr, e.dsize), 64<<10)
	}
	if _, ok := readDeltaVarint(dr); !ok { // the sizes, read by deltaHeader
		return errors.New("malformed delta header")
	}
	if _, ok := readDeltaVarint(dr); !ok {
		return errors.New("malformed delta header")
	}
	if err := sp.openRaw(); err != nil {
		return err
	}
	if err := sp.grow(target); err != nil {
		return err
	}
	off := sp.rawEnd
	bw := bufio.NewWriterSize(io.NewOffsetWriter(sp.raw, off), 256<<10)
	h := sha1.New()
	h.Write(append(strconv.AppendInt([]byte(e.base.typ.String()+" "), target, 10), 0))
	out := io.MultiWriter(bw, h)
	if sp.copyBuf == nil {
		sp.copyBuf = make([]byte, 64<<10)
	}
	var written int64
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctxErr(ctx); err != nil {
				return err
			}
		}
		cmd, err := dr.ReadByte()
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		var size int64
		var src io.Reader
		switch {
		case cmd&0x80 != 0:
			var o int64
			for i := uint(0); i < 7; i++ {
				if cmd&(1<<i) == 0 {
					continue
				}
				c, err := dr.ReadByte()
				if err != nil {
					return errors.New("truncated delta copy instruction")
				}
				if i < 4 {
					o |= int64(c) << (8 * i)
				} else {
					size |= int64(c) << (8 * (i - 4))
				}
			}
			if size == 0 {
				size = 0x10000
			}
			if o+size > baseSize {
				return fmt.Errorf("delta copies %d bytes at %d from a %d-byte base", size, o, baseSize)
			}
			src = io.NewSectionReader(base, o, size)
		case cmd != 0:
			size, src = int64(cmd), dr
		default:
			return errors.New("invalid delta instruction 0")
		}
		if written+size > target {
			return fmt.Errorf("delta writes more than its declared %d bytes", target)
		}
		if c, err := io.CopyBuffer(out, io.LimitReader(src, size), sp.copyBuf); err != nil {
			return err
		} else if c != size {
			return errors.New("truncated delta")
		}
		written += size
	}
	if written != target {
		return fmt.Errorf("delta wrote %d bytes, declared %d", written, target)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	sp.rawEnd += target
	e.inRaw, e.rawOff = true, off
	e.typ, e.size = e.base.typ, target
	h.Sum(e.hash[:0])
	return nil
}

// readDeltaVarint reads a delta header's size varint.
func readDeltaVarint(r io.ByteReader) (int64, bool) {
	var v int64
	for shift := 0; shift < 63; shift += 7 {
		c, err := r.ReadByte()
		if err != nil {
			return 0, false
		}
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, true
		}
	}
	return 0, false
}

// blockReaderAt serves small reads from one cached 64 KiB block: a delta
// made of many small copies reads its base with few system calls.
type blockReaderAt struct {
	r      io.ReaderAt
	blk    []byte
	blkOff int64
	n      int
}

func newBlockReaderAt(r io.ReaderAt) *blockReaderAt {
	return &blockReaderAt{r: r, blk: make([]byte, 64<<10), blkOff: -1}
}

func (b *blockReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) >= len(b.blk) {
		return b.r.ReadAt(p, off)
	}
	n := 0
	for n < len(p) {
		if b.blkOff < 0 || off < b.blkOff || off >= b.blkOff+int64(b.n) {
			m, err := b.r.ReadAt(b.blk, off)
			if m == 0 {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
			b.blkOff, b.n = off, m
		}
		c := copy(p[n:], b.blk[off-b.blkOff:b.n])
		n += c
		off += int64(c)
	}
	return n, nil
}

// spoolDir is the directory ApplyBundle spools into.
func spoolDir(gitDir string) string { return filepath.Join(gitDir, "objects", "pack") }
