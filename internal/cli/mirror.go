package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/internal/atomicfile"
	"github.com/peersync/peersync/mirror"
	"github.com/peersync/peersync/sync"
)

// Mirrors: `folder mirror add|list|remove` keep the configured FTP, FTPS and
// SFTP mirror targets of folders in <home>/mirrors.json (mode 0600: a URL
// may hold a password); the daemon (`run`) mirrors each folder to its
// targets once at start, after each change of the folder (a scan's commits,
// an applied bundle) and, after a failure, again with a growing delay. It
// publishes each mirror's state in <home>/mirrors-status.json, which
// `folder mirror list` shows. The daemon re-reads mirrors.json every few
// seconds, so mirrors added or removed while it runs take effect without a
// restart.

// mirrorConf is one configured mirror.
type mirrorConf struct {
	ID              string `json:"id"`
	Folder          string `json:"folder"`
	URL             string `json:"url"`
	PasswordFile    string `json:"password_file,omitempty"`
	KeyFile         string `json:"key_file,omitempty"`
	CertFingerprint string `json:"cert_fingerprint,omitempty"`
	Connections     int    `json:"connections,omitempty"`
}

type mirrorsFile struct {
	Mirrors []mirrorConf `json:"mirrors"`
}

// mirrorState is what the daemon publishes about one mirror.
type mirrorState struct {
	// State is "syncing", "ok", "error" (retried at NextTry) or "waiting"
	// (the folder is not ready).
	State     string           `json:"state"`
	LastOK    time.Time        `json:"last_ok,omitzero"`
	Result    *mirror.Result   `json:"result,omitempty"`
	Err       string           `json:"error,omitempty"`
	NextTry   time.Time        `json:"next_try,omitzero"`
	Progress  *mirror.Progress `json:"progress,omitempty"`
	Updated   time.Time        `json:"updated"`
	Target    string           `json:"target"` // redacted URL
	FolderDir string           `json:"folder_dir,omitempty"`
}

func mirrorsPath(home string) string        { return filepath.Join(home, "mirrors.json") }
func mirrorStatusPath(home string) string   { return filepath.Join(home, "mirrors-status.json") }
func mirrorStateDir(home, id string) string { return filepath.Join(home, "mirrors", id) }

func loadMirrors(home string) ([]mirrorConf, error) {
	b, err := os.ReadFile(mirrorsPath(home))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f mirrorsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", mirrorsPath(home), err)
	}
	return f.Mirrors, nil
}

func saveMirrors(home string, list []mirrorConf) error {
	b, err := json.MarshalIndent(mirrorsFile{Mirrors: list}, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(mirrorsPath(home), append(b, '\n'), 0o600)
}

const mirrorUsage = "usage: folder mirror add --folder ID [--password-file F] [--key-file F] [--cert-fingerprint SHA256:HEX] [--connections N] URL | folder mirror list | folder mirror remove MIRRORID"

// mirror runs `folder mirror add|list|remove`.
func (a *app) mirror(args []string) error {
	if len(args) == 0 {
		return UsageError{mirrorUsage}
	}
	switch args[0] {
	case "add":
		return a.mirrorAdd(args[1:])
	case "list":
		if len(args) != 1 {
			return UsageError{mirrorUsage}
		}
		return a.mirrorList()
	case "remove":
		if len(args) != 2 {
			return UsageError{mirrorUsage}
		}
		return a.mirrorRemove(args[1])
	}
	return UsageError{mirrorUsage}
}

func (a *app) mirrorAdd(args []string) error {
	fs := flag.NewFlagSet("folder mirror add", flag.ContinueOnError)
	var c mirrorConf
	fs.StringVar(&c.Folder, "folder", "", "the folder ID to mirror")
	fs.StringVar(&c.PasswordFile, "password-file", "", "file whose first line is the password")
	fs.StringVar(&c.KeyFile, "key-file", "", "unencrypted SSH private key (sftp://)")
	fs.StringVar(&c.CertFingerprint, "cert-fingerprint", "", "pin the FTPS server's certificate: SHA256:HEX")
	fs.IntVar(&c.Connections, "connections", 0, "parallel uploads (default 4)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if c.Folder == "" || len(pos) != 1 {
		return UsageError{mirrorUsage}
	}
	c.URL = pos[0]
	for _, p := range []*string{&c.PasswordFile, &c.KeyFile} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	t, err := mirror.ParseTarget(c.URL)
	if err != nil {
		return err
	}
	st, err := a.readStatus()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(st.Folders, func(f sync.FolderStatus) bool { return f.ID == c.Folder }) {
		return fmt.Errorf("no folder %q here (see `%s status`)", c.Folder, a.prog.Name)
	}
	list, err := loadMirrors(a.home)
	if err != nil {
		return err
	}
	for n := 1; ; n++ {
		c.ID = fmt.Sprintf("m%d", n)
		if !slices.ContainsFunc(list, func(m mirrorConf) bool { return m.ID == c.ID }) {
			break
		}
	}
	// New checks the rest (files readable, fingerprint well-formed) without
	// connecting.
	m, err := mirror.New(c.config(a.home, nil))
	if err != nil {
		return err
	}
	m.Close()
	list = append(list, c)
	if err := saveMirrors(a.home, list); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "mirror %s: folder %s -> %s\n", c.ID, c.Folder, t)
	if t.HasPassword {
		fmt.Fprintf(a.stderr, "note: the URL's password is stored in %s (mode 0600); --password-file keeps it elsewhere\n", mirrorsPath(a.home))
	}
	return nil
}

func (a *app) mirrorRemove(id string) error {
	list, err := loadMirrors(a.home)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(m mirrorConf) bool { return m.ID == id })
	if i < 0 {
		return fmt.Errorf("no mirror %q (see `%s folder mirror list`)", id, a.prog.Name)
	}
	list = slices.Delete(list, i, i+1)
	if err := saveMirrors(a.home, list); err != nil {
		return err
	}
	if err := os.RemoveAll(mirrorStateDir(a.home, id)); err != nil {
		fmt.Fprintf(a.stderr, "warning: %v\n", err)
	}
	fmt.Fprintf(a.stdout, "mirror %s removed (the copy on the target stays)\n", id)
	return nil
}

func (a *app) mirrorList() error {
	list, err := loadMirrors(a.home)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintf(a.stderr, "no mirrors: `%s folder mirror add --folder ID URL`\n", a.prog.Name)
		return nil
	}
	states := readMirrorStates(a.home)
	if _, running := readRuntime(a.home); !running {
		fmt.Fprintf(a.stderr, "(the daemon is not running: mirrors sync while `%s run` runs)\n", a.prog.Name)
	}
	for _, c := range list {
		target := c.URL
		if t, err := mirror.ParseTarget(c.URL); err == nil {
			target = t.String()
		}
		fmt.Fprintf(a.stdout, "%s  %s  %s  %s\n", c.ID, c.Folder, target, states[c.ID].describe())
	}
	return nil
}

// readStatus returns the status from the daemon's API when one runs, else
// from the home opened shared.
func (a *app) readStatus() (sync.Status, error) {
	c, err := a.connect(context.Background(), "status", readAccess)
	if err != nil {
		return sync.Status{}, err
	}
	defer c.close()
	return c.Status(context.Background())
}

func readMirrorStates(home string) map[string]mirrorState {
	out := map[string]mirrorState{}
	if b, err := os.ReadFile(mirrorStatusPath(home)); err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

// describe renders a mirror's state for `folder mirror list`.
func (s mirrorState) describe() string {
	const when = "2006-01-02 15:04:05"
	var b strings.Builder
	switch s.State {
	case "":
		return "never synced"
	case "syncing":
		b.WriteString("syncing")
		if p := s.Progress; p != nil {
			fmt.Fprintf(&b, " %d/%d files, %d/%d bytes", p.FilesDone, p.FilesTotal, p.BytesDone, p.BytesTotal)
		}
	case "ok":
		b.WriteString("ok")
	default:
		b.WriteString(s.State)
	}
	if !s.LastOK.IsZero() {
		fmt.Fprintf(&b, "  last synced %s", s.LastOK.Local().Format(when))
		if r := s.Result; r != nil {
			fmt.Fprintf(&b, " (%d uploaded, %d deleted, %d unchanged)", r.Uploaded, r.Deleted, r.Unchanged)
		}
	}
	if s.Err != "" {
		fmt.Fprintf(&b, "  error: %s", s.Err)
		if !s.NextTry.IsZero() {
			fmt.Fprintf(&b, "; next try %s", s.NextTry.Local().Format(when))
		}
	}
	return b.String()
}

// config is the mirror package's configuration of c.
func (c mirrorConf) config(home string, log *slog.Logger) mirror.Config {
	return mirror.Config{URL: c.URL, PasswordFile: c.PasswordFile, KeyFile: c.KeyFile, CertFingerprint: c.CertFingerprint,
		Connections: c.Connections, StateDir: mirrorStateDir(home, c.ID), Logger: log}
}

// mirrorRunner runs the configured mirrors inside the daemon.
type mirrorRunner struct {
	e    *sync.Engine
	home string
	log  *slog.Logger

	mu      gosync.Mutex
	workers map[string]*mirrorWorker // by mirror ID
	wg      gosync.WaitGroup
	pubMu   gosync.Mutex // one writer of mirrors-status.json at a time
}

// mirrorWorker syncs one mirror, one sync at a time.
type mirrorWorker struct {
	conf   mirrorConf
	m      *mirror.Mirror
	kick   chan struct{} // cap 1: a change is pending
	cancel context.CancelFunc
	state  mirrorState // guarded by the runner's mu
}

const (
	mirrorConfigEvery = 2 * time.Second // how often mirrors.json is checked for changes
	mirrorRetryFirst  = 10 * time.Second
	mirrorRetryMax    = 10 * time.Minute
)

// runMirrors starts the mirrors of the home's mirrors.json. It returns the
// observer to feed the engine's events into, and the function that stops
// every mirror (a sync in flight is cancelled: the mirror package loses
// nothing) and waits for them.
func (a *app) runMirrors(ctx context.Context, e *sync.Engine, log *slog.Logger) (observe func(sync.Event), stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	r := &mirrorRunner{e: e, home: a.home, log: log, workers: map[string]*mirrorWorker{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.watchConfig(ctx)
	}()
	stop = func() {
		cancel()
		r.wg.Wait()
	}
	return r.observe, stop
}

// observe kicks the mirrors of a folder that changed.
func (r *mirrorRunner) observe(ev sync.Event) {
	switch ev.Kind {
	case sync.EventLocalChanges, sync.EventRemoteApplied, sync.EventFolderResumed:
	default:
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.workers {
		if w.conf.Folder == ev.Folder {
			w.poke()
		}
	}
}

func (w *mirrorWorker) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// watchConfig applies mirrors.json (at start and whenever it changes) until
// ctx ends, then stops the workers.
func (r *mirrorRunner) watchConfig(ctx context.Context) {
	var last time.Time
	var lastSize int64 = -1
	t := time.NewTicker(mirrorConfigEvery)
	defer t.Stop()
	for {
		fi, err := os.Stat(mirrorsPath(r.home))
		switch {
		case errors.Is(err, os.ErrNotExist):
			if lastSize != 0 {
				r.apply(ctx, nil)
				last, lastSize = time.Time{}, 0
			}
		case err != nil:
			r.log.Warn("mirrors", "err", err)
		case !fi.ModTime().Equal(last) || fi.Size() != lastSize:
			list, err := loadMirrors(r.home)
			if err != nil {
				r.log.Error("mirrors: config not applied", "err", err)
			} else {
				r.apply(ctx, list)
			}
			last, lastSize = fi.ModTime(), fi.Size()
		}
		select {
		case <-ctx.Done():
			r.apply(ctx, nil)
			return
		case <-t.C:
		}
	}
}

// apply starts the workers of new mirrors and stops those of removed (or
// changed) ones.
func (r *mirrorRunner) apply(ctx context.Context, list []mirrorConf) {
	want := map[string]mirrorConf{}
	for _, c := range list {
		want[c.ID] = c
	}
	r.mu.Lock()
	var stopping []*mirrorWorker
	for id, w := range r.workers {
		if c, ok := want[id]; !ok || c != w.conf {
			stopping = append(stopping, w)
			delete(r.workers, id)
		}
	}
	r.mu.Unlock()
	for _, w := range stopping {
		w.cancel()
		_ = w.m.Close() // cancels a running Sync
	}
	for _, c := range list {
		r.mu.Lock()
		_, running := r.workers[c.ID]
		r.mu.Unlock()
		if running || ctx.Err() != nil {
			continue
		}
		m, err := mirror.New(c.config(r.home, r.log.With("mirror", c.ID)))
		if err != nil {
			r.log.Error("mirror not started", "mirror", c.ID, "err", err)
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &mirrorWorker{conf: c, m: m, kick: make(chan struct{}, 1), cancel: cancel,
			state: mirrorState{Target: m.String()}}
		w.poke() // a first sync at start
		r.mu.Lock()
		r.workers[c.ID] = w
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer m.Close()
			r.work(wctx, w)
		}()
	}
	r.publish()
}

// work syncs w's mirror whenever it is kicked, retrying failures after
// 10 s, doubling up to 10 min.
func (r *mirrorRunner) work(ctx context.Context, w *mirrorWorker) {
	delay := mirrorRetryFirst
	retry := time.NewTimer(0)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-retry.C:
		}
		dir, err := r.folderDir(w.conf.Folder)
		if err != nil {
			r.setState(w, func(s *mirrorState) { s.State, s.Err, s.NextTry = "waiting", err.Error(), time.Time{} })
			continue // a change of the folder (resumed) kicks it again
		}
		r.setState(w, func(s *mirrorState) { s.State, s.Progress, s.FolderDir = "syncing", nil, dir })
		var lastPub time.Time
		res, err := w.m.Sync(ctx, dir, func(p mirror.Progress) {
			if time.Since(lastPub) < time.Second {
				return
			}
			lastPub = time.Now()
			r.setState(w, func(s *mirrorState) { s.Progress = &p })
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			next := time.Now().Add(delay)
			r.log.Warn("mirror sync failed", "mirror", w.conf.ID, "target", w.m.String(), "err", err, "retry_in", delay)
			r.setState(w, func(s *mirrorState) { s.State, s.Err, s.NextTry, s.Progress = "error", err.Error(), next, nil })
			retry.Reset(delay)
			delay = min(delay*2, mirrorRetryMax)
			continue
		}
		delay = mirrorRetryFirst
		retry.Stop()
		r.log.Info("mirrored", "mirror", w.conf.ID, "folder", w.conf.Folder, "uploaded", res.Uploaded, "deleted", res.Deleted, "bytes", res.BytesUploaded)
		r.setState(w, func(s *mirrorState) {
			s.State, s.Err, s.NextTry, s.Progress, s.LastOK, s.Result = "ok", "", time.Time{}, nil, time.Now(), &res
		})
	}
}

// folderDir returns the folder's path if the folder is shared and syncing.
func (r *mirrorRunner) folderDir(id string) (string, error) {
	for _, f := range r.e.Status().Folders {
		if f.ID != id {
			continue
		}
		if f.Stopped != "" {
			return "", fmt.Errorf("folder %s is stopped: %s", id, f.Stopped)
		}
		return f.Path, nil
	}
	return "", fmt.Errorf("no folder %q", id)
}

func (r *mirrorRunner) setState(w *mirrorWorker, f func(*mirrorState)) {
	r.mu.Lock()
	f(&w.state)
	w.state.Updated = time.Now()
	r.mu.Unlock()
	r.publish()
}

// publish writes every mirror's state to mirrors-status.json.
func (r *mirrorRunner) publish() {
	r.mu.Lock()
	out := make(map[string]mirrorState, len(r.workers))
	for id, w := range r.workers {
		out[id] = w.state
	}
	r.mu.Unlock()
	b, err := json.MarshalIndent(out, "", " ")
	if err == nil {
		r.pubMu.Lock()
		writeEphemeral(mirrorStatusPath(r.home), b)
		r.pubMu.Unlock()
	}
}
