package gitstore

import (
	"slices"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// Tree versions as deltas from the known edit.
//
// A dirNode keeps the encoding of the tree version it last wrote (treeEnc):
// the raw git tree bytes, the entries' sort keys and their offsets. set and
// remove record which names they touched; the next write splices only those
// entries into a copy of the previous encoding instead of sorting and
// encoding every entry again. Because the splice knows which byte range
// changed, the delta against the previous version is immediate: copy the
// unchanged prefix, insert the new bytes, copy the unchanged suffix. Inside
// a pack that delta is stored as an OFS_DELTA (typically 30-60 bytes where
// the whole tree would be tens of KB), with chains bounded by
// maxTreeDeltaDepth.
//
// Every change to a dirNode's files or dirs must go through set or remove
// (which call touch); a count mismatch caught at write time falls back to a
// full encoding.

// maxTouched is the number of touched names above which a tree is encoded
// from scratch rather than spliced.
const maxTouched = 32

// treeEnc is the encoding of the version of a tree last written.
type treeEnc struct {
	raw     []byte   // git tree encoding of that version
	spare   []byte   // buffer reused for the next version
	keys    []string // entry sort keys in order: name, or name+"/" for trees
	offs    []int    // offs[i] is where entry i starts in raw; offs[len(keys)] = len(raw)
	touched []string // names set or removed since
	rebuild bool     // too many touched names: encode from scratch

	// Where raw is stored as a delta base: an object of the pack with
	// generation baseGen (0 = not in a pack being written).
	baseGen   uint64
	baseOff   int64
	baseDepth int32
}

// touch records that the entry name of d changed.
func (d *dirNode) touch(name string) {
	e := d.enc
	if e == nil || e.rebuild {
		return
	}
	if len(e.touched) >= maxTouched {
		e.rebuild, e.touched = true, e.touched[:0]
		return
	}
	e.touched = append(e.touched, name)
}

// appendTreeEntry appends one git tree entry: "<octal mode> <name>\0<hash>".
func appendTreeEntry(b []byte, mode filemode.FileMode, name string, h plumbing.Hash) []byte {
	b = strconv.AppendUint(b, uint64(mode), 8)
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, 0)
	return append(b, h[:]...)
}

// writeTreeLocked writes every tree of d whose hash is not valid and returns
// the root tree hash. Into a pack (Scan), each new version is a delta
// against the previous one.
func (s *Store) writeTreeLocked(d *dirNode) (plumbing.Hash, error) {
	if d.clean {
		return d.hash, nil
	}
	e := d.enc
	splice := e != nil && !e.rebuild
	if splice {
		for _, name := range e.touched {
			if sub := d.dirs[name]; sub != nil {
				if _, err := s.writeTreeLocked(sub); err != nil {
					return plumbing.ZeroHash, err
				}
			}
		}
	} else {
		for _, sub := range d.dirs {
			if _, err := s.writeTreeLocked(sub); err != nil {
				return plumbing.ZeroHash, err
			}
		}
	}
	if e == nil {
		e = &treeEnc{}
		d.enc = e
	}
	var raw []byte
	lo, tail := 0, 0 // unchanged prefix and suffix lengths, when known
	if splice {
		raw, lo, tail = e.splice(d)
		splice = len(e.keys) == len(d.files)+len(d.dirs)
	}
	if !splice {
		raw = e.encodeAll(d)
		lo, tail = commonAffixes(e.raw, raw)
	}
	lo = min(lo, len(e.raw), len(raw))
	tail = min(tail, len(e.raw)-lo, len(raw)-lo)
	h, err := s.storeTreeLocked(e, raw, lo, tail)
	if err != nil {
		d.enc = nil // keys and offs may be ahead of raw
		return h, err
	}
	e.raw, e.spare = raw, e.raw
	e.touched, e.rebuild = e.touched[:0], false
	d.hash, d.clean = h, true
	return h, nil
}

// encodeAll encodes every entry of d into e.spare, resetting keys and offs.
func (e *treeEnc) encodeAll(d *dirNode) []byte {
	e.keys = e.keys[:0]
	for name := range d.files {
		e.keys = append(e.keys, name)
	}
	for name := range d.dirs {
		e.keys = append(e.keys, name+"/")
	}
	slices.Sort(e.keys)
	raw := e.spare[:0]
	e.offs = e.offs[:0]
	for _, k := range e.keys {
		e.offs = append(e.offs, len(raw))
		if k[len(k)-1] == '/' {
			name := k[:len(k)-1]
			raw = appendTreeEntry(raw, filemode.Dir, name, d.dirs[name].hash)
		} else {
			f := d.files[k]
			raw = appendTreeEntry(raw, f.mode, k, f.hash)
		}
	}
	e.offs = append(e.offs, len(raw))
	return raw
}

// splice applies the touched names of d to a copy of e.raw, updating keys
// and offs, and returns the new encoding with the lengths of the prefix and
// suffix it shares with e.raw.
func (e *treeEnc) splice(d *dirNode) (raw []byte, lo, tail int) {
	raw = append(e.spare[:0], e.raw...)
	lo, tail = len(raw), len(raw)
	var ent []byte
	for _, name := range e.touched {
		// Remove the entry under either key, then insert the current one.
		for _, k := range [2]string{name, name + "/"} {
			i, found := slices.BinarySearch(e.keys, k)
			if !found {
				continue
			}
			start, end := e.offs[i], e.offs[i+1]
			raw = slices.Delete(raw, start, end)
			e.keys = slices.Delete(e.keys, i, i+1)
			e.offs = slices.Delete(e.offs, i+1, i+2)
			for j := i + 1; j < len(e.offs); j++ {
				e.offs[j] -= end - start
			}
			lo, tail = min(lo, start), min(tail, len(raw)-start)
		}
		var k string
		ent = ent[:0]
		if f, ok := d.files[name]; ok {
			k, ent = name, appendTreeEntry(ent, f.mode, name, f.hash)
		} else if sub, ok := d.dirs[name]; ok {
			k, ent = name+"/", appendTreeEntry(ent, filemode.Dir, name, sub.hash)
		} else {
			continue
		}
		i, _ := slices.BinarySearch(e.keys, k)
		start := e.offs[i]
		raw = slices.Insert(raw, start, ent...)
		e.keys = slices.Insert(e.keys, i, k)
		e.offs = slices.Insert(e.offs, i+1, start)
		for j := i + 1; j < len(e.offs); j++ {
			e.offs[j] += len(ent)
		}
		lo, tail = min(lo, start), min(tail, len(raw)-start-len(ent))
	}
	return raw, lo, tail
}

// commonAffixes returns the lengths of the longest common prefix of a and
// b, and of the longest common suffix of what remains.
func commonAffixes(a, b []byte) (pre, suf int) {
	n := min(len(a), len(b))
	for pre < n && a[pre] == b[pre] {
		pre++
	}
	for suf < n-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	return pre, suf
}

// storeTreeLocked stores the tree raw: into the pack being written as a
// delta against e.raw when that is in the same pack (lo and tail are the
// lengths raw shares with it at its start and end), else whole.
func (s *Store) storeTreeLocked(e *treeEnc, raw []byte, lo, tail int) (plumbing.Hash, error) {
	pw := s.packs.pw
	if pw == nil {
		e.baseGen = 0
		return s.writeObjectLocked(plumbing.TreeObject, raw)
	}
	h := pw.hashOf(plumbing.TreeObject, raw)
	if pw.f == nil {
		// No pack yet (objects are queued, see packWriter.enqueue): a whole
		// object, a delta base only if writing it opened the pack.
		if _, err := pw.writeObject(plumbing.TreeObject, raw); err != nil {
			return h, err
		}
		e.baseGen = 0
		if o, ok := pw.obj[h]; ok {
			e.baseGen, e.baseOff, e.baseDepth = pw.gen, o.off, o.depth
		}
		return h, nil
	}
	if o, ok := pw.obj[h]; ok {
		e.baseGen, e.baseOff, e.baseDepth = pw.gen, o.off, o.depth
		return h, nil
	}
	if pw.checkAll && pw.has(h) {
		e.baseGen = 0 // stored already, elsewhere
		return h, nil
	}
	base, depth := int64(-1), int32(0)
	data := raw
	if e.baseGen == pw.gen && e.baseDepth < maxTreeDeltaDepth && lo+tail > 64 {
		pw.scratch.delta = appendDelta(pw.scratch.delta[:0], len(e.raw), raw, lo, tail)
		if len(pw.scratch.delta) < len(raw)/2 {
			base, depth, data = e.baseOff, e.baseDepth+1, pw.scratch.delta
		}
	}
	if err := pw.put(h, plumbing.TreeObject, data, depth, base); err != nil {
		return h, err
	}
	e.baseGen, e.baseOff, e.baseDepth = pw.gen, pw.obj[h].off, depth
	return h, nil
}

// appendDelta appends a git delta turning a base of baseLen bytes into
// target, where target shares its first lo and last tail bytes with the
// base: copy, insert, copy.
func appendDelta(b []byte, baseLen int, target []byte, lo, tail int) []byte {
	b = appendDeltaSize(b, baseLen)
	b = appendDeltaSize(b, len(target))
	b = appendDeltaCopy(b, 0, lo)
	ins := target[lo : len(target)-tail]
	for len(ins) > 0 {
		n := min(len(ins), 127)
		b = append(b, byte(n))
		b = append(b, ins[:n]...)
		ins = ins[n:]
	}
	return appendDeltaCopy(b, baseLen-tail, tail)
}

func appendDeltaSize(b []byte, n int) []byte {
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

// appendDeltaCopy appends copy instructions for size bytes of the base from
// off.
func appendDeltaCopy(b []byte, off, size int) []byte {
	for size > 0 {
		n := min(size, 0xffffff)
		at := len(b)
		cmd := byte(0x80)
		b = append(b, 0)
		for i := 0; i < 4; i++ {
			if v := byte(off >> (8 * i)); v != 0 {
				cmd |= 1 << i
				b = append(b, v)
			}
		}
		for i := 0; i < 3; i++ {
			if v := byte(n >> (8 * i)); v != 0 {
				cmd |= 0x10 << i
				b = append(b, v)
			}
		}
		b[at] = cmd
		off += n
		size -= n
	}
	return b
}
