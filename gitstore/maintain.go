package gitstore

import (
	"bufio"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/peersync/peersync/internal/atomicfile"
)

// Store maintenance: the loose objects of small scans and the small packs
// of scans and applies are consolidated into one pack, as `git gc --auto`
// and git's geometric repacking do, so that a folder edited one file at a
// time for a year does not end with hundreds of thousands of loose files
// and thousands of packs (every object lookup tries each pack in turn).
//
// When: more than maintainLoose loose objects, or more than maintainPacks
// packs. What: the loose objects and the packs that break a geometric
// progression (sorted by object count, largest first, pack i is kept only
// if it holds at least maintainFactor times as many objects as all smaller
// packs together; the first pack that fails and all smaller ones are
// rolled up). Nothing is pruned: every object stays, reachable or not.
//
// How: the objects are written into one new pack by the bundle's pack
// writer (packstream.go), so packed objects are copied as stored (after a
// CRC-32 check) and their deltas kept when the base comes along; loose
// objects, and deltas whose base stays in a kept pack, are written whole.
// Then, in this order, each step complete before the next:
//
//  1. the pack is written as objects/pack/tmp_pack_*, fsynced, renamed to
//     pack-<sha>.pack after its index pack-<sha>.idx (written the same
//     way), and the directory fsynced: from here every object is stored
//     twice;
//  2. each rolled-up pack is removed, its .pack before its .idx (an index
//     without its pack is ignored), then each consolidated loose object.
//
// A kill at any point leaves every object readable: before step 1 ends the
// old files are untouched (a temporary pack is deleted by a later scan once
// an hour old); after it, an object is in the new pack whatever step 2
// removed.

const (
	// maintainLoose is the number of loose objects above which Maintain
	// consolidates (git gc --auto: 6,700; ours are smaller and each scan
	// adds three or more).
	maintainLoose = 1000
	// maintainPacks is the number of packs above which Maintain rolls up
	// the small ones even when loose objects are few.
	maintainPacks = 20
	// maintainFactor is the geometric progression of the packs kept.
	maintainFactor = 2
)

// MaintainResult says what Maintain did.
type MaintainResult struct {
	// Done reports whether anything was consolidated.
	Done bool
	// LooseBefore and PacksBefore count the loose objects and packs found
	// (LooseBefore is an estimate when Done is false: 256 times those of
	// one of the 256 directories, as git gc --auto counts); Loose and Packs
	// were consolidated into Objects objects of one new pack.
	LooseBefore, PacksBefore int
	Loose, Packs, Objects    int
}

// Maintain consolidates the store's loose objects and small packs into one
// pack when there are more than about 1,000 loose objects or 20 packs (see
// maintain.go); otherwise it returns at once (one directory listed) with
// Done false, so it can be called after every scan or applied bundle, or
// from a timer. It is crash-safe: a process killed at any point loses no
// object. It holds the store's lock while it works (copying objects as
// stored: about what reading them costs; rolling up only the small packs
// keeps that short).
func (s *Store) Maintain(ctx context.Context) (MaintainResult, error) {
	// applyMu too: an ApplyBundle reads our packs through a storage of its
	// own (thin bases, "do we have it"), which must not see them vanish.
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return MaintainResult{}, ErrClosed
	}
	if err := ctxErr(ctx); err != nil {
		return MaintainResult{}, err
	}
	return s.maintainLocked(ctx, false)
}

// maintainLocked consolidates when the thresholds say so, or always when
// force.
func (s *Store) maintainLocked(ctx context.Context, force bool) (MaintainResult, error) {
	objDir := filepath.Join(s.gitDir, "objects")
	src, err := s.objectSourceLocked()
	if err != nil {
		return MaintainResult{}, err
	}
	defer src.idle()
	if !force && len(src.packs) <= maintainPacks {
		// As git gc --auto: one directory of the 256 tells how many
		// loose objects there are.
		ents, _ := os.ReadDir(filepath.Join(objDir, "17"))
		if len(ents)*256 <= maintainLoose {
			return MaintainResult{PacksBefore: len(src.packs), LooseBefore: len(ents) * 256}, nil
		}
	}
	loose, err := listLoose(objDir)
	if err != nil {
		return MaintainResult{}, err
	}
	res := MaintainResult{LooseBefore: len(loose), PacksBefore: len(src.packs)}
	if !force && len(loose) <= maintainLoose && len(src.packs) <= maintainPacks {
		return res, nil
	}
	roll := rollUp(src.packs)
	if len(loose) == 0 && len(roll) <= 1 {
		return res, nil
	}
	kept := map[*packFile]bool{}
	for _, p := range src.packs {
		kept[p] = true
	}
	for _, p := range roll {
		kept[p] = false
	}
	inKept := func(h plumbing.Hash) bool {
		for _, p := range src.packs {
			if kept[p] {
				if _, ok := p.find(h); ok {
					return true
				}
			}
		}
		return false
	}
	list := &sendList{index: map[plumbing.Hash]int32{}}
	for _, p := range roll {
		for _, pos := range p.order { // pack order: bases before deltas
			if h := p.hash(int(pos)); !list.has(h) && !inKept(h) {
				list.add(h, plumbing.ZeroHash)
			}
		}
	}
	var looseDone []string
	for _, h := range loose {
		if !list.has(h) && !inKept(h) {
			list.add(h, plumbing.ZeroHash)
		}
		looseDone = append(looseDone, h.String())
	}
	if len(list.objs) > 0 {
		name, err := s.writeMaintPackLocked(ctx, src, list)
		if err != nil {
			return res, err
		}
		// The same objects in the same order make the same pack: one
		// that an interrupted run already wrote is the new one, not one
		// to remove.
		roll = slices.DeleteFunc(roll, func(p *packFile) bool {
			if p.name == name {
				kept[p] = true
				return true
			}
			return false
		})
	}
	// Step 2: everything is in the new pack (or a kept one).
	if err := maintainStep("written"); err != nil {
		return res, err
	}
	packDir := filepath.Join(objDir, "pack")
	// Readers that do not take mu (History, PeerHead) read through the
	// read view: no read is under way while the old files go, and the view
	// is reindexed before its next use.
	s.rd.mu.Lock()
	defer s.rd.mu.Unlock()
	s.rd.indexed = plumbing.ZeroHash
	for i, p := range roll {
		if i == len(roll)/2 {
			if err := maintainStep("removing"); err != nil {
				return res, err
			}
		}
		src.dropWindows(p)
		p.f.Close()
		if err := os.Remove(filepath.Join(packDir, p.name+".pack")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("gitstore: maintain: %w", err)
		}
		if err := os.Remove(filepath.Join(packDir, p.name+".idx")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("gitstore: maintain: %w", err)
		}
	}
	src.packs = slices.DeleteFunc(src.packs, func(p *packFile) bool { return !kept[p] })
	s.st.Reindex()
	for _, hx := range looseDone {
		if err := os.Remove(filepath.Join(objDir, hx[:2], hx[2:])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("gitstore: maintain: %w", err)
		}
	}
	res.Done, res.Loose, res.Packs, res.Objects = true, len(loose), len(roll), len(list.objs)
	return res, src.refresh()
}

// maintainStep is a test hook: an error stops maintainLocked at the named
// step as a kill would ("written": the new pack is in place, nothing
// removed; "removing": half the rolled-up packs removed).
var maintainStep = func(string) error { return nil }

// rollUp returns the packs to consolidate: those breaking the geometric
// progression (see above), smallest last.
func rollUp(packs []*packFile) []*packFile {
	ps := slices.Clone(packs)
	slices.SortFunc(ps, func(a, b *packFile) int { return b.n - a.n })
	suffix := make([]int, len(ps)+1) // objects in ps[i:]
	for i := len(ps) - 1; i >= 0; i-- {
		suffix[i] = suffix[i+1] + ps[i].n
	}
	for i, p := range ps {
		if p.n < maintainFactor*suffix[i+1] {
			return ps[i:]
		}
	}
	return nil
}

// listLoose returns the loose objects under objDir.
func listLoose(objDir string) ([]plumbing.Hash, error) {
	var out []plumbing.Hash
	for i := 0; i < 256; i++ {
		dir := fmt.Sprintf("%02x", i)
		ents, err := os.ReadDir(filepath.Join(objDir, dir))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("gitstore: maintain: %w", err)
		}
		for _, e := range ents {
			if len(e.Name()) != 38 || strings.Trim(e.Name(), "0123456789abcdef") != "" {
				continue // a temporary file
			}
			h := plumbing.NewHash(dir + e.Name())
			out = append(out, h)
		}
	}
	return out, nil
}

// crcWriter keeps the CRC-32 of what goes through it since the last reset.
type crcWriter struct {
	w   *bufio.Writer
	crc uint32
}

func (c *crcWriter) Write(b []byte) (int, error) {
	c.crc = crc32.Update(c.crc, crc32.IEEETable, b)
	return c.w.Write(b)
}

// writeMaintPackLocked writes list as a new pack and its index (step 1)
// and returns its name (pack-<sha>).
func (s *Store) writeMaintPackLocked(ctx context.Context, src *objectSource, list *sendList) (string, error) {
	packDir := filepath.Join(s.gitDir, "objects", "pack")
	f, err := os.CreateTemp(packDir, packTmpPrefix+"maint_")
	if err != nil {
		return "", fmt.Errorf("gitstore: maintain: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	cw := &crcWriter{w: bufio.NewWriterSize(f, 256<<10)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	p := &bundlePackWriter{s: s, src: src, list: list, w: bw, sum: sha1.New(), raw: map[plumbing.Hash][]byte{}}
	objs := make(map[plumbing.Hash]packedObj, len(list.objs))
	prev := -1
	// The CRC of each entry: flush the buffer at each object's start, so
	// the CRC writer sees entries whole.
	p.onObject = func(i int) error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if prev >= 0 {
			o := list.objs[prev]
			objs[o.h] = packedObj{off: o.off, crc: cw.crc, depth: o.depth}
		}
		cw.crc, prev = 0, i
		return nil
	}
	sum, err := p.writePack(ctx)
	if err != nil {
		return "", fmt.Errorf("gitstore: maintain: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	if err := cw.w.Flush(); err != nil {
		return "", err
	}
	if err := f.Chmod(0o444); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	base := filepath.Join(packDir, "pack-"+sum.String())
	if err := writeFileAtomic(base+".idx", encodeIdx(objs, sum), 0o444); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, base+".pack"); err != nil {
		os.Remove(base + ".idx")
		return "", err
	}
	ok = true
	if err := atomicfile.SyncDir(packDir); err != nil {
		return "", err
	}
	s.st.Reindex()
	return "pack-" + sum.String(), src.refresh()
}
