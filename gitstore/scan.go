package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// Scan walks the folder and commits each added, modified or deleted file as
// its own commit on refs/heads/main, with the message "add <path>",
// "modify <path>" or "delete <path>". Deletions are committed first, then
// additions and modifications, each group sorted by path (so a file that
// became a directory, or the reverse, never needs two files in one commit).
// It returns the commits made, oldest first; none if nothing changed.
//
// Skipped: .peersync itself, any subdirectory holding its own .peersync or
// .git (an independent history), our temporary files (.peersync-tmp-*),
// names that fail [ValidPath], symlinks unless Config.AllowSymlinks, and
// anything that is not a regular file. A file that changes while it is read
// is committed with the content that was read; the next Scan sees the rest.
func (s *Store) Scan(ctx context.Context) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.scanLocked(ctx)
}

type pendingChange struct {
	action Action
	path   string
	entry  fileEntry
}

func (s *Store) scanLocked(ctx context.Context) ([]Change, error) {
	if _, err := os.Lstat(s.gitDir); err != nil {
		// The folder guard: never scan a folder whose marker vanished.
		return nil, fmt.Errorf("%w: %w", ErrNotInitialized, err)
	}
	head, root, err := s.headTreeLocked()
	if err != nil {
		return nil, err
	}
	// New objects go into one pack, completed before main moves.
	s.beginPackLocked()
	defer s.abortPackLocked()
	start := time.Now() // the racy-file check compares with real file times
	ign := newIgnoreScope()
	scans, err := s.walkTree(ctx, "", s.dir, root, ign, false, start)
	if err != nil {
		return nil, err
	}
	hits := 0
	for _, ds := range scans {
		ign.dirs[ds.rel] = ds.patterns
		hits += ds.hits
	}
	// Every unchanged file was a hit: when all cached files were, none is
	// to be forgotten (checked before resolveLocked adds entries).
	stale := hits < len(s.stats.entries)
	// Only what may differ from main goes into these maps.
	tracked := map[string]fileEntry{}
	found := map[string]fileEntry{}
	if err := s.resolveLocked(ctx, scans, found, tracked, start); err != nil {
		return nil, err
	}
	if stale {
		// Some cached files were not found as they were: forget those
		// not found at all (every unchanged file was a hit).
		present := make(map[string]bool, len(s.stats.entries))
		for _, ds := range scans {
			prefix := ""
			if ds.rel != "" {
				prefix = ds.rel + "/"
			}
			for _, name := range ds.regular {
				present[prefix+name] = true
			}
			for _, f := range ds.changed {
				if _, ok := found[f.path]; !ok {
					delete(present, f.path) // unsettled, or vanished
				}
			}
		}
		for p := range s.stats.entries {
			if !present[p] {
				s.stats.drop(p)
			}
		}
	}
	return s.commitFoundLocked(ctx, head, root, tracked, found, ign, root.count())
}

// commitChangesLocked makes one commit per change on top of head and moves
// main to the last one.
func (s *Store) commitChangesLocked(ctx context.Context, head plumbing.Hash, root *dirNode, todo []pendingChange) ([]Change, error) {
	var out []Change
	fail := func(err error) ([]Change, error) {
		s.root = nil // the in-memory tree no longer matches main
		if perr := s.endPackLocked(); perr != nil {
			return nil, errors.Join(err, perr)
		}
		if len(out) > 0 {
			if rerr := s.setRefLocked(mainRef, head); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
		}
		return out, err
	}
	for _, c := range todo {
		if err := ctxErr(ctx); err != nil {
			return fail(err)
		}
		if c.action == ActionDelete {
			root.remove(c.path)
		} else if err := root.set(c.path, c.entry); err != nil {
			return fail(err)
		}
		tree, err := s.writeTreeLocked(root)
		if err != nil {
			return fail(err)
		}
		var parents []plumbing.Hash
		if !head.IsZero() {
			parents = []plumbing.Hash{head}
		}
		sig := s.signature()
		h, err := s.newCommitLocked(tree, parents, fmt.Sprintf("%s %s\n", c.action, c.path), sig)
		if err != nil {
			return fail(err)
		}
		head = h
		out = append(out, Change{Commit: fromPlumbing(h), Action: c.action, Path: c.path,
			Time: sig.When, Author: fmt.Sprintf("%s <%s>", sig.Name, sig.Email)})
		s.log.Debug("gitstore: commit", "action", c.action, "path", c.path, "commit", fromPlumbing(h))
	}
	if err := s.endPackLocked(); err != nil {
		return nil, err
	}
	if len(out) > 0 {
		if err := s.setRefLocked(mainRef, head); err != nil {
			s.root = nil
			return nil, err
		}
		s.rootHead = head
	}
	return out, nil
}

// walkLocked records every file under absDir (slash path rel) in found,
// except those the ignore rules in ign (and absDir's .peersyncignore)
// exclude, recording the rules of every directory walked in ign.dirs. When
// ign.subdirs is not nil, only absDir is listed: the subdirectories a full
// walk would enter are recorded there instead.
func (s *Store) walkLocked(ctx context.Context, rel, absDir string, found map[string]fileEntry, start time.Time, ign ignoreScope) error {
	scans, err := s.walkTree(ctx, rel, absDir, nil, ign, ign.subdirs != nil, start)
	if err != nil {
		return err
	}
	for _, ds := range scans {
		if ign.dirs != nil {
			ign.dirs[ds.rel] = ds.patterns
		}
		for _, sd := range ds.subdirs {
			ign.subdirs[sd] = true
		}
	}
	return s.resolveLocked(ctx, scans, found, nil, start)
}

// hashFileLocked stores the content of the regular file abs as a blob,
// streaming it (memory stays bounded whatever the file size). ok is false
// when the file vanished, is no longer the file fi describes, or shrank
// while it was read; it is then left for the next Scan.
func (s *Store) hashFileLocked(abs string, fi fs.FileInfo) (h plumbing.Hash, ok bool, err error) {
	f, err := os.Open(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return h, false, nil
	} else if err != nil {
		return h, false, fmt.Errorf("gitstore: scan: %w", err)
	}
	defer f.Close()
	fi2, err := f.Stat()
	if err != nil || !os.SameFile(fi, fi2) || !fi2.Mode().IsRegular() {
		return h, false, nil
	}
	size := fi2.Size()
	if s.pw != nil {
		if h, ok, err = s.pw.writeBlobFrom(f, size); err != nil {
			return h, false, fmt.Errorf("gitstore: scan: blob of %q: %w", abs, err)
		}
		return h, ok, nil
	}
	w, writeHeader, err := s.st.LazyWriter()
	if err != nil {
		return h, false, fmt.Errorf("gitstore: scan: %w", err)
	}
	type hasher interface{ Hash() plumbing.Hash }
	if err := writeHeader(plumbing.BlobObject, size); err != nil {
		w.Close()
		return h, false, fmt.Errorf("gitstore: scan: %w", err)
	}
	n, cerr := io.CopyN(w, f, size)
	if n < size {
		// The file shrank while we read it. The object header already
		// promised size bytes: pad, so the stored object is still valid (and
		// unreferenced), and skip the file this time.
		io.CopyN(w, zeroReader{}, size-n)
		ok = false
	} else {
		ok = true
	}
	if err := w.Close(); err != nil {
		return h, false, fmt.Errorf("gitstore: scan: write blob: %w", err)
	}
	if cerr != nil && !errors.Is(cerr, io.EOF) {
		return h, false, fmt.Errorf("gitstore: scan: read %q: %w", abs, cerr)
	}
	hw, isHasher := w.(hasher)
	if !isHasher {
		return h, false, errors.New("gitstore: scan: object writer has no hash")
	}
	return hw.Hash(), ok, nil
}

// unsettledLocked reports whether the changed regular file p (fi) was
// modified so recently, during a watcher scan, that it may still be being
// written; it is then recorded in s.unsettled. A modification time in the
// future (a clock set back, touch -d) never counts as recent.
func (s *Store) unsettledLocked(p string, fi fs.FileInfo) bool {
	if s.settle <= 0 || s.settleExempt[p] {
		return false
	}
	age := time.Since(fi.ModTime())
	if age < 0 || age >= s.settle {
		return false
	}
	if s.unsettled == nil {
		s.unsettled = map[string]bool{}
	}
	s.unsettled[p] = true
	return true
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func fileMode(fi fs.FileInfo) filemode.FileMode {
	if fi.Mode()&0o111 != 0 {
		return filemode.Executable
	}
	return filemode.Regular
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
