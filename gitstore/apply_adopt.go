package gitstore

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/peersync/peersync/internal/atomicfile"
)

// Adopting a received pack.
//
// A first sync brings one pack holding everything; storing its objects
// again in a pack of ours (storeObjects) writes the whole folder a second
// time, re-hashes and re-compresses it, and reads it all back for the new
// trailer: for a 256 MiB file that is a quarter of the receiver's time. As
// `git index-pack` does for a fetch, the pack the bundle brought becomes
// ours as it came instead, when it is already what we would have written:
// the spool it was read into sits in objects/pack, so it only needs its
// trailer, an fsync, an index (built from the offsets and CRC-32s recorded
// as it streamed in) and a rename. The index goes in first and the pack
// last, as for a pack we write, so a crash leaves a temporary file at most.

// adoptable reports whether the spooled pack of objs can be kept as our
// pack as it is: a version 2 pack, not thin (every delta base in it), with
// no object twice and none that the new history does not reach (keep holds
// them all), every delta chain within maxTreeDeltaDepth, and no delta
// whose content or base is over largeObjectThreshold (go-git reads a
// delta's base and result into memory; storeObject stores such objects
// whole). Anything else is stored object by object (storeObjects).
func adoptable(objs *packObjects, keep []*packObject) bool {
	if objs.spool == nil || objs.version != 2 || objs.thin || objs.entries != len(objs.list) || len(keep) != len(objs.list) {
		return false
	}
	for _, o := range objs.list {
		if !o.kept {
			return false
		}
		if !o.isDelta {
			continue
		}
		if o.size > largeObjectThreshold || o.base.size > largeObjectThreshold {
			return false
		}
		depth := 0
		for b := o; b.isDelta; b = b.base {
			if depth++; depth > maxTreeDeltaDepth || b.base == nil {
				return false
			}
		}
	}
	return true
}

// adoptSpool makes the spooled pack (the file spool, holding the pack
// with or without its trailer) a pack of ours: trailer in place, fsynced,
// index written, then the pack renamed into place (see "Adopting a
// received pack").
func adoptSpool(dir string, spool *os.File, objs *packObjects, pc *phaseClock) error {
	sum := objs.sum
	if _, err := spool.WriteAt(sum[:], objs.end); err != nil {
		return err
	}
	if err := spool.Truncate(objs.end + int64(len(sum))); err != nil {
		return err
	}
	if err := spool.Sync(); err != nil {
		return err
	}
	pc.mark("pack-fsync")
	idx := make(map[plumbing.Hash]packedObj, len(objs.list))
	for _, o := range objs.list {
		idx[o.hash] = packedObj{off: o.offset(), crc: o.crc}
	}
	base := filepath.Join(dir, "pack-"+sum.String())
	if _, err := os.Lstat(base + ".pack"); err == nil {
		return nil // the same pack came before: every object is here
	}
	if err := writeFileAtomic(base+".idx", encodeIdx(idx, sum), 0o444); err != nil {
		return err
	}
	pc.mark("idx")
	if err := os.Rename(spool.Name(), base+".pack"); err != nil {
		os.Remove(base + ".idx")
		return fmt.Errorf("gitstore: adopt pack: %w", err)
	}
	err := atomicfile.SyncDir(dir)
	pc.mark("rename")
	return err
}
