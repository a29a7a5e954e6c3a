package gitstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

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
func (s *Store) WriteBundle(ctx context.Context, w io.Writer, since []Hash) (BundleInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return BundleInfo{}, ErrClosed
	}
	if err := ctxErr(ctx); err != nil {
		return BundleInfo{}, err
	}
	head, err := s.refLocked(mainRef)
	if err != nil {
		return BundleInfo{}, err
	}
	if head.IsZero() {
		return BundleInfo{}, ErrNothingToSend
	}
	// Only the since commits we have count (see newCommitsLocked).
	var sinceP []plumbing.Hash
	for _, h := range since {
		if ok, err := s.hasCommitLocked(h.plumbing()); err != nil {
			return BundleInfo{}, err
		} else if ok {
			sinceP = append(sinceP, h.plumbing())
		}
	}
	// The header goes out as soon as it is known, before the walks are
	// done: a reader waiting for the bundle sees it start. Without since
	// commits (a first sync) it has no prerequisites and goes out at once.
	cw := &ctxWriter{ctx: ctx, w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if len(sinceP) == 0 {
		if err := s.writeBundleHeaderLocked(bw, head, nil); err != nil {
			return BundleInfo{}, err
		}
	}
	src, err := s.objectSourceLocked()
	if err != nil {
		return BundleInfo{}, err
	}
	defer src.idle()
	news, prereqs, walk, err := s.newCommitsLocked(ctx, src, head, sinceP)
	if err != nil {
		return BundleInfo{}, err
	}
	if len(news) == 0 {
		return BundleInfo{}, ErrNothingToSend
	}
	if len(sinceP) > 0 {
		if err := s.writeBundleHeaderLocked(bw, head, prereqs); err != nil {
			return BundleInfo{}, err
		}
	}
	list, err := s.newObjectsLocked(ctx, src, walk, news)
	if err != nil {
		return BundleInfo{}, err
	}
	news, walk = nil, nil // the commits are listed: let them go
	if err := s.writeBundlePackLocked(ctx, bw, src, list); err != nil {
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

// writeBundleHeaderLocked writes the bundle's header and flushes it.
func (s *Store) writeBundleHeaderLocked(bw *bufio.Writer, head plumbing.Hash, prereqs []plumbing.Hash) error {
	fmt.Fprintf(bw, "%s\n", bundleV2Signature)
	for _, p := range prereqs {
		subject := ""
		if c, err := s.commitLocked(p); err == nil {
			subject, _, _ = strings.Cut(c.Message, "\n")
		}
		fmt.Fprintf(bw, "-%s %s\n", p, subject)
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

// objectSourceLocked returns the store's reader of its own objects, its
// packs brought up to date.
func (s *Store) objectSourceLocked() (*objectSource, error) {
	if s.src == nil {
		s.src = newObjectSource(filepath.Join(s.gitDir, "objects"))
	}
	if err := s.src.refresh(); err != nil {
		return nil, err
	}
	return s.src, nil
}
