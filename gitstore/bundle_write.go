package gitstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
)

// WriteBundle writes to w a git bundle (v2) of refs/heads/main holding the
// objects reachable from our head and not from any commit of since (the
// commits the peer is known to have). Hashes in since that we do not have
// are ignored, so a stale peer record degrades to a bigger bundle, not an
// error; a since commit off our history (the peer diverged) still excludes
// the history it shares with ours. The bundle's prerequisites are the
// boundary of the walk, as with `git bundle create main ^since...`: the
// commits the peer has that are parents of the commits sent (in a linear
// history, the since commit itself).
//
// The walk stops at the peer's commits instead of listing both histories
// (see revwalk.go), so a small bundle costs little whatever the history's
// length.
//
// It returns ErrNothingToSend when we have no commit or since already
// contains our head's history. The output passes `git bundle verify` and
// `git fetch <file>`.
//
// It reads main as published when it last moved, and the objects through a
// read view of its own (readview.go), not under the Store's mutex: scans,
// applies, History and Status go on while a long export runs. Exports are
// serialized among themselves.
func (s *Store) WriteBundle(ctx context.Context, w io.Writer, since []Hash) (BundleInfo, error) {
	if s.pub.shut.Load() {
		return BundleInfo{}, ErrClosed
	}
	if err := ctxErr(ctx); err != nil {
		return BundleInfo{}, err
	}
	head := *s.pub.head.Load()
	if head.IsZero() {
		return BundleInfo{}, ErrNothingToSend
	}
	st, unlock, err := s.viewOf(&s.views.exp, head)
	if err != nil {
		return BundleInfo{}, err
	}
	defer unlock()
	if exportHook != nil {
		exportHook(s)
	}
	// The header goes out as soon as it is known, before the walks are
	// done: a reader waiting for the bundle sees it start. Without since
	// commits (a first sync) it has no prerequisites and goes out at once.
	cw := &ctxWriter{ctx: ctx, w: w}
	bw := bundleWriters.Get().(*bufio.Writer)
	bw.Reset(cw)
	defer func() { bw.Reset(io.Discard); bundleWriters.Put(bw) }()
	if len(since) == 0 {
		if err := writeBundleHeader(bw, nil, head, nil); err != nil {
			return BundleInfo{}, err
		}
	}
	src, err := s.exportSourceLocked()
	if err != nil {
		return BundleInfo{}, err
	}
	defer src.idle()
	// Only the since commits we have count (see newCommitsLocked). They
	// are read through src, which keeps them for the walk and the header.
	var sinceP []plumbing.Hash
	for _, h := range since {
		if ok, err := src.hasCommit(st, h.plumbing()); err != nil {
			return BundleInfo{}, err
		} else if ok {
			sinceP = append(sinceP, h.plumbing())
		}
	}
	if len(since) > 0 && len(sinceP) == 0 {
		if err := writeBundleHeader(bw, nil, head, nil); err != nil {
			return BundleInfo{}, err
		}
	}
	news, prereqs, walk, err := s.newCommitsLocked(ctx, src, head, sinceP)
	if err != nil {
		return BundleInfo{}, err
	}
	if len(news) == 0 {
		return BundleInfo{}, ErrNothingToSend
	}
	if len(sinceP) > 0 {
		if err := writeBundleHeader(bw, src, head, prereqs); err != nil {
			return BundleInfo{}, err
		}
	}
	list, err := s.newObjectsLocked(ctx, src, walk, news)
	if err != nil {
		return BundleInfo{}, err
	}
	news, walk = nil, nil // the commits are listed: let them go
	if err := writeBundlePack(ctx, bw, st, src, list); err != nil {
		return BundleInfo{}, err
	}
	if err := bw.Flush(); err != nil {
		return BundleInfo{}, fmt.Errorf("gitstore: write bundle: %w", err)
	}
	info := BundleInfo{Head: fromPlumbing(head), Objects: len(list.objs)}
	for _, p := range prereqs {
		info.Prerequisites = append(info.Prerequisites, fromPlumbing(p))
	}
	return info, nil
}

// bundleWriters keeps the 256 KiB output buffers of finished exports for
// the next ones: allocating and clearing one was a quarter of the CPU time
// of a 1-commit bundle.
var bundleWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(io.Discard, 256<<10) }}

// exportHook, when set (tests), is called by WriteBundle once it holds its
// read view.
var exportHook func(*Store)

// writeBundleHeader writes the bundle's header and flushes it; src reads
// the prerequisites' subjects (none: nil).
func writeBundleHeader(bw *bufio.Writer, src *objectSource, head plumbing.Hash, prereqs []plumbing.Hash) error {
	fmt.Fprintf(bw, "%s\n", bundleV2Signature)
	for _, p := range prereqs {
		fmt.Fprintf(bw, "-%s %s\n", p, src.subject(p))
	}
	fmt.Fprintf(bw, "%s %s\n\n", head, mainRef)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gitstore: write bundle: %w", err)
	}
	return nil
}

// ctxWriter fails writes once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := ctxErr(c.ctx); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// exportSourceLocked returns the export view's reader of our objects, its
// packs brought up to date. The caller holds s.exp.mu.
func (s *Store) exportSourceLocked() (*objectSource, error) {
	if s.views.exp.src == nil {
		s.views.exp.src = newObjectSource(filepath.Join(s.gitDir, "objects"))
	}
	if err := s.views.exp.src.refresh(); err != nil {
		return nil, err
	}
	return s.views.exp.src, nil
}
