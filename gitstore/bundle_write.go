package gitstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
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
	src, err := s.exportSourceLocked()
	if err != nil {
		return BundleInfo{}, err
	}
	defer src.idle()
	// Only the since commits we have count (see newCommitsLocked). They
	// are looked up through our own pack reader: go-git's would build an
	// offset table of each pack it reads from, and keep it (42 MiB for a
	// 100,000-commit history at a first sync's peak).
	var sinceP []plumbing.Hash
	for _, h := range since {
		if ok, err := commitInSource(src, h.plumbing()); err != nil {
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
		if err := writeBundleHeader(bw, st, head, nil); err != nil {
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
		if err := writeBundleHeader(bw, st, head, prereqs); err != nil {
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

// commitInSource reports whether src holds commit h (false for an object
// we lack or one of another type). A packed object's type is read from its
// entry's header (a delta's is resolved); a loose one is read only when it
// is at most commitSizeLimit, a size no commit of ours comes near (a bigger
// one counts as absent: the bundle is bigger, nothing fails).
func commitInSource(src *objectSource, h plumbing.Hash) (bool, error) {
	if l, ok := src.locate(h); ok {
		eh, err := src.header(l)
		if err != nil {
			return false, fmt.Errorf("gitstore: object %s: %w", h, err)
		}
		if eh.typ != plumbing.OFSDeltaObject && eh.typ != plumbing.REFDeltaObject {
			return eh.typ == plumbing.CommitObject, nil
		}
		o, err := src.object(h, false)
		if err != nil {
			return false, err
		}
		return o.typ == plumbing.CommitObject, nil
	}
	typ, _, err := src.looseUpTo(h, commitSizeLimit)
	if errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, errLooseTooBig) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return typ == plumbing.CommitObject, nil
}

// commitSizeLimit bounds what commitInSource reads of a loose object.
const commitSizeLimit = 1 << 20

// exportHook, when set (tests), is called by WriteBundle once it holds its
// read view.
var exportHook func(*Store)

// writeBundleHeader writes the bundle's header and flushes it.
func writeBundleHeader(bw *bufio.Writer, st storer.EncodedObjectStorer, head plumbing.Hash, prereqs []plumbing.Hash) error {
	fmt.Fprintf(bw, "%s\n", bundleV2Signature)
	for _, p := range prereqs {
		subject := ""
		if c, err := object.GetCommit(st, p); err == nil {
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
