package gitstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/revlist"
)

// packWindow is the delta search window of the packs we write.
const packWindow = 10

// WriteBundle writes to w a git bundle (v2) of refs/heads/main holding the
// objects reachable from our head and not from any commit of since (the
// commits the peer is known to have). Hashes in since that we do not have, or
// that are not ancestors of our head, are ignored, so a stale peer record
// degrades to a bigger bundle, not an error. The bundle's prerequisites are
// exactly the since commits used for the exclusion.
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
	anc, err := s.ancestorsLocked(ctx, head)
	if err != nil {
		return BundleInfo{}, err
	}
	seen := map[plumbing.Hash]bool{}
	var prereqs []plumbing.Hash
	for _, h := range since {
		p := h.plumbing()
		if anc[p] && !seen[p] {
			seen[p] = true
			prereqs = append(prereqs, p)
		}
	}
	if seen[head] {
		return BundleInfo{}, ErrNothingToSend
	}
	// A since commit we have beyond our head (the peer is ahead of us):
	// nothing to send either.
	for _, h := range since {
		p := h.plumbing()
		if anc[p] {
			continue
		}
		if ok, _ := s.hasCommitLocked(p); !ok {
			continue
		}
		hc, err := s.commitLocked(head)
		if err != nil {
			return BundleInfo{}, err
		}
		pc, err := s.commitLocked(p)
		if err != nil {
			return BundleInfo{}, err
		}
		if ok, err := hc.IsAncestor(pc); err == nil && ok {
			return BundleInfo{}, ErrNothingToSend
		}
	}
	sort.Slice(prereqs, func(i, j int) bool { return prereqs[i].String() < prereqs[j].String() })
	hashes, err := revlist.Objects(s.st, []plumbing.Hash{head}, prereqs)
	if err != nil {
		return BundleInfo{}, fmt.Errorf("gitstore: list objects: %w", err)
	}
	if len(hashes) == 0 {
		return BundleInfo{}, ErrNothingToSend
	}

	cw := &ctxWriter{ctx: ctx, w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	fmt.Fprintf(bw, "%s\n", bundleV2Signature)
	for _, p := range prereqs {
		subject := ""
		if c, err := s.commitLocked(p); err == nil {
			subject, _, _ = strings.Cut(c.Message, "\n")
		}
		fmt.Fprintf(bw, "-%s %s\n", p, subject)
	}
	fmt.Fprintf(bw, "%s %s\n\n", head, mainRef)
	if _, err := packfile.NewEncoder(bw, s.st, false).Encode(hashes, packWindow); err != nil {
		return BundleInfo{}, fmt.Errorf("gitstore: write pack: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return BundleInfo{}, fmt.Errorf("gitstore: write bundle: %w", err)
	}
	info := BundleInfo{Head: fromPlumbing(head), Objects: len(hashes)}
	for _, p := range prereqs {
		info.Prerequisites = append(info.Prerequisites, fromPlumbing(p))
	}
	return info, nil
}

// ancestorsLocked returns the set of commits reachable from head, head
// included.
func (s *Store) ancestorsLocked(ctx context.Context, head plumbing.Hash) (map[plumbing.Hash]bool, error) {
	set := map[plumbing.Hash]bool{}
	stack := []plumbing.Hash{head}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if set[h] {
			continue
		}
		if len(set)%1024 == 0 {
			if err := ctxErr(ctx); err != nil {
				return nil, err
			}
		}
		set[h] = true
		c, err := s.commitLocked(h)
		if err != nil {
			return nil, err
		}
		stack = append(stack, c.ParentHashes...)
	}
	return set, nil
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
