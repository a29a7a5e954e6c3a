package gitstore

import "os"

// Syncing a received pack as soon as it is complete.
//
// A received pack that becomes ours (see "Adopting a received pack") must
// be durable before its index is written, so adoptSpool fsyncs it. That
// fsync came only after the read of the pack had caught up and the
// bundle's history had been validated (a first sync: about a quarter of a
// second each), while the disk had nothing to do: the writeback requests
// made as the pack grew (see "Early writeback") leave the last chunks,
// and the file's metadata, to that fsync. So ApplyIncoming, called once
// the last byte is in, starts the pack's fsync at once, in a goroutine of
// its own, for a pack of earlySyncMin bytes or more; the read, the
// validation and the tree limits run meanwhile, and adoptSpool's fsync
// (which waits for the pages already under writeback) finds only the
// trailer it rewrites. Nothing is relied on but adoptSpool's own fsync:
// the order (pack durable, index, rename, then refs) is unchanged, and a
// pack that is refused or not adopted has only been written out early.
// ApplyIncoming waits for the goroutine before it returns.

// earlySyncMin is the smallest pack ApplyIncoming fsyncs as it starts: a
// first sync of 2,000 small files is a 6 MB pack; an edit's bundle, a few
// KiB, is not fsynced early (its fsync is short, and a thin incremental
// pack is copied into a pack of ours rather than kept).
const earlySyncMin = 1 << 20

// earlySync is the fsync of a received pack started when its transfer
// ended (see "Syncing a received pack as soon as it is complete").
type earlySync struct {
	done chan struct{} // closed when the fsync returned
	err  error         // its error: only reported, adoptSpool syncs again
}

// startEarlySync starts fsyncing f, which holds n bytes of pack, when n is
// at least earlySyncMin; it returns nil otherwise.
func startEarlySync(f *os.File, n int64) *earlySync {
	if f == nil || n < earlySyncMin {
		return nil
	}
	e := &earlySync{done: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.err = f.Sync()
	}()
	return e
}

// startEarlySyncPath starts fsyncing the file at name (a big file written
// into the folder as it arrived: see "Big files written as they arrive").
func startEarlySyncPath(name string) *earlySync {
	e := &earlySync{done: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.err = syncFile(name)
	}()
	return e
}

// wait waits for the fsync to return.
func (e *earlySync) wait() {
	if e != nil {
		<-e.done
	}
}
