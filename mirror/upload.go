package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"sync"
)

// uploadEvent is what an upload worker tells the Sync goroutine: progress
// within a file (done false), the end of a file, or its own exit.
type uploadEvent struct {
	q       string
	sent    int64     // bytes of q read so far (progress)
	done    bool      // q is finished: see st, gone, err
	st      FileState // what was sent, when done without error
	gone    bool      // q vanished locally: it stays pending
	err     error
	exited  bool // the worker ended; retries holds its count
	retries int
}

// uploadAll creates the missing directories, then uploads p.uploads over
// up to Config.Connections connections at once. The Sync goroutine alone
// touches the plan, the result and the progress callback; workers only
// send events. It returns a connection error that ran out of tries (after
// every worker has stopped); refused files go to failed.
func (s *session) uploadAll(p *plan, pr *Progress, progress func(Progress), failed map[string]error, pending map[string]bool) error {
	if len(p.uploads) == 0 {
		return nil
	}
	if err := s.createDirs(p); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	q := &jobQueue{}
	for _, u := range p.uploads {
		q.items = append(q.items, job{u, p.local[u]}) // workers never read p.local
	}
	n := min(s.m.conns, len(p.uploads))
	events := make(chan uploadEvent)
	workers := make([]*session, n)
	for i := range workers {
		workers[i] = &session{m: s.m, ctx: ctx}
	}
	workers[0].r, s.r = s.r, nil // the first worker reuses our connection
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work(i, q, events)
		}()
	}
	done := int64(0) // bytes of finished files
	inflight := map[string]int64{}
	var fatal error
	for alive := n; alive > 0; {
		ev := <-events
		switch {
		case ev.exited:
			alive--
			s.res.Retries += ev.retries
			continue
		case !ev.done:
			inflight[ev.q] = ev.sent
		default:
			delete(inflight, ev.q)
			switch {
			case ev.err != nil && isPermanent(ev.err):
				failed[ev.q] = ev.err
			case ev.err != nil:
				if fatal == nil {
					fatal = ev.err
					cancel()
				}
				continue
			case !ev.gone:
				p.man.Files[ev.q] = ev.st
				if lf := p.local[ev.q]; lf.Size == ev.st.Size && lf.MTime.Equal(ev.st.MTime) {
					lf.SHA256 = ev.st.SHA256 // for the local cache
					p.local[ev.q] = lf
				}
				delete(pending, ev.q)
				s.res.Uploaded++
				s.res.BytesUploaded += ev.st.Size
				pr.FilesDone++
			}
			done += p.local[ev.q].Size
		}
		if fatal != nil {
			continue
		}
		pr.BytesDone = done
		for _, b := range inflight {
			pr.BytesDone += b
		}
		pr.Path = ev.q
		progress(*pr)
	}
	wg.Wait()
	s.r, workers[0].r = workers[0].r, nil
	if fatal == nil && s.ctx.Err() != nil {
		fatal = fmt.Errorf("mirror: upload: %w", s.ctx.Err())
	}
	return fatal
}

// createDirs creates the parents of the uploads that the target lacks,
// parents first.
func (s *session) createDirs(p *plan) error {
	need := map[string]bool{}
	for _, q := range p.uploads {
		for d := path.Dir(q); d != "." && !p.dirs[d]; d = path.Dir(d) {
			need[d] = true
		}
	}
	dirs := make([]string, 0, len(need))
	for d := range need {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs) // "a" before "a/b"
	for _, d := range dirs {
		if err := s.do("create directory "+d, func(r remote) error { return r.Mkdir(s.ctx, d) }); err != nil {
			return err
		}
		p.dirs[d] = true
	}
	return nil
}

// job is one file to upload.
type job struct {
	q  string
	lf localFile
}

// jobQueue hands out the files to upload.
type jobQueue struct {
	mu    sync.Mutex // guards items
	items []job
}

func (q *jobQueue) next() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return job{}, false
	}
	p := q.items[0]
	q.items = q.items[1:]
	return p, true
}

// work uploads paths from q until it is empty or the context ends. Worker
// 0 starts with the Sync's connection; the others dial first and, if the
// server refuses one more connection (hosts often cap them per address),
// leave the work to the rest.
func (s *session) work(id int, q *jobQueue, events chan<- uploadEvent) {
	defer func() {
		if id > 0 {
			// Only the first worker's connection goes back to the Sync
			// (a host capping connections may not yet count a closed
			// one as gone, so the Sync keeps one rather than redial).
			s.close()
		}
		events <- uploadEvent{exited: true, retries: s.res.Retries}
	}()
	if s.r == nil {
		r, err := s.m.dial(s.ctx)
		if err != nil {
			s.m.log.Info("mirror: no extra connection; continuing with fewer", "connection", id+1, "err", err)
			return
		}
		s.r = r
	}
	for s.ctx.Err() == nil {
		j, ok := q.next()
		if !ok {
			return
		}
		qp := j.q
		st, gone, err := s.uploadFile(qp, j.lf, func(n int64) {
			events <- uploadEvent{q: qp, sent: n}
		})
		events <- uploadEvent{q: qp, done: true, st: st, gone: gone, err: err}
	}
}

// uploadFile sends one file to its temporary name, then renames it over
// the final name. It returns what was sent (hashed while sending), or gone
// when the file vanished locally since the scan.
func (s *session) uploadFile(q string, lf localFile, report func(sent int64)) (sent FileState, gone bool, err error) {
	tmp := tempName(q)
	err = s.do("upload "+q, func(r remote) error {
		report(0)
		f, err := openNoFollow(lf.abs)
		if errors.Is(err, fs.ErrNotExist) {
			gone = true
			return nil
		}
		if err != nil {
			return permanent(fmt.Errorf("mirror: read %q: %w", lf.abs, err))
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return permanent(err)
		}
		cr := &countingReader{r: f, size: fi.Size(), h: sha256.New(), report: report}
		var src io.Reader = cr
		if s.m.testHookUpload != nil {
			src = sizedReader{s.m.testHookUpload(q, cr), cr.size}
		}
		if err := r.Put(s.ctx, tmp, src); err != nil {
			return err
		}
		// If the file changed while we read it, what we sent is still
		// one consistent read: record that.
		sent = FileState{Size: cr.n, MTime: fi.ModTime().UTC(), SHA256: hex.EncodeToString(cr.h.Sum(nil))}
		return r.Rename(s.ctx, tmp, q)
	})
	return sent, gone, err
}

// openNoFollow opens a regular file that must not be a symlink.
func openNoFollow(name string) (*os.File, error) {
	before, err := os.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, fmt.Errorf("%q is no longer a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	after, err := f.Stat()
	if err != nil || !os.SameFile(before, after) {
		_ = f.Close()
		return nil, fmt.Errorf("%q changed while being opened", name)
	}
	return f, nil
}

// countingReader hashes and counts what is read, and reports progress about
// every MiB. Size lets pkg/sftp send with concurrent writes.
type countingReader struct {
	r      io.Reader
	size   int64
	n      int64
	last   int64
	h      hash.Hash
	report func(n int64)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.h.Write(b[:n])
	c.n += int64(n)
	if c.n-c.last >= 1<<20 {
		c.last = c.n
		c.report(c.n)
	}
	return n, err
}

// Size is the file's size when opened.
func (c *countingReader) Size() int64 { return c.size }

// sizedReader keeps the Size of a reader wrapped by a test hook.
type sizedReader struct {
	io.Reader
	size int64
}

func (s sizedReader) Size() int64 { return s.size }
