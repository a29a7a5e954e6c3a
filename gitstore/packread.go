package gitstore

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// Our own reader of the object store, for WriteBundle (go-git's looks for a
// loose file before every packed object, one stat per object, and decodes
// every tree into allocated entries).
//
// Each pack's version 2 index is read whole into memory (about 28 bytes
// per object) plus, per object, the end of its entry (the next entry's
// offset), so that an entry can be copied as stored (packstream.go). Pack
// data is read through a few 1 MiB windows (pread, no mmap: reading a big
// pack must not show as resident memory); entries are mostly met in pack
// order, so a window serves many. Contents of trees (and the other small
// objects resolved on the way) are kept in an LRU cache by hash with a byte
// budget, since the next version of a tree is a delta against the previous
// one and the tree walk compares each tree with its previous version.
// Objects not in a pack are read from their loose files.
//
// The source lives as long as its Store (Store.src, refreshed by each
// WriteBundle against the pack directory), so a small bundle after a big
// one does not start cold; at the end of a WriteBundle it keeps only the
// indexes and srcIdleCacheBytes of cache (idle).

const (
	srcWindowSize     = 1 << 20
	srcSmallWindow    = 64 << 10
	srcWindows        = 8
	srcCacheBytes     = 16 << 20
	srcIdleCacheBytes = 4 << 20
	// srcMaxContent bounds the objects whose whole content is read into
	// memory (trees, commits and small blobs are far smaller).
	srcMaxContent = 256 << 20
)

// objectSource reads our objects. It is used under the Store's mutex only.
type objectSource struct {
	dir   string // .peersync/objects
	packs []*packFile
	wins  [srcWindows]window
	tick  uint64
	cache objCache
	zr    io.ReadCloser // reused zlib reader
	br    bytes.Reader
	// reused and fresh count the entries of the last bundle's pack copied
	// as stored and written anew, whole whether that pack was one of ours
	// copied as it is (packwhole.go) (for tests and benchmarks).
	reused, fresh int
	whole         bool
}

// packFile is one pack and its index.
type packFile struct {
	name  string // pack-<sha>
	f     *os.File
	size  int64
	n     int
	fan   []byte // 256 big-endian uint32
	names []byte // n × 20
	crcs  []byte // n × 4
	offs  []byte // n × 4
	large []byte // 8 each
	// order lists index positions by offset; end gives each position's
	// entry end.
	order []uint32
	end   []int64
}

// window is a cached range of a pack.
type window struct {
	p    *packFile
	off  int64
	buf  []byte
	used uint64
}

// objLoc is where an object is: a pack and its position in the index.
type objLoc struct {
	p   *packFile
	pos int
}

func (l objLoc) off() int64 { return l.p.offset(l.pos) }

// newObjectSource opens the store's objects directory; refresh loads packs.
func newObjectSource(objectsDir string) *objectSource {
	return &objectSource{dir: objectsDir, cache: objCache{m: map[plumbing.Hash]*cobj{}}}
}

// refresh brings the set of packs up to date with objects/pack.
func (src *objectSource) refresh() error {
	dir := filepath.Join(src.dir, "pack")
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("gitstore: list packs: %w", err)
	}
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
	}
	// A pack counts once both files are there (the index is written first
	// and removed last).
	want := map[string]bool{}
	for n := range names {
		if base, ok := strings.CutSuffix(n, ".idx"); ok && strings.HasPrefix(base, "pack-") && names[base+".pack"] {
			want[base] = true
		}
	}
	keep := src.packs[:0]
	have := map[string]bool{}
	for _, p := range src.packs {
		if want[p.name] {
			keep = append(keep, p)
			have[p.name] = true
		} else {
			src.dropWindows(p)
			p.f.Close()
		}
	}
	src.packs = keep
	for n := range want {
		if have[n] {
			continue
		}
		p, err := openPackFile(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		src.packs = append(src.packs, p)
	}
	// Biggest first: most lookups hit the big packs.
	slices.SortFunc(src.packs, func(a, b *packFile) int { return b.n - a.n })
	return nil
}

func (src *objectSource) dropWindows(p *packFile) {
	for i := range src.wins {
		if src.wins[i].p == p {
			src.wins[i].p = nil
		}
	}
}

// idle lets go of what only a running bundle needs: the read windows, the
// buffer pool and all but srcIdleCacheBytes of the cache (the pack indexes
// stay).
func (src *objectSource) idle() {
	for i := range src.wins {
		src.wins[i] = window{}
	}
	src.cache.trim(srcIdleCacheBytes)
	src.cache.pool = bufPool{}
}

// close releases the pack files.
func (src *objectSource) close() {
	for _, p := range src.packs {
		p.f.Close()
	}
	src.packs = nil
	for i := range src.wins {
		src.wins[i] = window{}
	}
	src.cache.trim(0)
}

// openPackFile opens base.pack and reads base.idx.
func openPackFile(base string) (*packFile, error) {
	idx, err := os.ReadFile(base + ".idx")
	if err != nil {
		return nil, fmt.Errorf("gitstore: read pack index: %w", err)
	}
	bad := func(why string) error { return fmt.Errorf("gitstore: pack index %q: %s", base+".idx", why) }
	if len(idx) < 8+1024+40 || !bytes.Equal(idx[:8], []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}) {
		return nil, bad("not a version 2 index")
	}
	p := &packFile{name: filepath.Base(base), fan: idx[8 : 8+1024]}
	p.n = int(binary.BigEndian.Uint32(p.fan[1020:]))
	rest := idx[8+1024:]
	if len(rest) < p.n*28+40 {
		return nil, bad("truncated")
	}
	p.names, rest = rest[:p.n*20], rest[p.n*20:]
	p.crcs, rest = rest[:p.n*4], rest[p.n*4:]
	p.offs, rest = rest[:p.n*4], rest[p.n*4:]
	p.large = rest[:len(rest)-40]
	f, err := os.Open(base + ".pack")
	if err != nil {
		return nil, fmt.Errorf("gitstore: open pack: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gitstore: open pack: %w", err)
	}
	p.f, p.size = f, fi.Size()
	var trailer [20]byte
	if _, err := f.ReadAt(trailer[:], p.size-20); err != nil || !bytes.Equal(trailer[:], idx[len(idx)-40:len(idx)-20]) {
		f.Close()
		return nil, bad("does not match its pack")
	}
	p.order = make([]uint32, p.n)
	for i := range p.order {
		p.order[i] = uint32(i)
	}
	slices.SortFunc(p.order, func(a, b uint32) int {
		oa, ob := p.offset(int(a)), p.offset(int(b))
		if oa < ob {
			return -1
		}
		if oa > ob {
			return 1
		}
		return 0
	})
	p.end = make([]int64, p.n)
	for i, pos := range p.order {
		e := p.size - 20
		if i+1 < p.n {
			e = p.offset(int(p.order[i+1]))
		}
		if o := p.offset(int(pos)); o < 12 || e <= o {
			f.Close()
			return nil, bad("bad offsets")
		}
		p.end[pos] = e
	}
	return p, nil
}

// offset returns the pack offset of the object at index position pos.
func (p *packFile) offset(pos int) int64 {
	v := binary.BigEndian.Uint32(p.offs[pos*4:])
	if v&0x80000000 == 0 {
		return int64(v)
	}
	i := int(v&0x7fffffff) * 8
	if i+8 > len(p.large) {
		return -1
	}
	return int64(binary.BigEndian.Uint64(p.large[i:]))
}

func (p *packFile) crc(pos int) uint32 { return binary.BigEndian.Uint32(p.crcs[pos*4:]) }

func (p *packFile) hash(pos int) (h plumbing.Hash) {
	copy(h[:], p.names[pos*20:])
	return h
}

// find returns h's index position.
func (p *packFile) find(h plumbing.Hash) (int, bool) {
	lo := 0
	if h[0] > 0 {
		lo = int(binary.BigEndian.Uint32(p.fan[(int(h[0])-1)*4:]))
	}
	hi := int(binary.BigEndian.Uint32(p.fan[int(h[0])*4:]))
	key := binary.BigEndian.Uint64(h[:8])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		k := binary.BigEndian.Uint64(p.names[m*20:])
		c := 0
		switch {
		case k < key:
			c = -1
		case k > key:
			c = 1
		default:
			c = bytes.Compare(p.names[m*20+8:m*20+20], h[8:])
		}
		if c == 0 {
			return m, true
		}
		if c < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return 0, false
}

// atOffset returns the index position of the entry at off.
func (p *packFile) atOffset(off int64) (int, bool) {
	i, ok := slices.BinarySearchFunc(p.order, off, func(pos uint32, off int64) int {
		o := p.offset(int(pos))
		if o < off {
			return -1
		}
		if o > off {
			return 1
		}
		return 0
	})
	if !ok {
		return 0, false
	}
	return int(p.order[i]), true
}

// locate finds h in a pack.
func (src *objectSource) locate(h plumbing.Hash) (objLoc, bool) {
	for _, p := range src.packs {
		if pos, ok := p.find(h); ok {
			return objLoc{p, pos}, true
		}
	}
	return objLoc{}, false
}

// read returns n bytes of p at off: a slice of a window (valid until the
// next read), or a new buffer when n is over a window.
func (src *objectSource) read(p *packFile, off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > p.size {
		return nil, fmt.Errorf("gitstore: pack %s: read past its end", p.name)
	}
	src.tick++
	oldest := 0
	for i := range src.wins {
		w := &src.wins[i]
		if w.p == p && off >= w.off && off+int64(n) <= w.off+int64(len(w.buf)) {
			w.used = src.tick
			return w.buf[off-w.off : off-w.off+int64(n)], nil
		}
		if w.used < src.wins[oldest].used {
			oldest = i
		}
	}
	if n > srcWindowSize {
		b := make([]byte, n)
		if _, err := p.f.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("gitstore: read pack %s: %w", p.name, err)
		}
		return b, nil
	}
	// A read that goes on from a window of this pack (just past its end,
	// or just before its start in a backward walk) gets a window twice
	// that one's size, up to srcWindowSize; any other a small one: a
	// 1-commit bundle reads a few entries, not megabytes, and a stream
	// ramps up to full windows within a few reads.
	size := int64(srcSmallWindow)
	for i := range src.wins {
		w := &src.wins[i]
		end := w.off + int64(len(w.buf))
		if w.p == p && (off >= end && off < end+srcWindowSize || off+int64(n) <= w.off && off+int64(n) > w.off-srcWindowSize) {
			size = max(size, min(srcWindowSize, 2*int64(len(w.buf))))
		}
	}
	if n > srcSmallWindow/2 {
		size = srcWindowSize
	}
	// Place the window around the range: forward from it, unless the
	// last window filled for this pack starts after it (a backward walk).
	start := off
	for i := range src.wins {
		if w := &src.wins[i]; w.p == p && w.used == src.tick-1 && w.off > off {
			start = max(0, off+int64(n)-size)
		}
	}
	start = max(0, min(start, p.size-size))
	w := &src.wins[oldest]
	if int64(cap(w.buf)) < size {
		w.buf = make([]byte, size)
	}
	w.buf = w.buf[:min(size, p.size-start)]
	w.p, w.off, w.used = nil, start, src.tick
	if _, err := p.f.ReadAt(w.buf, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("gitstore: read pack %s: %w", p.name, err)
	}
	w.p = p
	return w.buf[off-start : off-start+int64(n)], nil
}

// entryHeader is a parsed pack entry header.
type entryHeader struct {
	typ      plumbing.ObjectType
	size     int64         // of the content, or of the delta
	dataOff  int64         // where the zlib data starts
	baseOff  int64         // OFS_DELTA: the base's offset
	baseHash plumbing.Hash // REF_DELTA: the base's name
}

// header parses the header of the entry at l.
func (src *objectSource) header(l objLoc) (entryHeader, error) {
	off := l.off()
	b, err := src.read(l.p, off, int(min(32, l.p.end[l.pos]-off)))
	if err != nil {
		return entryHeader{}, err
	}
	var h entryHeader
	bad := errBadEntry{l.p.name, off}
	i := 0
	c := b[i]
	i++
	h.typ = plumbing.ObjectType(c >> 4 & 7)
	h.size = int64(c & 15)
	for shift := 4; c&0x80 != 0; shift += 7 {
		if i >= len(b) || shift > 56 {
			return h, bad
		}
		c = b[i]
		i++
		h.size |= int64(c&0x7f) << shift
	}
	switch h.typ {
	case plumbing.OFSDeltaObject:
		if i >= len(b) {
			return h, bad
		}
		c = b[i]
		i++
		rel := int64(c & 0x7f)
		for c&0x80 != 0 {
			if i >= len(b) || rel > 1<<48 {
				return h, bad
			}
			c = b[i]
			i++
			rel = (rel+1)<<7 | int64(c&0x7f)
		}
		h.baseOff = off - rel
		if h.baseOff < 12 {
			return h, bad
		}
	case plumbing.REFDeltaObject:
		if i+20 > len(b) {
			return h, bad
		}
		copy(h.baseHash[:], b[i:i+20])
		i += 20
	case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
	default:
		return h, bad
	}
	h.dataOff = off + int64(i)
	return h, nil
}

// errBadEntry reports a pack entry whose header does not parse.
type errBadEntry struct {
	pack string
	off  int64
}

func (e errBadEntry) Error() string {
	return fmt.Sprintf("gitstore: pack %s: bad entry header at %d", e.pack, e.off)
}

// inflate returns the size bytes that the zlib data of l's entry holds.
func (src *objectSource) inflate(l objLoc, h entryHeader) ([]byte, error) {
	if h.size > srcMaxContent {
		return nil, fmt.Errorf("gitstore: object of %d bytes is over %d", h.size, srcMaxContent)
	}
	raw, err := src.read(l.p, h.dataOff, int(l.p.end[l.pos]-h.dataOff))
	if err != nil {
		return nil, err
	}
	return src.inflateBytes(raw, h.size)
}

// inflateBytes inflates raw, which must hold exactly size bytes, into a
// buffer from the pool.
func (src *objectSource) inflateBytes(raw []byte, size int64) ([]byte, error) {
	if out, ok := inflateStored(raw, size, &src.cache.pool); ok {
		return out, nil
	}
	src.br.Reset(raw)
	var err error
	if src.zr == nil {
		src.zr, err = zlib.NewReader(&src.br)
	} else {
		err = src.zr.(zlib.Resetter).Reset(&src.br, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("gitstore: inflate: %w", err)
	}
	out := src.cache.pool.bytes(int(size))[:size]
	if _, err := io.ReadFull(src.zr, out); err != nil {
		src.cache.pool.putBytes(out)
		return nil, fmt.Errorf("gitstore: inflate: %w", err)
	}
	return out, nil
}

// inflateStored inflates a zlib stream made only of stored (uncompressed)
// deflate blocks, as tiny entries (tree deltas) are written, without
// setting up a decompressor; ok is false for any other stream, or one that
// does not hold exactly size bytes or fails its checksum.
func inflateStored(raw []byte, size int64, pool *bufPool) (out []byte, ok bool) {
	if len(raw) < 2+5+4 || raw[0]&0x0f != 8 || raw[1]&0x20 != 0 || (uint(raw[0])<<8|uint(raw[1]))%31 != 0 {
		return nil, false
	}
	// Check the blocks before taking a buffer.
	var n int64
	i := 2
	for {
		if i+5 > len(raw) || raw[i]>>1&3 != 0 {
			return nil, false
		}
		l := int(binary.LittleEndian.Uint16(raw[i+1:]))
		if uint16(l) != ^binary.LittleEndian.Uint16(raw[i+3:]) || i+5+l > len(raw) {
			return nil, false
		}
		n += int64(l)
		final := raw[i]&1 != 0
		i += 5 + l
		if final {
			break
		}
	}
	if n != size || i+4 > len(raw) {
		return nil, false
	}
	out = pool.bytes(int(size))[:0]
	for j := 2; j < i; {
		l := int(binary.LittleEndian.Uint16(raw[j+1:]))
		out = append(out, raw[j+5:j+5+l]...)
		j += 5 + l
	}
	if adler32.Checksum(out) != binary.BigEndian.Uint32(raw[i:]) {
		pool.putBytes(out)
		return nil, false
	}
	return out, true
}

// object returns the type and content of h (at most srcMaxContent bytes),
// caching it when keep.
func (src *objectSource) object(h plumbing.Hash, keep bool) (*cobj, error) {
	if o := src.cache.get(h); o != nil {
		return o, nil
	}
	var o *cobj
	if l, ok := src.locate(h); ok {
		typ, data, err := src.resolve(l, 0)
		if err != nil {
			return nil, fmt.Errorf("gitstore: object %s: %w", h, err)
		}
		o = &cobj{h: h, typ: typ, data: data}
	} else {
		typ, data, err := src.loose(h)
		if err != nil {
			return nil, err
		}
		o = &cobj{h: h, typ: typ, data: data}
		// A loose commit is one of the newest (maintenance packs the
		// rest): the pack writer reads it again, and the next export
		// finds it as the peer's since commit (loose.go).
		keep = keep || typ == plumbing.CommitObject
	}
	if keep {
		src.cache.put(o)
	}
	return o, nil
}

// resolve returns the content of the entry at l, applying deltas (the
// bases go through the cache: the next version's base is this one).
func (src *objectSource) resolve(l objLoc, depth int) (plumbing.ObjectType, []byte, error) {
	if depth > 10000 {
		return 0, nil, errors.New("delta chain too long")
	}
	h, err := src.header(l)
	if err != nil {
		return 0, nil, err
	}
	if h.typ != plumbing.OFSDeltaObject && h.typ != plumbing.REFDeltaObject {
		data, err := src.inflate(l, h)
		return h.typ, data, err
	}
	var base *cobj
	if h.typ == plumbing.OFSDeltaObject {
		pos, ok := l.p.atOffset(h.baseOff)
		if !ok {
			return 0, nil, fmt.Errorf("pack %s: no entry at delta base offset %d", l.p.name, h.baseOff)
		}
		bh := l.p.hash(pos)
		if base = src.cache.get(bh); base == nil {
			typ, data, err := src.resolve(objLoc{l.p, pos}, depth+1)
			if err != nil {
				return 0, nil, err
			}
			base = &cobj{h: bh, typ: typ, data: data}
			src.cache.put(base)
		}
	} else if base, err = src.object(h.baseHash, true); err != nil {
		return 0, nil, err
	}
	delta, err := src.inflate(l, h)
	if err != nil {
		return 0, nil, err
	}
	out, err := applyDeltaTo(src.cache.pool.bytes(int(deltaTargetSize(delta)))[:0], base.data, delta)
	src.cache.pool.putBytes(delta)
	return base.typ, out, err
}

// applyDeltaTo appends to out base patched by delta (git's delta format).
func applyDeltaTo(out, base, delta []byte) ([]byte, error) {
	bad := errors.New("invalid delta")
	src, rest, ok := deltaVarint(delta)
	if !ok || src != int64(len(base)) {
		return nil, bad
	}
	size, rest, ok := deltaVarint(rest)
	if !ok || size > srcMaxContent {
		return nil, bad
	}
	for len(rest) > 0 {
		cmd := rest[0]
		rest = rest[1:]
		if cmd&0x80 == 0 {
			if cmd == 0 || int(cmd) > len(rest) {
				return nil, bad
			}
			out = append(out, rest[:cmd]...)
			rest = rest[cmd:]
			continue
		}
		var off, n int64
		for i := 0; i < 4; i++ {
			if cmd&(1<<i) != 0 {
				if len(rest) == 0 {
					return nil, bad
				}
				off |= int64(rest[0]) << (8 * i)
				rest = rest[1:]
			}
		}
		for i := 0; i < 3; i++ {
			if cmd&(0x10<<i) != 0 {
				if len(rest) == 0 {
					return nil, bad
				}
				n |= int64(rest[0]) << (8 * i)
				rest = rest[1:]
			}
		}
		if n == 0 {
			n = 0x10000
		}
		if off+n > int64(len(base)) || int64(len(out))+n > size {
			return nil, bad
		}
		out = append(out, base[off:off+n]...)
	}
	if int64(len(out)) != size {
		return nil, bad
	}
	return out, nil
}

// loose reads a loose object.
func (src *objectSource) loose(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	return src.looseUpTo(h, srcMaxContent)
}

// errLooseTooBig: the loose object is bigger than asked for.
var errLooseTooBig = errors.New("gitstore: loose object too big")

// looseUpTo reads the loose object h if its content is at most limit bytes
// (errLooseTooBig if bigger; an error wrapping plumbing.ErrObjectNotFound
// if it is not loose). It inflates at most limit+64 bytes.
func (src *objectSource) looseUpTo(h plumbing.Hash, limit int64) (plumbing.ObjectType, []byte, error) {
	hx := h.String()
	raw, err := os.ReadFile(filepath.Join(src.dir, hx[:2], hx[2:]))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, fmt.Errorf("gitstore: object %s: %w", h, plumbing.ErrObjectNotFound)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("gitstore: object %s: %w", h, err)
	}
	src.br.Reset(raw)
	if src.zr == nil {
		src.zr, err = zlib.NewReader(&src.br)
	} else {
		err = src.zr.(zlib.Resetter).Reset(&src.br, nil)
	}
	var data []byte
	if err == nil {
		data, err = io.ReadAll(io.LimitReader(src.zr, limit+64))
	}
	if err != nil {
		return 0, nil, fmt.Errorf("gitstore: object %s: %w", h, err)
	}
	hdr, body, ok := bytes.Cut(data, []byte{0})
	bad := fmt.Errorf("gitstore: object %s: bad loose object header", h)
	if !ok {
		return 0, nil, bad
	}
	ts, ss, ok := strings.Cut(string(hdr), " ")
	typ, err := plumbing.ParseObjectType(ts)
	size, err2 := strconv.ParseInt(ss, 10, 64)
	if !ok || err != nil || err2 != nil || size < 0 {
		return 0, nil, bad
	}
	if size > limit {
		return 0, nil, errLooseTooBig
	}
	if size != int64(len(body)) {
		return 0, nil, bad
	}
	return typ, body, nil
}

// cobj is an object's content, and for a tree the offsets of its entries
// (nil until indexed, see treewalk.go).
type cobj struct {
	h          plumbing.Hash
	typ        plumbing.ObjectType
	data       []byte
	ents       []uint32
	prev, next *cobj
	// pins counts the users holding data and ents (treewalk.go): an
	// evicted object's buffers go back to the pool only when it has none.
	pins int
}

// objCache is an LRU of contents by hash with a byte budget.
type objCache struct {
	m     map[plumbing.Hash]*cobj
	head  cobj // sentinel: head.next is the most recent
	bytes int
	pool  bufPool
}

// size is what o holds in memory: its buffers' capacities (a reused
// buffer may be up to 4 times the content, a fresh one a quarter more), so
// the cache's byte budget bounds the memory it keeps. Counting the
// contents' lengths let a 100,000-commit export keep 86 MiB of tree
// buffers under its 16 MiB budget.
func (c *objCache) size(o *cobj) int { return cap(o.data) + 4*cap(o.ents) + 64 }

func (c *objCache) get(h plumbing.Hash) *cobj {
	o := c.m[h]
	if o != nil {
		c.unlink(o)
		c.link(o)
	}
	return o
}

func (c *objCache) put(o *cobj) {
	if c.head.next == nil {
		c.head.next, c.head.prev = &c.head, &c.head
	}
	if old := c.m[o.h]; old != nil {
		c.unlink(old)
		c.bytes -= c.size(old)
	}
	if c.size(o) > srcCacheBytes/4 {
		delete(c.m, o.h)
		return
	}
	c.m[o.h] = o
	c.link(o)
	c.bytes += c.size(o)
	c.trim(srcCacheBytes)
}

// grew accounts for o's index added after put.
func (c *objCache) grew(o *cobj, before int) {
	if c.m[o.h] == o {
		c.bytes += c.size(o) - before
	}
}

func (c *objCache) trim(limit int) {
	for c.bytes > limit && c.head.prev != nil && c.head.prev != &c.head {
		o := c.head.prev
		c.unlink(o)
		delete(c.m, o.h)
		c.bytes -= c.size(o)
		if o.pins == 0 {
			c.pool.putBytes(o.data)
			c.pool.putEnts(o.ents)
			o.data, o.ents = nil, nil
		}
	}
	if limit == 0 {
		c.pool = bufPool{}
	}
}

// bufPool keeps the buffers of evicted contents for the next ones: a tree's
// next version is about its size, and reusing its buffer spares the
// allocation, its zeroing and the garbage collector's work.
type bufPool struct {
	b [][]byte
	e [][]uint32
}

const (
	poolBuffers = 32
	poolMinSize = 4 << 10
)

// bytes returns a buffer of length n.
func (p *bufPool) bytes(n int) []byte {
	if n < 0 {
		n = 0
	}
	for i, b := range p.b {
		if n >= poolMinSize && cap(b) >= n && cap(b) <= 4*n {
			p.b[i] = p.b[len(p.b)-1]
			p.b = p.b[:len(p.b)-1]
			return b[:n]
		}
	}
	if n < poolMinSize {
		return make([]byte, n)
	}
	// Room for the next versions, which tend to grow.
	return make([]byte, n, n+n/4+poolMinSize)
}

func (p *bufPool) putBytes(b []byte) {
	if cap(b) < poolMinSize {
		return
	}
	if len(p.b) == poolBuffers {
		p.b[0] = p.b[len(p.b)-1] // drop the oldest
		p.b = p.b[:len(p.b)-1]
	}
	p.b = append(p.b, b[:0])
}

// ents returns an empty slice of capacity at least n.
func (p *bufPool) ents(n int) []uint32 {
	for i, e := range p.e {
		if n >= poolMinSize/4 && cap(e) >= n && cap(e) <= 4*n {
			p.e[i] = p.e[len(p.e)-1]
			p.e = p.e[:len(p.e)-1]
			return e[:0]
		}
	}
	if n < poolMinSize/4 {
		return make([]uint32, 0, n)
	}
	return make([]uint32, 0, n+n/4+poolMinSize/4)
}

func (p *bufPool) putEnts(e []uint32) {
	if cap(e) < poolMinSize/4 {
		return
	}
	if len(p.e) == poolBuffers {
		p.e[0] = p.e[len(p.e)-1]
		p.e = p.e[:len(p.e)-1]
	}
	p.e = append(p.e, e[:0])
}

func (c *objCache) link(o *cobj) {
	o.prev, o.next = &c.head, c.head.next
	c.head.next.prev = o
	c.head.next = o
}

func (c *objCache) unlink(o *cobj) {
	o.prev.next = o.next
	o.next.prev = o.prev
	o.prev, o.next = nil, nil
}
