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
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/peersync/peersync/internal/atomicfile"
)

// Store maintenance: the loose objects of small scans and the small packs
// of scans and applies are consolidated into one pack, as `git gc --auto`
// and git's geometric repacking do, so that a folder edited one file at a
// time for a year does not end with hundreds of thousands of loose files
// and thousands of packs (every object lookup tries each pack in turn).
// It runs by itself in the background after main moves (maintain_auto.go),
// and when the caller calls Maintain.
//
// When: more than maintainLoose loose objects (estimated, as git gc --auto
// does, from a sample of the 256 directories), or more than maintainPacks
// packs. What: the loose objects and the packs that break a geometric
// progression (sorted by object count, largest first, pack i is kept only
// if it holds at least maintainFactor times as many objects as all smaller
// packs together; the first pack that fails and all smaller ones are
// rolled up). So each object is copied about log2(objects) times over the
// store's life, the packs stay few (at most about log2 of the object count
// plus maintainPacks) and the loose objects under maintainLoose. Nothing is
// pruned: every object stays, reachable or not.
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
// Step 1, the long one, holds no lock of the store: it reads objects that
// never change through a pack reader and a storage of its own, and only
// adds files; scans, applies, exports and History go on meanwhile (objects
// they add after it listed the store are not touched). Step 2 removes
// packs others may be reading, so it holds every lock of the store (the
// apply lock, the store's mutex and both read views: lockAll), but only
// for those few unlinks and new storages: milliseconds
// (MaintainResult.Held); the consolidated loose objects are removed after,
// without the locks (every reader then finds them in the new pack).
//
// A kill at any point leaves every object readable: before step 1 ends the
// old files are untouched (a temporary pack is deleted by a later scan once
// an hour old); after it, an object is in the new pack whatever step 2
// removed.

// The thresholds (variables so the crash test's helper can lower them; see
// maintain_crashtest.go).
var (
	// maintainLoose is the number of loose objects above which Maintain
	// consolidates. git gc --auto waits for 6,700; ours are fewer because a
	// loose object costs an export far more than a packed one (a file to
	// open, read and deflate again, where a packed one is copied as stored
	// from a read window): with 1,000 a full bundle of a 1,000-file store
	// after 1,000 edits took 1.5 times that of the store consolidated. Each
	// single-file scan adds three or four, so this is a run every 60-80
	// edits, writing a pack of a few hundred objects (plus the small packs
	// the geometric rule rolls up).
	maintainLoose = 256
	// maintainPacks is the number of packs above which Maintain rolls up
	// the small ones even when loose objects are few.
	maintainPacks = 20
)

// maintainFactor is the geometric progression of the packs kept.
const maintainFactor = 2

// maintainSample is how many of the 256 loose-object directories are
// listed to estimate their number.
const maintainSample = 8

// MaintainResult says what Maintain did.
type MaintainResult struct {
	// Done reports whether anything was consolidated.
	Done bool
	// LooseBefore and PacksBefore count the loose objects and packs found
	// (LooseBefore is an estimate when Done is false: 256/8 times those of
	// 8 of the 256 directories, as git gc --auto counts); Loose and Packs
	// were consolidated into Objects objects of one new pack.
	LooseBefore, PacksBefore int
	Loose, Packs, Objects    int
	// Held is how long the store's locks were held (the removal of the
	// rolled-up packs, from when the locks were taken); the rest ran
	// beside other operations.
	Held time.Duration
}

// maintainMode says what to consolidate.
type maintainMode int

const (
	maintainAuto  maintainMode = iota // when over the thresholds
	maintainForce                     // now, geometric
	maintainAll                       // now, every pack and loose object into one pack
)

// Maintain consolidates the store's loose objects and small packs into one
// pack when there are more than about 256 loose objects or 20 packs (see
// maintain.go); otherwise it returns at once (a few directories listed)
// with Done false. The store runs it by itself in the background after a
// scan or an applied bundle moves main, so callers need not; calling it
// waits for a background run in progress. It is crash-safe: a process
// killed at any point loses no object. It holds the store's locks only
// while it removes the consolidated files (MaintainResult.Held); scans,
// applies and exports go on while it writes the new pack.
func (s *Store) Maintain(ctx context.Context) (MaintainResult, error) {
	return s.maintain(ctx, maintainAuto)
}

// maintain consolidates as mode says; one run at a time.
func (s *Store) maintain(ctx context.Context, mode maintainMode) (res MaintainResult, err error) {
	s.maint.run.Lock()
	defer s.maint.run.Unlock()
	if s.pub.shut.Load() {
		return MaintainResult{}, ErrClosed
	}
	if err := ctxErr(ctx); err != nil {
		return MaintainResult{}, err
	}
	objDir := filepath.Join(s.gitDir, "objects")
	if mode == maintainAuto {
		packs, loose := countObjectFiles(objDir)
		if packs <= maintainPacks && loose <= maintainLoose {
			return MaintainResult{PacksBefore: packs, LooseBefore: loose}, nil
		}
	}
	// A reader of our packs of its own: the export's is used under its
	// view's lock, which this step does not take.
	src := newObjectSource(objDir)
	defer src.close()
	if err := src.refresh(); err != nil {
		return MaintainResult{}, err
	}
	loose, err := listLoose(objDir)
	if err != nil {
		return MaintainResult{}, err
	}
	res = MaintainResult{LooseBefore: len(loose), PacksBefore: len(src.packs)}
	if mode == maintainAuto && len(loose) <= maintainLoose && len(src.packs) <= maintainPacks {
		return res, nil
	}
	roll := rollUp(src.packs)
	if mode == maintainAll {
		roll = slices.Clone(src.packs)
	}
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
		name, err := s.writeMaintPack(ctx, src, list)
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
	unlock := s.lockAll()
	t0 := time.Now()
	err = s.removePacksLocked(src, roll)
	unlock()
	res.Held = time.Since(t0)
	if err != nil {
		return res, err
	}
	// The loose objects go without the locks: every reader now finds them
	// in the new pack (the Store's storage and the views are new and list
	// it; go-git and our reader fall back to the packs when a loose file
	// has gone).
	for _, hx := range looseDone {
		if err := os.Remove(filepath.Join(objDir, hx[:2], hx[2:])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("gitstore: maintain: %w", err)
		}
	}
	res.Done, res.Loose, res.Packs, res.Objects = true, len(loose), len(roll), len(list.objs)
	return res, nil
}

// removePacksLocked removes the rolled-up packs (step 2), holding every
// lock of the store (lockAll), and leaves the Store's storage and the read
// views new.
func (s *Store) removePacksLocked(src *objectSource, roll []*packFile) error {
	if s.closed {
		return ErrClosed
	}
	// The Store's storage and the read views keep packs open: closed
	// before they go (a file open cannot be removed on Windows), new ones
	// after (the views' at their next use).
	if err := errors.Join(s.st.Close(), s.views.rd.release(), s.views.exp.release()); err != nil {
		s.opts.log.Debug("gitstore: maintain: close storages", "err", err)
	}
	defer func() { s.st = s.openStorage() }()
	packDir := filepath.Join(s.gitDir, "objects", "pack")
	for i, p := range roll {
		if i == len(roll)/2 {
			if err := maintainStep("removing"); err != nil {
				return err
			}
		}
		src.dropWindows(p)
		p.f.Close()
		if err := os.Remove(filepath.Join(packDir, p.name+".pack")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("gitstore: maintain: %w", err)
		}
		if err := os.Remove(filepath.Join(packDir, p.name+".idx")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("gitstore: maintain: %w", err)
		}
	}
	return nil
}

// lockAll takes every lock of the store: the export view's, applyMu, mu
// and the History view's. It never waits for one while holding another
// (each is tried; when one is busy, those taken are released and that one
// is waited for alone), so a long apply never holds up an export through
// maintenance, nor an export a scan. It returns the unlock.
func (s *Store) lockAll() (unlock func()) {
	locks := []*sync.Mutex{&s.views.exp.mu, &s.applyMu, &s.mu, &s.views.rd.mu}
	for {
		i := 0
		for i < len(locks) && locks[i].TryLock() {
			i++
		}
		if i == len(locks) {
			return func() {
				for j := len(locks) - 1; j >= 0; j-- {
					locks[j].Unlock()
				}
			}
		}
		for j := i - 1; j >= 0; j-- {
			locks[j].Unlock()
		}
		locks[i].Lock() // wait for its holder, holding nothing else
		locks[i].Unlock()
	}
}

// countObjectFiles returns the number of packs in objDir/pack and an
// estimate of the loose objects (from maintainSample of the 256
// directories, spread over the range).
func countObjectFiles(objDir string) (packs, loose int) {
	ents, _ := os.ReadDir(filepath.Join(objDir, "pack"))
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "pack-") && strings.HasSuffix(n, ".pack") {
			packs++
		}
	}
	for i := 0; i < maintainSample; i++ {
		ents, _ := os.ReadDir(filepath.Join(objDir, fmt.Sprintf("%02x", 0x17+i*256/maintainSample)))
		loose += len(ents)
	}
	return packs, loose * 256 / maintainSample
}

// maintainStep is a test hook: an error stops maintain at the named step
// as a kill would ("writing": the temporary pack is created; "written":
// the new pack is in place, nothing removed; "removing": half the
// rolled-up packs removed).
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

// writeMaintPack writes list as a new pack and its index (step 1) and
// returns its name (pack-<sha>). It reads the objects through src and a
// storage of its own (loose ones), holding no lock of the store.
func (s *Store) writeMaintPack(ctx context.Context, src *objectSource, list *sendList) (string, error) {
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
	if err := maintainStep("writing"); err != nil {
		return "", err
	}
	cw := &crcWriter{w: bufio.NewWriterSize(f, 256<<10)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	st := filesystem.NewStorageWithOptions(newListingFS(s.gitDir), cache.NewObjectLRU(objectCacheSize),
		filesystem.Options{LargeObjectThreshold: largeObjectThreshold})
	defer st.Close()
	p := &bundlePackWriter{st: st, src: src, list: list, w: bw, sum: sha1.New(), raw: map[plumbing.Hash][]byte{}}
	defer p.z.release()
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
	return "pack-" + sum.String(), nil
}
