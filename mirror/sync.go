package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// maxRetryDelay caps the backoff between tries.
const maxRetryDelay = 30 * time.Second

// Sync makes the target hold a plain copy of the tree under dir: changed
// files are uploaded (each to a temporary name in its directory, then
// renamed over the final name), files gone from dir are deleted from the
// target with the directories they leave empty, and the manifest is
// rewritten last. progress, if not nil, is called from Sync's goroutine
// (see Progress); while it runs, uploads wait, so it must not block long.
//
// A broken connection is retried on a new one (Config.MaxAttempts,
// Config.RetryDelay); what was done stays done and what was not is redone by
// the next Sync. Errors: ErrClosed after Close; ctx's error (wrapped) when
// ctx ends or Close is called; *HostKeyChangedError, *CertificateError or a
// login error, at once; *FileError when the server refused some files (the
// others are mirrored); otherwise the last connection error once the tries
// run out.
func (m *Mirror) Sync(ctx context.Context, dir string, progress func(Progress)) (Result, error) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Result{}, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	m.active = cancel
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.active = nil
		m.mu.Unlock()
		cancel()
	}()
	if progress == nil {
		progress = func(Progress) {}
	}

	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return Result{}, fmt.Errorf("mirror: folder %q: %w", dir, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return Result{}, fmt.Errorf("mirror: folder %q is not a directory", dir)
	}
	cacheFile := m.cacheFile(root)
	local, err := scanLocal(ctx, root, loadCache(cacheFile, root))
	if err != nil {
		return Result{}, fmt.Errorf("mirror: scan %q: %w", dir, err)
	}
	// Saved whatever happens: it holds the hashes computed so far.
	defer func() {
		if err := saveCache(cacheFile, root, local); err != nil {
			m.log.Warn("mirror: cannot save the hash cache; the next sync hashes again", "err", err)
		}
	}()

	s := &session{m: m, ctx: ctx}
	defer s.close()
	return s.sync(local, progress)
}

// session is the state of one Sync: its connection (re-dialled after a
// break) and its result so far.
type session struct {
	m   *Mirror
	ctx context.Context
	r   remote // nil until dialled and after a break
	res Result
}

func (s *session) close() {
	if s.r != nil {
		if err := s.r.Close(); err != nil {
			s.m.log.Debug("mirror: close", "err", err)
		}
		s.r = nil
	}
}

// do runs fn on a live connection, dialling as needed, and tries again on a
// new connection after a non-permanent error, with backoff.
func (s *session) do(op string, fn func(r remote) error) error {
	delay := s.m.delay
	for attempt := 1; ; attempt++ {
		var err error
		if s.r == nil {
			s.r, err = s.m.dial(s.ctx)
		}
		if err == nil {
			if err = fn(s.r); err == nil {
				return nil
			}
		}
		if cerr := s.ctx.Err(); cerr != nil {
			s.close()
			if errors.Is(err, cerr) {
				return fmt.Errorf("mirror: %s: %w", op, err)
			}
			return fmt.Errorf("mirror: %s: %w", op, cerr)
		}
		if isPermanent(err) {
			return err
		}
		s.close()
		if attempt >= s.m.attempts {
			return fmt.Errorf("mirror: %s: gave up after %d tries (Config.MaxAttempts): %w", op, attempt, err)
		}
		s.m.log.Warn("mirror: connection broken; trying again", "op", op, "try", attempt, "wait", delay, "err", err)
		s.res.Retries++
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return fmt.Errorf("mirror: %s: %w", op, s.ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// plan is what one sync does.
type plan struct {
	man     *manifest       // the target's state, updated as work completes
	uploads []string        // sorted
	deletes []string        // sorted
	cleanup []string        // temp files a broken sync may have left
	rmdirs  []string        // deepest first
	dirs    map[string]bool // directories known to exist on the target
	local   map[string]localFile
}

func (s *session) sync(local map[string]localFile, progress func(Progress)) (Result, error) {
	var man *manifest
	err := s.do("read manifest", func(r remote) error {
		b, err := r.ReadFile(s.ctx, ManifestName, maxManifest)
		if err != nil {
			return err
		}
		if man, err = parseManifest(b); err != nil {
			s.m.log.Warn("mirror: manifest unusable; listing the target", "err", err)
		}
		return nil
	})
	if err != nil && (!isPermanent(err) || s.r == nil) {
		return s.res, err // a broken connection, or a refused login, key or certificate
	}
	if err != nil {
		s.m.log.Info("mirror: no manifest; listing the target", "err", err)
	}
	var p *plan
	if man != nil {
		// Hash only the files whose size matches the manifest: any other
		// is uploaded anyway, and hashed while it is sent.
		var qs []string
		for q, f := range local {
			if st, ok := man.Files[q]; ok && st.Size == f.Size && f.SHA256 == "" {
				qs = append(qs, q)
			}
		}
		if len(qs) > 0 {
			s.close() // an idle connection would time out while we hash
			if err := hashLocal(s.ctx, local, qs); err != nil {
				return s.res, err
			}
		}
		p = planFromManifest(man, local)
	} else {
		s.res.Listed = true
		if p, err = s.planFromListing(local); err != nil {
			return s.res, err
		}
	}
	s.res.Unchanged = len(local) - len(p.uploads)
	if !s.res.Listed && len(p.uploads) == 0 && len(p.deletes) == 0 && len(man.Pending) == 0 {
		return s.res, nil
	}
	var pr Progress
	pr.FilesTotal = len(p.uploads) + len(p.deletes)
	for _, u := range p.uploads {
		pr.BytesTotal += local[u].Size
	}
	progress(pr)

	// Say first what may change, so that a sync cut short leaves a
	// manifest that is true of every entry it lists.
	pending := map[string]bool{}
	for _, q := range append(append([]string(nil), p.uploads...), p.deletes...) {
		pending[q] = true
		delete(p.man.Files, q)
	}
	for _, q := range p.man.Pending {
		pending[q] = true
	}
	if err := s.writeManifest(p.man, pending); err != nil {
		return s.res, err
	}

	failed := map[string]error{}
	for _, q := range p.deletes {
		err := s.do("delete "+q, func(r remote) error { return r.Remove(s.ctx, q) })
		if isPermanent(err) {
			failed[q] = err
			continue
		}
		if err != nil {
			return s.res, err
		}
		delete(pending, q)
		s.res.Deleted++
		pr.FilesDone++
		pr.Path = q
		progress(pr)
	}
	for _, q := range p.cleanup {
		if err := s.do("remove temp file "+q, func(r remote) error { return r.Remove(s.ctx, q) }); err != nil && !isPermanent(err) {
			return s.res, err
		}
	}
	for _, d := range p.rmdirs {
		err := s.do("remove directory "+d, func(r remote) error { return r.Rmdir(s.ctx, d) })
		if err != nil && !isPermanent(err) {
			return s.res, err
		}
		if err != nil {
			s.m.log.Debug("mirror: directory not removed (not empty?)", "dir", d, "err", err)
		}
		delete(p.dirs, d)
	}
	if err := s.uploadAll(p, &pr, progress, failed, pending); err != nil {
		return s.res, err
	}
	if err := s.writeManifest(p.man, pending); err != nil {
		return s.res, err
	}
	if len(failed) > 0 {
		return s.res, &FileError{Failed: failed}
	}
	return s.res, nil
}

// planFromManifest diffs the local tree against the target's manifest.
func planFromManifest(man *manifest, local map[string]localFile) *plan {
	p := &plan{man: man, dirs: map[string]bool{".": true}, local: local}
	pending := map[string]bool{}
	for _, q := range man.Pending {
		pending[q] = true
	}
	for q, f := range local {
		if st, ok := man.Files[q]; !ok || pending[q] || st.Size != f.Size || st.SHA256 != f.SHA256 {
			p.uploads = append(p.uploads, q)
		}
	}
	remoteDirs := map[string]bool{}
	for q := range man.Files {
		addParents(p.dirs, q)
		if _, ok := local[q]; !ok {
			p.deletes = append(p.deletes, q)
			addParents(remoteDirs, q)
		}
	}
	for q := range pending {
		if _, ok := man.Files[q]; ok {
			continue
		}
		if _, ok := local[q]; !ok {
			p.deletes = append(p.deletes, q)
			addParents(remoteDirs, q)
		}
		p.cleanup = append(p.cleanup, tempName(q))
	}
	p.finish(remoteDirs)
	return p
}

// planFromListing lists the target and plans to upload every local file
// (the content of what is there is unknown) and delete everything else.
func (s *session) planFromListing(local map[string]localFile) (*plan, error) {
	p := &plan{man: &manifest{Files: map[string]FileState{}}, dirs: map[string]bool{".": true}, local: local}
	remoteDirs := map[string]bool{}
	err := s.do("list", func(r remote) error {
		clear(remoteDirs)
		p.deletes = p.deletes[:0]
		if err := r.Mkdir(s.ctx, "."); err != nil {
			return err
		}
		return r.List(s.ctx, func(q string, dir bool, _ int64) {
			switch {
			case dir:
				remoteDirs[q] = true
			case q == ManifestName:
			default:
				if _, ok := local[q]; !ok {
					p.deletes = append(p.deletes, q)
				}
			}
		})
	})
	if err != nil {
		return nil, err
	}
	for d := range remoteDirs {
		p.dirs[d] = true
	}
	for q := range local {
		p.uploads = append(p.uploads, q)
	}
	p.finish(remoteDirs)
	return p, nil
}

// finish sorts the lists and picks the directories to remove: those among
// candidates that no local file needs, deepest first.
func (p *plan) finish(candidates map[string]bool) {
	sort.Strings(p.uploads)
	sort.Strings(p.deletes)
	sort.Strings(p.cleanup)
	needed := map[string]bool{}
	for q := range p.local {
		addParents(needed, q)
	}
	for d := range candidates {
		if d != "." && !needed[d] {
			p.rmdirs = append(p.rmdirs, d)
		}
	}
	sort.Slice(p.rmdirs, func(i, j int) bool {
		di, dj := strings.Count(p.rmdirs[i], "/"), strings.Count(p.rmdirs[j], "/")
		if di != dj {
			return di > dj
		}
		return p.rmdirs[i] < p.rmdirs[j]
	})
}

// addParents adds every parent directory of the slash path q to set.
func addParents(set map[string]bool, q string) {
	for d := path.Dir(q); d != "." && !set[d]; d = path.Dir(d) {
		set[d] = true
	}
}

// writeManifest uploads the manifest with the given pending paths to a
// temporary name, then renames it over the old one.
func (s *session) writeManifest(man *manifest, pending map[string]bool) error {
	man.Version = manifestVersion
	man.Generator = "peersync mirror"
	man.Updated = time.Now().UTC().Truncate(time.Second)
	man.Pending = man.Pending[:0]
	for q := range pending {
		man.Pending = append(man.Pending, q)
	}
	b, err := encodeManifest(man)
	if err != nil {
		return err
	}
	tmp := tempName(ManifestName)
	return s.do("write manifest", func(r remote) error {
		if err := r.Put(s.ctx, tmp, strings.NewReader(string(b))); err != nil {
			return err
		}
		return r.Rename(s.ctx, tmp, ManifestName)
	})
}
