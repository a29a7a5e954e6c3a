package sync

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// A bundle job is one bundle this device produces for one peer and folder.
// Its producer (gitstore's WriteBundle) writes into a file in <Home>/tmp at
// its own pace, holding the folder's store only as long as it takes to
// write; every want stream that asks for it reads the file as it grows and
// sends each chunk as soon as it exists. So the first byte leaves as soon as
// it is produced, a slow or stalled receiver never holds the folder, and a
// peer that asks again (its connection broke, it gave up) is attached to
// the job it already had, at the offset it already holds, instead of
// starting a multi-minute walk from zero.
//
// Peers that ask for the same bundle (same folder, same since list: a first
// sync to several new devices at once) while it is being produced share
// its job: the bundle is walked and packed once, and every peer's stream
// reads the same file, each at its own pace (issue 12's fan-out). A peer
// that asks once the job is finished shares it too, as long as the job is
// kept and holds our current head (a device that comes online minutes
// after another gets the same file, not a second walk of the history).

// jobKeep is how long a job nobody reads is kept for a retry.
const jobKeep = 10 * time.Minute

// maxJobReaders bounds the streams of one peer reading one job at once: a
// retry may attach before the stream it replaces noticed that it is gone.
const maxJobReaders = 2

// errBusy answers a want while the job already has maxJobReaders readers.
var errBusy = errors.New("busy: this bundle is already being sent to you")

type jobKey struct {
	peer   crypto.DeviceID
	folder string
}

// bundleJob is one bundle being produced, or produced and kept for
// retries.
type bundleJob struct {
	id     string // 32 hex digits, random
	since  string // sinceKey of the request that started it
	f      *os.File
	cancel context.CancelFunc

	mu       gosync.Mutex // guards the fields below
	size     int64        // bytes produced so far
	finished bool
	err      error         // when finished: nil, gitstore.ErrNothingToSend, or why it failed
	sum      jobSum        // the SHA-256 a version 2 asker is sent (its own lock)
	head     gitstore.Hash // when finished without error: the bundle's head
	changed  chan struct{} // closed (and replaced) when size or finished change
	readers  int           // streams reading it, all peers
	users    int           // jobTable entries naming it (one per peer sharing it)
	evicted  bool          // users reached 0: the file goes with the last reader
	lastUse  time.Time
}

// jobUse is one peer's use of a job (several peers may share one job).
type jobUse struct {
	j       *bundleJob
	readers int // this peer's streams reading it
}

// state returns a snapshot of the job's progress and a channel closed at
// its next change.
func (j *bundleJob) state() (size int64, finished bool, err error, changed <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.size, j.finished, j.err, j.changed
}

// jobSum is the SHA-256 of a job's whole bundle, which only an asker
// before protocol version 3 is sent. A job started for such an asker
// hashes the bundle as it is produced; a job started for a version 3 asker
// does not, and a version 2 asker that joins it has the finished file read
// and hashed once, when its stream reaches the end (later ones reuse that
// sum).
type jobSum struct {
	h      hash.Hash   // hashing while producing (written by the producer only), or nil
	hashed func(int64) // told of the bytes hashed (tests), or nil
	mu     gosync.Mutex
	sum    []byte
}

// sha256 returns the SHA-256 of the job's size bytes (the job finished
// without error; the caller is one of its readers, so its file is open).
func (j *bundleJob) sha256(size int64) ([]byte, error) {
	j.sum.mu.Lock()
	defer j.sum.mu.Unlock()
	if j.sum.sum != nil {
		return j.sum.sum, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(j.f, 0, size)); err != nil {
		return nil, fmt.Errorf("sync: read bundle job: %w", err)
	}
	if j.sum.hashed != nil {
		j.sum.hashed(size)
	}
	j.sum.sum = h.Sum(nil)
	return j.sum.sum, nil
}

// produced records the end of the producer's hashing, if it hashed; it is
// called before the job is marked finished, so no reader hashes it again.
func (j *bundleJob) produced() {
	if j.sum.h == nil {
		return
	}
	j.mu.Lock()
	size := j.size
	j.mu.Unlock()
	j.sum.mu.Lock()
	j.sum.sum = j.sum.h.Sum(nil)
	j.sum.mu.Unlock()
	if j.sum.hashed != nil {
		j.sum.hashed(size)
	}
}

func (j *bundleJob) notifyLocked() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// releaseLocked closes and removes the file once nobody needs it.
func (j *bundleJob) releaseLocked() {
	if j.evicted && j.finished && j.readers == 0 && j.f != nil {
		name := j.f.Name()
		_ = j.f.Close()
		_ = os.Remove(name)
		j.f = nil
	}
}

// jobWriter is what the producer writes to: the file, the hash if the job
// keeps one (jobSum), and the readers' wake-up.
type jobWriter struct {
	j *bundleJob
	h hash.Hash // nil: not hashed
}

func (w *jobWriter) Write(p []byte) (int, error) {
	n, err := w.j.f.Write(p)
	if w.h != nil {
		w.h.Write(p[:n])
	}
	if n > 0 {
		w.j.mu.Lock()
		w.j.size += int64(n)
		w.j.notifyLocked()
		w.j.mu.Unlock()
	}
	return n, err
}

// jobTable holds the bundle jobs of a running engine: at most one per peer
// and folder, a job shared by the peers that asked for the same bundle
// while it was produced. Close cancels every producer, waits for them and
// removes the files.
type jobTable struct {
	dir string
	now func() time.Time
	// hashed, if set (tests), is told of every SHA-256 of a whole bundle
	// computed for a trailer, with the bytes hashed.
	hashed func(int64)

	ctx    context.Context // producers' lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     gosync.WaitGroup // producers

	mu     gosync.Mutex // guards jobs and closed (taken before a job's mu)
	jobs   map[jobKey]*jobUse
	closed bool
}

func newJobTable(dir string, now func() time.Time) *jobTable {
	ctx, cancel := context.WithCancel(context.Background())
	return &jobTable{dir: dir, now: now, ctx: ctx, cancel: cancel, jobs: map[jobKey]*jobUse{}}
}

// sinceKey is a canonical form of a want's since list.
func sinceKey(since []gitstore.Hash) string {
	s := make([]string, len(since))
	for i, h := range since {
		s[i] = h.String()
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ",")
}

// produceFunc writes the bundle of a job to w and returns its head.
type produceFunc func(ctx context.Context, w io.Writer) (gitstore.Hash, error)

// attach returns the job for key and the offset a new reader starts at,
// registering the reader (detach it when done). It reuses the job that
// res names if it is still here and holds that offset, or the job for the
// same since list (from 0); otherwise it joins another peer's job for the
// same folder and since list that is still being produced, or that is
// finished with head (our current head; zero: none is joined finished),
// from 0; or it starts a new job with produce, hashing what it produces
// if hash (the asker wants the SHA-256: jobSum). The key's previous job is
// dropped.
func (t *jobTable) attach(key jobKey, since string, head gitstore.Hash, res *resume, hash bool, produce produceFunc) (*bundleJob, int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, 0, ErrClosed
	}
	if u := t.jobs[key]; u != nil {
		j := u.j
		j.mu.Lock()
		reusable := !j.finished || j.err == nil
		off := int64(-1)
		switch {
		case !reusable:
		case res != nil && res.Bundle == j.id && res.Offset <= j.size:
			off = res.Offset
		case j.since == since:
			off = 0
		}
		if off >= 0 {
			if u.readers >= maxJobReaders {
				j.mu.Unlock()
				return nil, 0, errBusy
			}
			u.readers++
			j.readers++
			j.lastUse = t.now()
			j.mu.Unlock()
			return j, off, nil
		}
		j.mu.Unlock()
		t.dropLocked(key)
	}
	for k, u := range t.jobs {
		if k.folder != key.folder || u.j.since != since {
			continue
		}
		j := u.j
		j.mu.Lock()
		share := !j.finished || j.err == nil && !head.IsZero() && j.head == head && j.f != nil
		if share {
			j.users++
			j.readers++
			j.lastUse = t.now()
		}
		j.mu.Unlock()
		if share {
			t.jobs[key] = &jobUse{j: j, readers: 1}
			return j, 0, nil
		}
	}
	f, err := os.CreateTemp(t.dir, "bundle-out-*")
	if err != nil {
		return nil, 0, fmt.Errorf("sync: %w", err)
	}
	var idb [16]byte
	_, _ = rand.Read(idb[:])
	ctx, cancel := context.WithCancel(t.ctx)
	j := &bundleJob{id: hex.EncodeToString(idb[:]), since: since, f: f, cancel: cancel,
		changed: make(chan struct{}), readers: 1, users: 1, lastUse: t.now()}
	j.sum.hashed = t.hashed
	if hash {
		j.sum.h = sha256.New()
	}
	t.jobs[key] = &jobUse{j: j, readers: 1}
	t.wg.Go(func() {
		defer cancel()
		w := &jobWriter{j: j, h: j.sum.h}
		head, err := produce(ctx, w)
		if err == nil {
			j.produced()
		}
		j.mu.Lock()
		j.finished, j.err = true, err
		if err == nil {
			j.head = head
		}
		j.notifyLocked()
		j.releaseLocked()
		j.mu.Unlock()
		if err != nil {
			// Nothing to keep: a failed or empty job is not resumed.
			t.mu.Lock()
			for k, u := range t.jobs {
				if u.j == j {
					t.dropLocked(k)
				}
			}
			t.mu.Unlock()
		}
	})
	return j, 0, nil
}

// detach ends a reader's use of j, the job of key.
func (t *jobTable) detach(key jobKey, j *bundleJob) {
	t.mu.Lock()
	if u := t.jobs[key]; u != nil && u.j == j {
		u.readers--
	}
	t.mu.Unlock()
	j.mu.Lock()
	j.readers--
	j.lastUse = t.now()
	j.releaseLocked()
	j.mu.Unlock()
}

// dropLocked ends key's use of its job. A job no peer uses any more is
// evicted: its producer is cancelled and its file goes once its readers
// are done. t.mu must be held.
func (t *jobTable) dropLocked(key jobKey) {
	u := t.jobs[key]
	if u == nil {
		return
	}
	delete(t.jobs, key)
	j := u.j
	j.mu.Lock()
	j.users--
	if j.users == 0 {
		j.evicted = true
		j.cancel()
	}
	j.releaseLocked()
	j.mu.Unlock()
}

// sweep evicts the jobs nobody has read for jobKeep, and the jobs of peers
// or folders for which keep is false.
func (t *jobTable) sweep(keep func(jobKey) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for key, u := range t.jobs {
		u.j.mu.Lock()
		stale := u.readers == 0 && now.Sub(u.j.lastUse) > jobKeep
		u.j.mu.Unlock()
		if stale || !keep(key) {
			t.dropLocked(key)
		}
	}
}

// Close evicts every job, waits for the producers and removes the files
// (readers still attached remove theirs when they detach).
func (t *jobTable) Close() {
	t.mu.Lock()
	t.closed = true
	for key := range t.jobs {
		t.dropLocked(key)
	}
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
}

// jobDir is where bundle jobs and incoming spools live.
func (e *Engine) jobDir() (string, error) {
	dir := filepath.Join(e.cfg.Home, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("sync: %w", err)
	}
	return dir, nil
}

// sweepJobs drops bundle jobs nobody read for jobKeep, and those of peers
// that no longer share their folder.
func (e *Engine) sweepJobs() {
	e.mu.Lock()
	jobs := e.run.jobTable()
	conf := e.conf
	e.mu.Unlock()
	if jobs != nil {
		jobs.sweep(func(k jobKey) bool { return conf.shares(k.peer, k.folder) })
	}
	e.schedTick() // every second: the sync windows open and close on time
}
