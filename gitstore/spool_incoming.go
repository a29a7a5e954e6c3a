package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

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
type Incoming struct {
	f       *os.File // the pack part
	hdr     []byte   // the header, up to and including its blank line
	hdrDone bool
	packLen int64 // bytes of f written
	// Limits.MaxSpoolBytes and MinFreeBytes; nextCheck is the pack length
	// at which the free space is looked at again.
	maxSpool, minFree, nextCheck int64
	dir                          string
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
	return &Incoming{f: f, dir: dir, maxSpool: s.opts.limits.MaxSpoolBytes, minFree: s.opts.limits.MinFreeBytes}, nil
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
	return n, nil
}

// Truncate cuts the bundle back to its first n bytes.
func (in *Incoming) Truncate(n int64) error {
	if n < 0 || n > in.Size() {
		return fmt.Errorf("gitstore: truncate %d bytes of %d", n, in.Size())
	}
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
// checked its length and checksum against what the sender declared). in
// is used up: Remove it afterwards whatever the result.
func (s *Store) ApplyIncoming(ctx context.Context, in *Incoming, peer string) (ApplyResult, error) {
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
		r := bufio.NewReaderSize(io.NewSectionReader(in.f, 0, in.packLen), 256<<10)
		theirs, newCommits, adopted, err := s.receivePack(ctx, hdr, r, in.f, in.packLen)
		if adopted { // the file is a pack of ours now
			name := in.f.Name()
			in.f.Close()
			os.Remove(rawName(name))
			in.f = nil
		}
		return theirs, newCommits, err
	})
}
