package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/peersync/peersync/internal/atomicfile"
)

// Incoming is a bundle being received for a Store, written as it arrives
// where ApplyIncoming reads it: its header in memory and its pack in a
// temporary file among the store's packs, which becomes a pack of ours as
// it is when it can (see "Adopting a received pack"). So a bundle that
// comes over the network is written once before its checkout, not spooled
// by the caller and then again by ApplyBundle. Nothing in it is trusted
// before ApplyIncoming has checked all of it, exactly as ApplyBundle does.
//
// An Incoming can be cut back (Truncate) and written on, so a transfer that
// broke resumes where it was; ReadAt reads back what it holds. It is not
// safe for concurrent use. Remove deletes it; after ApplyIncoming it only
// releases what is left.
//
// The pack is read (every object named, its deltas resolved: what `git
// index-pack` does) while it arrives, by a goroutine that follows the file
// as Write extends it (see "Reading the pack as it arrives"), so that
// ApplyIncoming finds it read when the last byte is in.
type Incoming struct {
	st      *Store   // the store it is for (its settings, a storage of its own)
	f       *os.File // the pack part
	hdr     []byte   // the header, up to and including its blank line
	hdrDone bool
	packLen int64 // bytes of f written
	// Limits.MaxSpoolBytes and MinFreeBytes; nextCheck is the pack length
	// at which the free space is looked at again.
	maxSpool, minFree, nextCheck int64
	dir                          string
	parse                        *incomingParse // reading the pack as it arrives; nil before its first byte
	reread                       bool           // ApplyIncoming had to read the pack again after the transfer
	early                        *earlySync     // the pack's fsync ApplyIncoming started; nil when too small
}

// NewIncoming starts receiving a bundle for s (see Incoming). It returns an
// error wrapping ErrNotInitialized when the folder's .peersync is gone.
func (s *Store) NewIncoming() (*Incoming, error) {
	if s.pub.shut.Load() {
		return nil, ErrClosed
	}
	dir := spoolDir(s.gitDir)
	// 0444 less the umask, as our packs: it may become one.
	f, err := atomicfile.CreateTemp(dir, packTmpPrefix+"*.incoming", 0o444)
	if err != nil {
		if _, merr := os.Lstat(s.gitDir); merr != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotInitialized, merr)
		}
		return nil, diskFullError(fmt.Errorf("gitstore: %w", err))
	}
	return &Incoming{st: s, f: f, dir: dir, maxSpool: s.opts.limits.MaxSpoolBytes, minFree: s.opts.limits.MinFreeBytes}, nil
}

// Size returns the number of bytes of bundle written.
func (in *Incoming) Size() int64 { return int64(len(in.hdr)) + in.packLen }

// Write appends bundle bytes. A header over 1 MiB or a pack over
// Limits.MaxSpoolBytes is a *BundleError; a lack of space a *DiskFullError.
func (in *Incoming) Write(p []byte) (int, error) {
	n := len(p)
	if !in.hdrDone {
		from := max(0, len(in.hdr)-1)
		in.hdr = append(in.hdr, p...)
		i := bytes.Index(in.hdr[from:], []byte("\n\n"))
		if i < 0 {
			if len(in.hdr) > maxHeaderBytes {
				in.hdr = in.hdr[:len(in.hdr)-n]
				return 0, &BundleError{Reason: "bad header", Err: fmt.Errorf("header larger than %d bytes", maxHeaderBytes)}
			}
			return n, nil
		}
		end := from + i + 2
		p = bytes.Clone(in.hdr[end:])
		in.hdr, in.hdrDone = in.hdr[:end], true
	}
	if len(p) == 0 {
		return n, nil
	}
	if in.packLen+int64(len(p)) > in.maxSpool {
		return 0, &BundleError{Reason: "over a limit",
			Err: &LimitError{Limit: "Limits.MaxSpoolBytes", Value: in.packLen + int64(len(p)), Max: in.maxSpool}}
	}
	if in.packLen+int64(len(p)) >= in.nextCheck {
		in.nextCheck = in.packLen + diskCheckEvery
		if err := checkFree(in.dir, int64(len(p)), in.minFree, "spool"); err != nil {
			return 0, err
		}
	}
	if _, err := in.f.WriteAt(p, in.packLen); err != nil {
		return 0, diskFullError(fmt.Errorf("gitstore: spool: %w", err))
	}
	in.packLen += int64(len(p))
	if in.parse == nil {
		in.parse = in.st.startParse(in.f)
	}
	in.parse.grew(in.packLen)
	return n, nil
}

// Truncate cuts the bundle back to its first n bytes.
func (in *Incoming) Truncate(n int64) error {
	if n < 0 || n > in.Size() {
		return fmt.Errorf("gitstore: truncate %d bytes of %d", n, in.Size())
	}
	in.stopParse() // it may have read what goes
	if n < int64(len(in.hdr)) {
		in.hdr, in.hdrDone = in.hdr[:n], false
		n = int64(len(in.hdr))
	}
	if err := in.f.Truncate(n - int64(len(in.hdr))); err != nil {
		return fmt.Errorf("gitstore: spool: %w", err)
	}
	in.packLen = n - int64(len(in.hdr))
	in.nextCheck = 0
	return nil
}

// ReadAt reads the bundle written so far.
func (in *Incoming) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(in.hdr)) {
		n = copy(p, in.hdr[off:])
		off += int64(n)
	}
	if n == len(p) {
		return n, nil
	}
	pos := off - int64(len(in.hdr))
	if pos >= in.packLen {
		return n, io.EOF
	}
	want := min(int64(len(p)-n), in.packLen-pos)
	m, err := in.f.ReadAt(p[n:n+int(want)], pos)
	n += m
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// Remove deletes the bundle received (nothing if ApplyIncoming made it a
// pack of ours).
func (in *Incoming) Remove() {
	in.stopParse()
	if in.f == nil {
		return
	}
	name := in.f.Name()
	in.f.Close()
	os.Remove(name)
	os.Remove(rawName(name))
	in.f = nil
}

// ApplyIncoming is ApplyBundle of the bundle in (complete: the caller has
// checked its length, and any checksum of the transfer, against what the
// sender declared; the pack's own trailer and every object's hash are
// checked here). in is used up: Remove it afterwards whatever the result.
func (s *Store) ApplyIncoming(ctx context.Context, in *Incoming, peer string) (ApplyResult, error) {
	// The transfer is over: the pack goes to the disk now, while it is
	// read and checked (see "Syncing a received pack as soon as it is
	// complete").
	if in.early == nil {
		in.early = startEarlySync(in.f, in.packLen)
		defer in.early.wait()
	}
	var pre *prewrite // this apply's big files written as they arrived
	defer func() {
		if pre == nil {
			return
		}
		s.mu.Lock()
		pre.drop()                   // what the checkout did not take
		if s.fst.prewritten == pre { // (the next apply may have set its own)
			s.fst.prewritten = nil
		}
		s.mu.Unlock()
	}()
	return s.applyWith(ctx, peer, func() (plumbing.Hash, []plumbing.Hash, error) {
		if in.f == nil {
			return plumbing.ZeroHash, nil, errors.New("gitstore: incoming bundle already used")
		}
		if in.dir != spoolDir(s.gitDir) {
			return plumbing.ZeroHash, nil, errors.New("gitstore: incoming bundle of another store")
		}
		hdr, err := readBundleHeader(bufio.NewReader(bytes.NewReader(in.hdr)))
		if err != nil {
			return plumbing.ZeroHash, nil, &BundleError{Reason: "bad header", Err: err}
		}
		theirs, newCommits, adopted, err := s.receivePack(ctx, hdr, in.f, func(a *applyRun) (*packObjects, error) {
			if objs := in.parsed(ctx); objs != nil {
				// Its big files, written into the folder as they came,
				// are the checkout's to take until the apply ends.
				pre, objs.spool.pre = objs.spool.pre, nil
				s.mu.Lock()
				s.fst.prewritten = pre
				s.mu.Unlock()
				return objs, nil
			}
			// That read failed: read it again, from the file.
			in.reread = true
			r := bufio.NewReaderSize(io.NewSectionReader(in.f, 0, in.packLen), 256<<10)
			return readPackSpooled(ctx, r, s.packLimits(), a.external, in.f, in.packLen)
		})
		if adopted { // the file is a pack of ours now
			name := in.f.Name()
			in.f.Close()
			os.Remove(rawName(name))
			in.f = nil
		}
		return theirs, newCommits, err
	})
}

// Reading the pack as it arrives.
//
// ApplyIncoming needs the pack read (readPackSpooled: every entry inflated
// and hashed, deltas resolved, the trailer checked) before it validates
// and keeps it. Read after the last byte, that is a second pass over the
// whole bundle (a 256 MiB file: inflate and SHA-1 of all of it) while the
// transfer is already over. So the first byte of pack Write receives starts
// a goroutine that reads the pack from the file as Write extends it,
// waiting when it has caught up; ApplyIncoming tells it the end has come
// and takes what it read. It is only a head start: it writes nothing but
// the spool's raw file and the big files of "Big files written as they
// arrive" (spool_prewrite.go), trusts nothing (ApplyIncoming validates its result
// exactly as before), and whenever it did not finish cleanly (a cut for a
// resume stops it; a bundle it refuses; a thin pack's base not found in
// its own view of the store) ApplyIncoming reads the file again under its
// own locks, as before, so its errors are the ones a bundle always got.
// The raw file's growth is bounded by Limits.MaxSpoolBytes on its own (the
// pack part is bounded by Write).

// errParseStopped ends an incomingParse's read when the Incoming is cut
// back or removed.
var errParseStopped = errors.New("gitstore: incoming pack: read stopped")

// incomingParse is the read of an Incoming's pack as it arrives.
type incomingParse struct {
	mu     sync.Mutex
	more   *sync.Cond // signalled when avail grows, end or stop is set
	avail  int64      // bytes of pack in the file
	read   int64      // bytes of it read so far
	end    bool       // the pack is complete: no more bytes come
	stop   bool       // abandoned: the read fails
	cancel context.CancelFunc
	done   chan struct{} // closed when objs and err are set
	objs   *packObjects
	err    error
}

// startParse starts reading the pack that f receives (see "Reading the
// pack as it arrives").
func (s *Store) startParse(f *os.File) *incomingParse {
	ctx, cancel := context.WithCancel(context.Background())
	p := &incomingParse{cancel: cancel, done: make(chan struct{})}
	p.more = sync.NewCond(&p.mu)
	go func() {
		defer close(p.done)
		st := s.newApplyStorage()
		defer st.Close()
		r := bufio.NewReaderSize(&followReader{p: p, f: f, wb: writeback{f: f}}, 256<<10)
		lim := s.packLimits()
		lim.prewriteDir = s.dir // big files into the folder too
		p.objs, p.err = readPackSpooled(ctx, r, lim, func(h plumbing.Hash, sp *packSpool) (*packObject, error) {
			return externalBase(st, s.opts.maxObject, h, sp)
		}, f, 0)
	}()
	return p
}

// grew says the file holds n bytes of pack.
func (p *incomingParse) grew(n int64) {
	p.mu.Lock()
	p.avail = n
	p.mu.Unlock()
	p.more.Broadcast()
}

// finish waits for the read: with end set, it completes; with stop set,
// it fails. It returns the objects read, or nil after a failure (whose
// leftovers it removes).
func (p *incomingParse) finish(ctx context.Context, stop bool) *packObjects {
	p.mu.Lock()
	p.end, p.stop = true, p.stop || stop
	p.mu.Unlock()
	p.more.Broadcast()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.mu.Lock()
		p.stop = true
		p.mu.Unlock()
		p.more.Broadcast()
		p.cancel()
		<-p.done
	}
	p.cancel()
	if p.err != nil || p.stop {
		if p.objs != nil {
			p.objs.close()
		}
		return nil
	}
	return p.objs
}

// parsed returns the objects of the complete pack as read while it
// arrived, or nil when it was not (then nothing of that read is left: the
// caller reads the file again).
func (in *Incoming) parsed(ctx context.Context) *packObjects {
	p := in.parse
	in.parse = nil
	if p == nil {
		return nil
	}
	objs := p.finish(ctx, false)
	if objs == nil {
		os.Remove(rawName(in.f.Name())) // its deltas' raw file, if any
		in.st.opts.log.Debug("gitstore: incoming pack read again after the transfer", "err", p.err)
	}
	return objs
}

// stopParse abandons the read of the pack, if one runs, and removes what
// it wrote.
func (in *Incoming) stopParse() {
	if in.parse == nil {
		return
	}
	in.parse.finish(context.Background(), true)
	in.parse = nil
	if in.f != nil {
		os.Remove(rawName(in.f.Name()))
	}
}

// followReader reads an incomingParse's file from the start, as far as it
// is written, waiting for more until the pack is complete. It also hands
// what it read to the kernel to write out (the pack may become ours: its
// fsync then finds it written); here, not in Write, because a writeback
// request may wait for the disk's queue, and Write runs in the network's
// receive loop.
type followReader struct {
	p   *incomingParse
	f   *os.File
	pos int64
	wb  writeback
}

func (r *followReader) Read(b []byte) (int, error) {
	p := r.p
	p.mu.Lock()
	for r.pos >= p.avail && !p.end && !p.stop {
		p.more.Wait()
	}
	avail, stop := p.avail, p.stop
	p.mu.Unlock()
	if stop {
		return 0, errParseStopped
	}
	if r.pos >= avail {
		return 0, io.EOF
	}
	n, err := r.f.ReadAt(b[:min(int64(len(b)), avail-r.pos)], r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	r.wb.grew(r.pos)
	p.mu.Lock()
	p.read = r.pos
	p.mu.Unlock()
	p.more.Broadcast()
	return n, err
}
