package gitstore

import (
	"bufio"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/peersync/peersync/internal/atomicfile"
)

// The pack writer: Scan streams every object it makes (blobs, trees,
// commits) into one new packfile, the way `git fast-import` does, instead of
// one zlib file per object. A new version of a tree is stored as an
// OFS_DELTA against its previous version, computed from the edit (see
// objwriter_tree.go), so a commit in a folder of 1,000 entries costs tens of
// bytes of tree instead of ~35 KB. The pack and its .idx are written under
// temporary names and renamed into place (idx first, then the pack: go-git
// fails every read while a pack without its index is listed, and an index
// without its pack is ignored) when the scan is done, before any ref moves:
// a crash leaves at most an unreferenced temporary file.

const (
	// packTmpPrefix starts the name of a pack being written, in objects/pack.
	packTmpPrefix = "tmp_pack_"
	// maxTreeDeltaDepth bounds tree delta chains: every this many versions a
	// tree is stored whole, so reading one resolves at most this many deltas.
	maxTreeDeltaDepth = 50
	// zlibFastBelow and zlibFastFrom choose the compression level: objects
	// smaller than zlibFastBelow (commits, tree deltas, small files: where
	// resetting the default level's hash tables costs more than it saves),
	// blobs of zlibFastFrom bytes or more (big files, often incompressible)
	// and whole trees (mostly 20-byte hashes: a 210 KB tree of 5,000
	// entries deflates to 124 KB at BestSpeed and 120 KB at the default
	// level, in a third of the time; a first scan of 100,000 files stores
	// 2,000 such trees) use BestSpeed; the rest use the default level.
	zlibFastBelow = 16 << 10
	zlibFastFrom  = 1 << 20
	// largeObjectThreshold: go-git reads objects bigger than this from the
	// pack as a stream instead of into memory (Open passes it to the
	// storage).
	largeObjectThreshold = 1 << 20
	// packMinObjects and queueMaxBytes: below both, a scan's objects are
	// written loose instead of into a pack (git's transfer.unpackLimit is
	// 100 objects too).
	packMinObjects = 100
	queueMaxBytes  = 1 << 20
	// queueMaxBlob: a bigger blob opens the pack at once.
	queueMaxBlob = 64 << 10
	// blobChunk is the read buffer for streaming file content.
	blobChunk = 64 << 10
	// zlibStoreBelow: objects this small (tree deltas) are stored without
	// compression; deflate would not make them smaller.
	zlibStoreBelow = 128
)

// packedObj is an object written into the pack being built.
type packedObj struct {
	off   int64
	crc   uint32
	depth int32 // delta chain length: 0 for a whole object
}

// packWriter writes one packfile. It is used under the Store's mutex only.
type packWriter struct {
	dir     string                      // objects/pack
	has     func(plumbing.Hash) bool    // reports objects already stored elsewhere
	f       *os.File                    // nil until the first object
	out     packOut                     // the buffered stream into f
	obj     map[plumbing.Hash]packedObj // objects in this pack
	z       zlibWriters
	scratch packScratch
	sha     hash.Hash
	gen     uint64 // this pack's generation, unique per Store (treeEnc.baseGen)

	// Until a scan has written packMinObjects objects (or a big blob), its
	// objects wait here; if the pack never opens, finish writes them loose
	// with loose, so the many small scans of a watched folder do not each
	// leave a tiny pack (git unpacks small pushes the same way).
	lq looseQueue
	// checkAll makes known look for every object, not only blobs, among
	// those stored already (a merge rebuilds whole trees, most of them
	// known).
	checkAll bool
	// packOnly makes finish write a pack even for a few objects: loose
	// objects are written one by one, so a kill in between leaves some of
	// them, and only a writer that queues every object after what it
	// refers to (a scan: blob, trees bottom up, then the commit) may leave
	// that. ApplyBundle stores objects in delta-base order, so a commit
	// could land without its parent: a dangling commit that "has" no
	// history, which later walks trip over.
	packOnly bool
}

// packScratch are a packWriter's reusable buffers.
type packScratch struct {
	buf   []byte // scratch
	chunk []byte // file read buffer
	delta []byte // scratch for tree deltas
}

// looseQueue holds a scan's first objects until the pack opens (see
// packWriter).
type looseQueue struct {
	queue      []queuedObj
	queued     map[plumbing.Hash]bool
	queueBytes int
	loose      func(plumbing.ObjectType, []byte) (plumbing.Hash, error)
}

type queuedObj struct {
	h    plumbing.Hash
	typ  plumbing.ObjectType
	data []byte
}

// packOut counts offsets and the CRC-32 of the object being written.
type packOut struct {
	w   *bufio.Writer
	off int64
	crc uint32
}

func (p *packOut) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.crc = crc32.Update(p.crc, crc32.IEEETable, b[:n])
	p.off += int64(n)
	return n, err
}

func newPackWriter(dir string, has func(plumbing.Hash) bool, gen uint64, loose func(plumbing.ObjectType, []byte) (plumbing.Hash, error)) *packWriter {
	return &packWriter{dir: dir, has: has, gen: gen, lq: looseQueue{loose: loose, queued: map[plumbing.Hash]bool{}},
		obj: map[plumbing.Hash]packedObj{}, sha: sha1.New()}
}

// beginPackLocked makes every object written until endPackLocked go into
// one new pack (opened at the first object, so a scan that writes nothing
// leaves no file). Objects in it cannot be read back before endPackLocked.
func (s *Store) beginPackLocked() {
	s.abortPackLocked()
	dir := filepath.Join(s.gitDir, "objects", "pack")
	if s.packs.packGen == 0 {
		removeStaleTmpPacks(dir, s.opts.log)
	}
	s.packs.packGen++
	s.packs.pw = newPackWriter(dir, func(h plumbing.Hash) bool {
		return s.st.HasEncodedObject(h) == nil
	}, s.packs.packGen, s.writeObjectLocked) // called once s.pw is nil: loose
}

// staleTmpPack is the age from which a temporary pack in objects/pack is
// taken for a crash's leftover (ours live as long as one scan or apply).
const staleTmpPack = time.Hour

// removeStaleTmpPacks deletes the temporary packs (and bundle spools) a
// crash left in dir.
func removeStaleTmpPacks(dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range entries {
		if !strings.HasPrefix(de.Name(), packTmpPrefix) {
			continue
		}
		if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > staleTmpPack {
			err := os.Remove(filepath.Join(dir, de.Name()))
			log.Warn("gitstore: removed a temporary pack left by a crash", "file", de.Name(), "err", err)
		}
	}
}

// endPackLocked completes the pack begun by beginPackLocked and makes its
// objects readable; a no-op when none is being written. On error the pack is
// deleted: objects written since beginPackLocked are lost, so nothing may
// refer to them (no ref moves, no stat cache entry is saved).
func (s *Store) endPackLocked() error {
	pw := s.packs.pw
	if pw == nil {
		return nil
	}
	s.packs.pw = nil
	wrote, err := pw.finish()
	if err != nil {
		s.forgetUnstoredLocked()
		return fmt.Errorf("gitstore: write pack: %w", err)
	}
	if wrote {
		s.st.Reindex()
	}
	return nil
}

// abortPackLocked deletes the pack being written, if any, and the objects
// queued to be written loose: both may be named by the stat cache (a scan
// refused by the mass-delete guard had hashed its files), which then goes
// back to its saved copy.
func (s *Store) abortPackLocked() {
	if s.packs.pw == nil {
		return
	}
	if s.packs.pw.f != nil || len(s.packs.pw.lq.queue) > 0 {
		s.forgetUnstoredLocked()
	}
	s.packs.pw.abort()
	s.packs.pw = nil
}

// forgetUnstoredLocked drops the in-memory state that may name objects of a
// pack that was never completed: the stat cache goes back to its saved copy
// (whose hashes all name stored blobs) and the head tree is reloaded.
func (s *Store) forgetUnstoredLocked() {
	s.fst.stats = loadStatCache(s.statCachePath(), s.opts.log)
	s.cur.root = nil
}

// open creates the temporary pack file and writes the header; the object
// count is fixed up by finish.
func (pw *packWriter) open() error {
	if pw.f != nil {
		return nil
	}
	// objects/pack exists in every git directory; it is not created here,
	// so a vanished .peersync is never recreated (the folder guard).
	// 0444 less the umask: no wider than the user's files (git makes packs 0444).
	f, err := atomicfile.CreateTemp(pw.dir, packTmpPrefix+"*.pack", 0o444)
	if err != nil {
		return err
	}
	pw.f = f
	pw.out = packOut{w: bufio.NewWriterSize(newWritebackWriter(f), 256<<10)} // spool_writeback.go
	_, err = pw.out.Write([]byte{'P', 'A', 'C', 'K', 0, 0, 0, 2, 0, 0, 0, 0})
	return err
}

// objectHeader appends git's pack object header (type and size varint).
func objectHeader(b []byte, t plumbing.ObjectType, size int64) []byte {
	c := byte(t)<<4 | byte(size&15)
	size >>= 4
	for size > 0 {
		b = append(b, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(b, c)
}

// ofsDeltaOffset appends the OFS_DELTA negative offset encoding of rel.
func ofsDeltaOffset(b []byte, rel int64) []byte {
	var tmp [10]byte
	i := len(tmp) - 1
	tmp[i] = byte(rel & 0x7f)
	for rel >>= 7; rel > 0; rel >>= 7 {
		rel--
		i--
		tmp[i] = 0x80 | byte(rel&0x7f)
	}
	return append(b, tmp[i:]...)
}

// zlibFor returns a zlib writer onto the pack stream at the level for an
// object of the given size whose content starts with head.
func (pw *packWriter) zlibFor(size int64, blob bool, head []byte) *zlib.Writer {
	return pw.z.get(&pw.out, size, blob, head)
}

// zlibWriters reuses one zlib writer per compression level.
type zlibWriters [3]*zlib.Writer // BestSpeed, DefaultCompression, NoCompression; nil until used

// get returns a zlib writer onto w at the level for an object of the given
// size whose content starts with head: no compression for tiny objects and
// content that looks incompressible, the default level for mid-sized ones,
// BestSpeed otherwise.
func (z *zlibWriters) get(w io.Writer, size int64, blob bool, head []byte) *zlib.Writer {
	i, level := 0, zlib.BestSpeed
	switch {
	case size < zlibStoreBelow || blob && incompressible(head):
		i, level = 2, zlib.NoCompression
	case size >= zlibFastBelow && blob && size < zlibFastFrom:
		i, level = 1, zlib.DefaultCompression
	}
	if z[i] == nil {
		if pz, ok := zlibPool[i].Get().(*zlib.Writer); ok {
			z[i] = pz
		} else {
			z[i], _ = zlib.NewWriterLevel(w, level) // the level is valid
		}
	}
	z[i].Reset(w)
	return z[i]
}

// zlibPool keeps the writers of finished packs for the next (a zlib
// writer's state is about 1 MiB to allocate and clear: more than a small
// bundle costs otherwise).
var zlibPool [3]sync.Pool

// release gives z's writers back to zlibPool; z is empty after it.
func (z *zlibWriters) release() {
	for i, w := range z {
		if w != nil {
			w.Reset(io.Discard)
			zlibPool[i].Put(w)
			z[i] = nil
		}
	}
}

// hashOf computes the object name of data.
func (pw *packWriter) hashOf(t plumbing.ObjectType, data []byte) plumbing.Hash {
	pw.sha.Reset()
	pw.scratch.buf = append(append(append(pw.scratch.buf[:0], t.Bytes()...), ' '), strconv.Itoa(len(data))...)
	pw.scratch.buf = append(pw.scratch.buf, 0)
	pw.sha.Write(pw.scratch.buf)
	pw.sha.Write(data)
	var h plumbing.Hash
	pw.sha.Sum(h[:0])
	return h
}

// known reports whether h is in this pack or, for blobs (any object when
// checkAll), stored already. (A scan's new trees and commits are new by
// construction; a rare duplicate in another pack is harmless.)
func (pw *packWriter) known(t plumbing.ObjectType, h plumbing.Hash) bool {
	if _, ok := pw.obj[h]; ok || pw.lq.queued[h] {
		return true
	}
	return (t == plumbing.BlobObject || pw.checkAll) && pw.has(h)
}

// writeObject stores a whole object unless it exists.
func (pw *packWriter) writeObject(t plumbing.ObjectType, data []byte) (plumbing.Hash, error) {
	h := pw.hashOf(t, data)
	if pw.known(t, h) {
		return h, nil
	}
	if pw.enqueue(h, t, data) {
		return h, nil
	}
	if err := pw.promote(); err != nil {
		return h, err
	}
	return h, pw.put(h, t, data, 0, -1)
}

// writeDelta stores the object h (size bytes of content) as the given
// delta against base when base is in this pack, the chain stays within
// maxTreeDeltaDepth and the delta is small; it reports whether it did (or h
// was there already).
func (pw *packWriter) writeDelta(h plumbing.Hash, t plumbing.ObjectType, size int64, base plumbing.Hash, delta []byte) (bool, error) {
	if pw.known(t, h) {
		return true, nil
	}
	b, ok := pw.obj[base]
	if !ok || b.depth >= maxTreeDeltaDepth || int64(len(delta)) >= size/2 {
		return false, nil
	}
	return true, pw.put(h, t, delta, b.depth+1, b.off)
}

// enqueue keeps an object in memory while the pack is not open and the
// queue has room; it reports whether it did.
func (pw *packWriter) enqueue(h plumbing.Hash, t plumbing.ObjectType, data []byte) bool {
	if pw.f != nil || len(pw.lq.queue) >= packMinObjects || pw.lq.queueBytes+len(data) > queueMaxBytes {
		return false
	}
	pw.lq.queue = append(pw.lq.queue, queuedObj{h, t, append([]byte(nil), data...)})
	pw.lq.queued[h] = true
	pw.lq.queueBytes += len(data)
	return true
}

// promote opens the pack and moves the queued objects into it.
func (pw *packWriter) promote() error {
	if pw.f != nil {
		return nil
	}
	if err := pw.open(); err != nil {
		return err
	}
	for _, q := range pw.lq.queue {
		if err := pw.put(q.h, q.typ, q.data, 0, -1); err != nil {
			return err
		}
	}
	pw.lq.queue, pw.lq.queued, pw.lq.queueBytes = nil, map[plumbing.Hash]bool{}, 0
	return nil
}

// put writes one entry: a whole object of type t, or (base >= 0) an
// OFS_DELTA against the object at offset base whose chain is depth-1 long.
func (pw *packWriter) put(h plumbing.Hash, t plumbing.ObjectType, data []byte, depth int32, base int64) error {
	if err := pw.open(); err != nil {
		return err
	}
	off := pw.out.off
	pw.out.crc = 0
	hdr := pw.scratch.buf[:0]
	if base >= 0 {
		hdr = objectHeader(hdr, plumbing.OFSDeltaObject, int64(len(data)))
		hdr = ofsDeltaOffset(hdr, off-base)
	} else {
		hdr = objectHeader(hdr, t, int64(len(data)))
	}
	pw.scratch.buf = hdr
	if _, err := pw.out.Write(hdr); err != nil {
		return err
	}
	z := pw.zlibFor(int64(len(data)), t == plumbing.BlobObject, data)
	if _, err := z.Write(data); err != nil {
		return err
	}
	if err := z.Close(); err != nil {
		return err
	}
	pw.obj[h] = packedObj{off: off, crc: pw.out.crc, depth: depth}
	return nil
}

// writeBlobFrom streams size bytes of r into a blob: one pass computes the
// object name and compresses. ok is false when r ended before size bytes
// (the file shrank while read); nothing is kept then. A blob that turns out
// to exist already is rolled back as well.
func (pw *packWriter) writeBlobFrom(r io.Reader, size int64) (h plumbing.Hash, ok bool, err error) {
	if pw.f == nil && size <= queueMaxBlob && len(pw.lq.queue) < packMinObjects && pw.lq.queueBytes+int(size) <= queueMaxBytes {
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err == io.EOF || err == io.ErrUnexpectedEOF {
			return h, false, nil // shrank while read
		} else if err != nil {
			return h, false, fmt.Errorf("read: %w", err)
		}
		h = pw.hashOf(plumbing.BlobObject, data)
		if !pw.known(plumbing.BlobObject, h) {
			pw.enqueue(h, plumbing.BlobObject, data)
		}
		return h, true, nil
	}
	if err := pw.promote(); err != nil {
		return h, false, err
	}
	off := pw.out.off
	pw.out.crc = 0
	pw.sha.Reset()
	hdr := append(append(pw.scratch.buf[:0], "blob "...), strconv.FormatInt(size, 10)...)
	pw.sha.Write(append(hdr, 0))
	pw.scratch.buf = objectHeader(hdr[:0], plumbing.BlobObject, size)
	if _, err := pw.out.Write(pw.scratch.buf); err != nil {
		return h, false, err
	}
	if pw.scratch.chunk == nil {
		pw.scratch.chunk = make([]byte, blobChunk)
	}
	chunk := pw.scratch.chunk
	// The first chunk decides the compression level.
	first, rerr := io.ReadFull(r, chunk[:min(int64(len(chunk)), size)])
	if rerr == io.ErrUnexpectedEOF {
		rerr = io.EOF
	}
	z := pw.zlibFor(size, true, chunk[:first])
	var n int64
	for m := first; n < size; m, rerr = r.Read(chunk[:min(int64(len(chunk)), size-n)]) {
		if m > 0 {
			pw.sha.Write(chunk[:m])
			if _, err := z.Write(chunk[:m]); err != nil {
				return h, false, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return h, false, errors.Join(fmt.Errorf("read: %w", rerr), pw.rewind(off))
		}
		if n == size {
			break
		}
	}
	if err := z.Close(); err != nil {
		return h, false, err
	}
	if n < size {
		return h, false, pw.rewind(off)
	}
	pw.sha.Sum(h[:0])
	if pw.known(plumbing.BlobObject, h) {
		return h, true, pw.rewind(off)
	}
	pw.obj[h] = packedObj{off: off, crc: pw.out.crc}
	return h, true, nil
}

// incompressible reports whether b looks like random or already compressed
// data, from the number of distinct byte values among its first 512 bytes:
// random bytes show about 256(1-e^(-n/256)) of them (221 in 512), text
// rarely a third of that. Such content is stored without compression (what
// deflate would make of it is as big, and costs time). Under 256 bytes it
// says false.
func incompressible(b []byte) bool {
	n := min(len(b), 512)
	if n < 256 {
		return false
	}
	var seen [256]bool
	distinct := 0
	for _, c := range b[:n] {
		if !seen[c] {
			seen[c] = true
			distinct++
		}
	}
	return float64(distinct) > 0.85*256*(1-math.Exp(-float64(n)/256))
}

// rewind drops everything written from offset off on.
func (pw *packWriter) rewind(off int64) error {
	if err := pw.out.w.Flush(); err != nil {
		return err
	}
	if err := pw.f.Truncate(off); err != nil {
		return err
	}
	if _, err := pw.f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	pw.out.w.Reset(pw.f)
	pw.out.off = off
	return nil
}

// abort removes the temporary pack and forgets the queue.
func (pw *packWriter) abort() {
	pw.lq.queue, pw.lq.queued = nil, map[plumbing.Hash]bool{}
	if pw.f != nil {
		name := pw.f.Name()
		pw.f.Close()
		os.Remove(name)
		pw.f = nil
	}
}

// finish completes the pack: object count in the header, trailer checksum,
// fsync, the .idx written and renamed into place, then the pack renamed to
// pack-<sum>.pack (a pack is visible to readers only once both exist). It
// returns false when no pack was written: no object, or only a few, written
// loose.
func (pw *packWriter) finish() (bool, error) {
	if pw.f == nil && pw.packOnly && len(pw.lq.queue) > 0 {
		if err := pw.promote(); err != nil {
			pw.abort()
			return false, err
		}
	}
	if pw.f == nil {
		// Too few objects for a pack: loose ones.
		for _, q := range pw.lq.queue {
			if _, err := pw.lq.loose(q.typ, q.data); err != nil {
				return false, err
			}
		}
		pw.lq.queue = nil
		return false, nil
	}
	if len(pw.obj) == 0 {
		pw.abort()
		return false, nil
	}
	err := pw.finishPack()
	if err != nil {
		pw.abort()
	}
	pw.obj = nil // trees may keep a reference to pw's generation only
	return err == nil, err
}

func (pw *packWriter) finishPack() error {
	f := pw.f
	if err := pw.out.w.Flush(); err != nil {
		return err
	}
	var cnt [4]byte
	binary.BigEndian.PutUint32(cnt[:], uint32(len(pw.obj)))
	if _, err := f.WriteAt(cnt[:], 8); err != nil {
		return err
	}
	// The count changed the header, so the trailer checksum needs a second
	// pass over the file (git fast-import does the same).
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sum := sha1.New()
	if n, err := io.Copy(sum, io.LimitReader(f, pw.out.off)); err != nil {
		return err
	} else if n != pw.out.off {
		return fmt.Errorf("pack shorter than written (%d < %d)", n, pw.out.off)
	}
	var packSum plumbing.Hash
	sum.Sum(packSum[:0])
	if _, err := f.Write(packSum[:]); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	tmp := f.Name()
	if err := f.Close(); err != nil {
		return err
	}
	pw.f = nil
	// The index goes in first, then the pack: a pack never exists without
	// its index (go-git fails every read while such a pack is listed), and an
	// index without its pack is ignored by git and go-git alike.
	base := filepath.Join(pw.dir, "pack-"+packSum.String())
	if err := writeFileAtomic(base+".idx", encodeIdx(pw.obj, packSum), 0o444); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, base+".pack"); err != nil {
		os.Remove(tmp)
		os.Remove(base + ".idx")
		return err
	}
	return atomicfile.SyncDir(pw.dir)
}
