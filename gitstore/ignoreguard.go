package gitstore

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreRulesError is returned by [Store.ApplyBundle] and
// [Store.IntegratePeer] when the .peersyncignore files that a peer changed
// would newly exclude every tracked file (at least one), or more than
// Config.MaxDeleteShare and Config.MaxDeleteCount of them: local scans
// would then silently stop committing those files on this device (their
// edits are not committed, nor their deletion). It wraps [ErrMassDelete],
// so it is handled as that guard is: nothing was checked out and main did
// not move (the bundle is stored and refs/peers/<peer>/main set), the sync
// engine pauses the folder and asks the user, and after
// [Store.AllowMassDeleteOnce] an IntegratePeer (or the same bundle again)
// goes through. Config.AllowMassDelete turns this guard off too.
type IgnoreRulesError struct {
	Peer     string   // the peer whose bundle changed the rules ("" if unknown)
	Files    []string // the .peersyncignore files it added, changed or deleted, sorted
	Rules    string   // the new content of the first of them (at most 200 bytes)
	Excluded int      // tracked files the new rules exclude that the old ones did not
	Total    int      // tracked files after the bundle (ignore files not counted)
}

// Error describes the refused rules.
func (e *IgnoreRulesError) Error() string {
	return fmt.Sprintf("gitstore: ignore rules from peer %q would stop syncing %d of %d tracked files (%s now reads %q); refused until the user confirms with AllowMassDeleteOnce",
		e.Peer, e.Excluded, e.Total, strings.Join(e.Files, ", "), e.Rules)
}

// Unwrap returns [ErrMassDelete].
func (e *IgnoreRulesError) Unwrap() error { return ErrMassDelete }

// ignoreFilesChanged returns, sorted, the .peersyncignore files that differ
// between old and new.
func ignoreFilesChanged(old, new map[string]fileEntry) []string {
	var out []string
	for p, e := range new {
		if path.Base(p) == IgnoreFileName && old[p] != e {
			out = append(out, p)
		}
	}
	for p := range old {
		if _, ok := new[p]; !ok && path.Base(p) == IgnoreFileName {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// checkIgnoreRulesLocked applies the ignore-rules guard to a checkout from
// old to new whose .peersyncignore files changed (changed, not empty), and
// logs the change naming the peer and the new rules. permitted says the
// checkout started with AllowMassDeleteOnce's permission (which the
// mass-delete guard may have used up already: one confirmation covers the
// whole checkout).
func (s *Store) checkIgnoreRulesLocked(old, new map[string]fileEntry, changed []string, permitted bool) error {
	peer := s.fst.disk.applyPeer
	rules := ""
	if e, ok := new[changed[0]]; ok {
		rules = string(s.ignoreBlobLocked(e.hash))
		if len(rules) > 200 {
			rules = rules[:200]
		}
	}
	s.opts.log.Warn("gitstore: ignore rules changed by a peer", "peer", peer, "files", changed, "rules", rules)
	if s.opts.allowMassDelete {
		return nil
	}
	oldRules, newRules := s.treeIgnoreLocked(old), s.treeIgnoreLocked(new)
	// The ignore files themselves do not count: "*" and "!.peersyncignore"
	// stop everything else as surely as "*" alone.
	excluded, total := 0, 0
	for p := range new {
		if path.Base(p) == IgnoreFileName {
			continue
		}
		total++
		if newRules.covers(p) && !oldRules.covers(p) {
			excluded++
		}
	}
	if excluded == 0 || excluded < total && !s.tooManyDeletes(excluded, total) {
		return nil
	}
	if permitted {
		s.guard.massDeleteOnce = false
		s.opts.log.Warn("gitstore: ignore rules from a peer confirmed", "peer", peer, "excluded", excluded, "total", total)
		return nil
	}
	err := &IgnoreRulesError{Peer: peer, Files: changed, Rules: rules, Excluded: excluded, Total: total}
	s.opts.log.Warn("gitstore: ignore rules from a peer refused", "err", err)
	return err
}

// treeIgnoreLocked returns the ignore rules of the flat tree files, as a
// scan of a folder holding exactly those files would read them.
func (s *Store) treeIgnoreLocked(files map[string]fileEntry) ignoreScope {
	var dirs []string
	own := map[string][]gitignore.Pattern{}
	for p, e := range files {
		if path.Base(p) != IgnoreFileName {
			continue
		}
		d := parentDir(p)
		dirs = append(dirs, d)
		own[d] = parseIgnore(s.ignoreBlobLocked(e.hash), d)
	}
	sc := ignoreScope{dirs: map[string][]gitignore.Pattern{}}
	sort.Strings(dirs) // parents first
	for _, d := range dirs {
		var inherited []gitignore.Pattern
		for p := d; p != ""; {
			p = parentDir(p)
			if ps, ok := sc.dirs[p]; ok {
				inherited = ps
				break
			}
		}
		sc.dirs[d] = append(inherited[:len(inherited):len(inherited)], own[d]...)
	}
	return sc
}

// ignoreBlobLocked returns the content of an ignore file's blob (at most
// 1 MiB; nil if unreadable).
func (s *Store) ignoreBlobLocked(h plumbing.Hash) []byte {
	o, err := s.st.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil
	}
	rc, err := o.Reader()
	if err != nil {
		return nil
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, maxIgnoreFile))
	return b
}
