package sync

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// FetchLimits bound an incoming bundle in time, so that a peer that is slow
// on purpose cannot keep a fetch open forever. The zero value of each field
// selects its default.
type FetchLimits struct {
	// Timeout is the base deadline of one fetch, from the request to the
	// trailer, the sender's preparation included; every MiB received adds
	// one second, so a big bundle over a good link is never cut. 0 = 30
	// minutes.
	Timeout time.Duration
	// MinRate is the lowest rate, in bytes per second averaged over
	// RateWindow, at which a bundle that has started to flow may arrive;
	// below it the fetch is abandoned. 0 = 1 KiB/s.
	MinRate int64
	// RateWindow is the span MinRate is averaged over. 0 = 60 s.
	RateWindow time.Duration
	// Idle is how long a sender may send nothing at all (no data, no
	// progress frame) before the fetch is abandoned; this engine, as a
	// sender, sends a progress frame every min(5 s, Idle/4). 0 = 60 s.
	Idle time.Duration
}

func (l *FetchLimits) setDefaults() {
	if l.Timeout <= 0 {
		l.Timeout = 30 * time.Minute
	}
	if l.MinRate <= 0 {
		l.MinRate = 1 << 10
	}
	if l.RateWindow <= 0 {
		l.RateWindow = time.Minute
	}
	if l.Idle <= 0 {
		l.Idle = time.Minute
	}
}

// FetchError says why a fetch of a bundle from a peer was abandoned. It is
// reported in an EventError, in FolderStatus.Fetches and in the log.
type FetchError struct {
	Peer     crypto.DeviceID
	Folder   string
	Received int64 // bytes of the bundle received so far (kept for a resume)
	Err      error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("sync: fetch of %q from %s abandoned after %d bytes: %v", e.Folder, e.Peer.Short(), e.Received, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Reasons a fetch is abandoned (wrapped in FetchError).
var (
	errFetchIdle     = errors.New("the peer sent nothing")
	errFetchTooSlow  = errors.New("the bundle arrives too slowly")
	errFetchDeadline = errors.New("the fetch took too long")
)

// FetchStatus describes the bundle being received from one peer for a
// folder, or why the last attempt was abandoned.
type FetchStatus struct {
	Peer crypto.DeviceID
	// State is "asking" (request sent), "preparing" (the sender prepares
	// the bundle; Produced says how far), "receiving", "applying", or
	// "abandoned" (Err says why; kept until the next attempt).
	State    string
	Received int64 // bytes of bundle held here (resumed ones included)
	Produced int64 // bytes the sender last said it had produced
	Started  time.Time
	Err      string
}

// inbound is the state of fetching one folder from one peer: the
// coalescing of requests, the bundle received in part (kept so a retry
// resumes it) and the status shown to the user. Guarded by Engine.mu.
type inbound struct {
	running bool      // a fetch goroutine is active
	again   bool      // a newer head arrived during it
	pending bool      // a head arrived while the folder was gone (fetchPending)
	pc      *peerConn // the connection to fetch over (the latest one)
	status  FetchStatus
	part    *partial
}

// partial is a bundle received in part, written where the folder's store
// applies it from (gitstore.Incoming: among its packs, so that the pack is
// written once, not spooled here and again by the store).
type partial struct {
	in     *gitstore.Incoming
	bundle string // the sender's bundle ID
	since  string // sinceKey of the want
	size   int64
}

func (p *partial) remove() { p.in.Remove() }

// fetch asks pc for a bundle of folder, coalescing requests: while one is in
// flight, further heads only mark that another round is needed. Outside
// the peer's sync window nothing is asked: the head waits (pending) until
// the window opens or SyncNow.
func (e *Engine) fetch(ctx context.Context, pc *peerConn, folder string) {
	allowed := e.mayExchange(pc.peer, folder)
	e.mu.Lock()
	in := e.inboundLocked(jobKey{pc.peer, folder})
	in.pc, in.pending = pc, !allowed
	if !allowed {
		e.mu.Unlock()
		e.heldBack(pc.peer, folder, false)
		return
	}
	if in.running {
		in.again = true
		e.mu.Unlock()
		return
	}
	in.running = true
	e.mu.Unlock()
	e.wg.Go(func() {
		for {
			e.fetchRound(ctx, folder, in)
			e.knowAnnounced(pc.peer, folder)
			allowed := e.mayExchange(pc.peer, folder) // the window may have closed
			e.mu.Lock()
			if !in.again || ctx.Err() != nil || !allowed {
				in.pending = in.pending || in.again
				in.running = false
				e.mu.Unlock()
				return
			}
			in.again = false
			e.mu.Unlock()
		}
	})
}

// inboundLocked returns the fetch state of key's folder from its peer,
// creating it. e.mu must be held.
func (e *Engine) inboundLocked(key jobKey) *inbound {
	f := e.folderLocked(key.folder)
	in := f.fetches[key.peer]
	if in == nil {
		in = &inbound{}
		f.fetches[key.peer] = in
	}
	return in
}

// fetchPending fetches what peers announced while a folder was gone, once
// it is back.
func (e *Engine) fetchPending(ctx context.Context) {
	e.mu.Lock()
	var todo []jobKey
	var pcs []*peerConn
	for id, f := range e.folders {
		for peer, in := range f.fetches {
			if in.pending && e.connLocked(peer) == in.pc {
				todo, pcs = append(todo, jobKey{peer, id}), append(pcs, in.pc)
			}
		}
	}
	e.mu.Unlock()
	for i, key := range todo {
		if !e.folderGone(key.folder) {
			e.fetch(ctx, pcs[i], key.folder)
		}
	}
}

// fetchRetries bounds the retries of a fetch that failed for a reason
// other than the bundle (a broken connection, a timeout); each resumes
// what was received. After them, the peer's next announcement of its head
// starts a new round.
const fetchRetries = 6

// fetchRound fetches folder from the latest connection of in, retrying a
// failed transfer after 1 s, 2 s, 4 s… (at most AnnounceInterval).
func (e *Engine) fetchRound(ctx context.Context, folder string, in *inbound) {
	wait := time.Second
	for try := 0; ; try++ {
		e.mu.Lock()
		pc := in.pc
		e.mu.Unlock()
		err := e.fetchOnce(ctx, pc, folder, in)
		if err == nil || ctx.Err() != nil {
			return
		}
		if superseded(pc, err) {
			// Not the transfer's failure: the connection gave way to a
			// newer one (the move from QUIC to TCP, two dials crossing).
			// The peer announces its head on the new connection, which
			// fetches again (in.again), resuming what was received.
			e.log.Info("fetch moves to the newer connection", "peer", pc.peer, "folder", folder, "err", err)
			return
		}
		e.fetchFailed(pc, folder, in, err)
		var fe *FetchError
		var be *gitstore.BundleError
		if try == fetchRetries || !errors.As(err, &fe) || errors.As(err, &be) {
			return
		}
		t := time.NewTimer(min(wait, e.cfg.AnnounceInterval))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait *= 2
		if !e.mayExchange(pc.peer, folder) {
			// The window closed: the retry waits for it (a resume).
			e.mu.Lock()
			in.pending = true
			e.mu.Unlock()
			return
		}
	}
}

// knowAnnounced records, after a fetch round, that peer has the head it
// last announced for folder if that head is now in our store. onHead
// records a head only when we have it; one announced while we were still
// fetching (the peer's merge of our commits, announced before our own
// merge made the same commit here) would otherwise stay unrecorded until
// the peer's next announcement, and status, mailbox deposits and SyncNow's
// "in step" would go by an older head.
func (e *Engine) knowAnnounced(peer crypto.DeviceID, folder string) {
	e.mu.Lock()
	var h gitstore.Hash
	if pc := e.connLocked(peer); pc != nil {
		h = pc.heads[folder]
	}
	e.mu.Unlock()
	if h.IsZero() {
		return
	}
	st, err := e.store(folder)
	if err != nil {
		return
	}
	if ok, err := st.HasCommit(h); err == nil && ok {
		e.setKnown(peer, folder, h)
	}
}

// superseded reports whether err ended a fetch because its connection was
// closed as a duplicate (by either side): a newer connection to the same
// peer took over, so nothing is wrong with the transfer.
func superseded(pc *peerConn, err error) bool {
	var ce *transport.CloseError
	if errors.As(err, &ce) {
		return ce.Code == transport.CloseDuplicate
	}
	select {
	case <-pc.c.Done():
		return errors.As(pc.c.Err(), &ce) && ce.Code == transport.CloseDuplicate
	default:
		return false
	}
}

// fetchFailed reports a failed fetch: event, status, log; a peer that sent
// a broken bundle is dropped.
func (e *Engine) fetchFailed(pc *peerConn, folder string, in *inbound, err error) {
	e.mu.Lock()
	in.status.State, in.status.Err = "abandoned", err.Error()
	e.mu.Unlock()
	e.log.Warn("fetch failed", "peer", pc.peer, "folder", folder, "err", err)
	if errors.Is(err, gitstore.ErrNotInitialized) {
		// The folder went away under the fetch (nothing was written):
		// stopped, as a scan would have found.
		e.closeStoreOf(folder)
		e.folderTrouble(folder, err)
		return
	}
	if errors.Is(err, gitstore.ErrMassDelete) {
		// Paused until the user confirms (Engine.AllowMassDelete);
		// local scans going well do not lift it.
		e.mu.Lock()
		f := e.folderLocked(folder)
		was := f.paused != nil
		f.paused = err
		e.mu.Unlock()
		if !was {
			e.emit(Event{Kind: EventFolderStopped, Folder: folder, Peer: pc.peer, Err: err})
		}
	}
	e.emit(Event{Kind: EventError, Peer: pc.peer, Folder: folder, Err: err})
	var be *gitstore.BundleError
	if errors.As(err, &be) {
		// A peer that sends a hostile or broken bundle is dropped.
		_ = pc.c.CloseWithError(transport.CloseBundleRefused, "bundle refused")
	}
}

// setFetch updates the status of in.
func (e *Engine) setFetch(in *inbound, change func(s *FetchStatus)) {
	e.mu.Lock()
	change(&in.status)
	e.mu.Unlock()
}

// spool is where a bundle is received into, with the running hash.
type spool struct {
	in   *gitstore.Incoming
	part *partial
	h    hash.Hash
}

// openSpool returns the spool for a want with since key sk, reusing the
// partial bundle of a previous attempt (and naming it for a resume) when
// the want is the same.
func (e *Engine) openSpool(st *gitstore.Store, in *inbound, sk string) (*spool, *resume, error) {
	e.mu.Lock()
	p := in.part
	in.part = nil
	e.mu.Unlock()
	if p != nil && p.since == sk {
		return &spool{in: p.in, part: p}, &resume{Bundle: p.bundle, Offset: p.size}, nil
	}
	if p != nil {
		p.remove()
	}
	inc, err := st.NewIncoming()
	if err != nil {
		return nil, nil, err
	}
	return &spool{in: inc, part: &partial{in: inc, since: sk}}, nil, nil
}

// start positions the spool for a bundle whose data starts at off:
// continuing the partial bundle (hashing what it holds) or from zero.
func (sp *spool) start(bundle string, off int64) error {
	sp.h = sha256.New()
	if off == 0 || sp.part.bundle != bundle || sp.part.size < off {
		sp.part.bundle, sp.part.size = bundle, 0
		return sp.in.Truncate(0)
	}
	if _, err := io.CopyN(sp.h, io.NewSectionReader(sp.in, 0, off), off); err != nil {
		return fmt.Errorf("sync: spool: %w", err)
	}
	if err := sp.in.Truncate(off); err != nil {
		return err
	}
	sp.part.size = off
	return nil
}

func (sp *spool) write(p []byte) error {
	if _, err := sp.in.Write(p); err != nil {
		return fmt.Errorf("sync: spool: %w", err)
	}
	sp.h.Write(p)
	sp.part.size += int64(len(p))
	return nil
}

// fetchClock enforces FetchLimits on one attempt.
type fetchClock struct {
	lim      FetchLimits
	start    time.Time
	got      int64 // bytes received in this attempt
	flowing  bool  // data has started
	winStart time.Time
	winBytes int64
}

// deadline is the attempt's overall deadline: Timeout, plus a second per
// MiB received.
func (c *fetchClock) deadline() time.Time {
	return c.start.Add(c.lim.Timeout + time.Duration(c.got>>20)*time.Second)
}

// readDeadline is when the next frame must have arrived.
func (c *fetchClock) readDeadline(now time.Time) time.Time {
	d := now.Add(c.lim.Idle)
	if dl := c.deadline(); dl.Before(d) {
		return dl
	}
	return d
}

// data records n bytes received at now and checks the rate.
func (c *fetchClock) data(now time.Time, n int) error {
	if !c.flowing {
		c.flowing, c.winStart = true, now
	}
	c.got += int64(n)
	c.winBytes += int64(n)
	return c.check(now)
}

// check returns why the attempt must end now, or nil.
func (c *fetchClock) check(now time.Time) error {
	if now.After(c.deadline()) {
		return fmt.Errorf("%w (limit %s plus 1 s per MiB; raise Config.Fetch.Timeout)", errFetchDeadline, c.lim.Timeout)
	}
	if c.flowing && now.Sub(c.winStart) >= c.lim.RateWindow {
		secs := now.Sub(c.winStart).Seconds()
		if float64(c.winBytes) < float64(c.lim.MinRate)*secs {
			return fmt.Errorf("%w: %.0f bytes/s over the last %s, below the minimum of %d (Config.Fetch.MinRate)",
				errFetchTooSlow, float64(c.winBytes)/secs, now.Sub(c.winStart).Round(time.Millisecond), c.lim.MinRate)
		}
		c.winStart, c.winBytes = now, 0
	}
	return nil
}

// readErr names a failed read: the idle limit, the deadline, or the
// stream's own error.
func (c *fetchClock) readErr(err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if now := time.Now(); !now.Before(c.deadline()) {
		return c.check(now)
	}
	return fmt.Errorf("%w for %s (Config.Fetch.Idle)", errFetchIdle, c.lim.Idle)
}

// wantSince lists what we have of folder, for a want to pc's peer: our head
// and the peer's last head we applied.
func wantSince(st *gitstore.Store, peer crypto.DeviceID) []gitstore.Hash {
	var since []gitstore.Hash
	if h, err := st.Head(); err == nil && !h.IsZero() {
		since = append(since, h)
	}
	if h, err := st.PeerHead(peer.String()); err == nil && !h.IsZero() && (len(since) == 0 || since[0] != h) {
		since = append(since, h)
	}
	return since
}

// fetchOnce asks pc for a bundle of folder, receives it into a spool
// (resuming the previous attempt's when it can), checks its trailer and
// applies it. Errors other than the store's are *FetchError.
func (e *Engine) fetchOnce(ctx context.Context, pc *peerConn, folder string, in *inbound) error {
	st, err := e.store(folder)
	if err != nil {
		return err
	}
	since := wantSince(st, pc.peer)
	sp, res, err := e.openSpool(st, in, sinceKey(since))
	if err != nil {
		return err
	}
	keep := false // the spool is kept for a resume
	defer func() {
		e.mu.Lock()
		if keep && sp.part.bundle != "" {
			in.part = sp.part
		} else {
			sp.part.remove()
		}
		e.mu.Unlock()
	}()
	e.setFetch(in, func(s *FetchStatus) {
		*s = FetchStatus{Peer: pc.peer, State: "asking", Started: e.cfg.Now()}
		if res != nil {
			s.Received = res.Offset
		}
	})
	fail := func(err error) error {
		e.mu.Lock()
		got := sp.part.size
		e.mu.Unlock()
		return &FetchError{Peer: pc.peer, Folder: folder, Received: got, Err: err}
	}
	s, err := pc.c.OpenStream(ctx)
	if err != nil {
		keep = true
		return fail(err)
	}
	defer s.Abort()
	_ = s.SetWriteDeadline(time.Now().Add(e.cfg.Fetch.Idle))
	if err := writeJSON(s, message{Type: msgWant, Proto: protocolVersion, Folder: folder, Since: since, Resume: res}); err != nil {
		keep = true
		return fail(err)
	}
	_ = s.Close()
	done, err := e.receive(ctx, pc, s, sp, in, folder)
	if err != nil {
		var be *gitstore.BundleError
		keep = !errors.As(err, &be)
		return fail(err)
	}
	if !done {
		e.setFetch(in, func(s *FetchStatus) { *s = FetchStatus{} })
		return nil // nothing to send
	}
	e.setFetch(in, func(s *FetchStatus) { s.State = "applying" })
	// With gitstore's "applied bundle" line, this says how long a bundle
	// took after its last byte (a first sync's tail).
	e.log.Info("bundle received", "peer", pc.peer, "folder", folder, "bytes", sp.part.size)
	before, _ := st.Head()
	r, err := st.ApplyIncoming(ctx, sp.in, pc.peer.String())
	if err != nil {
		return fmt.Errorf("sync: bundle from %s for %q: %w", pc.peer.Short(), folder, err)
	}
	e.setFetch(in, func(s *FetchStatus) { *s = FetchStatus{} })
	e.setKnown(pc.peer, folder, r.PeerHead)
	if r.Kind != gitstore.UpToDate {
		e.emit(Event{Kind: EventRemoteApplied, Peer: pc.peer, Folder: folder, Head: r.Head, Paths: r.Changed, Conflicts: r.Conflicts})
		e.announce(folder)
	} else if r.Head != before {
		e.announce(folder) // the apply committed local edits first: no scan reports them
	} else if r.Head != r.PeerHead && e.sendsTo(pc.peer, folder) {
		e.sendHead(pc, folder) // the peer's turn to merge (gitstore's "Merge rule"), or it lags
	}
	return nil
}

// receive reads a want's answer from s into sp, enforcing Config.Fetch and
// MaxBundleSize. It returns true when a whole bundle with a matching
// trailer is in the spool, false when the sender had nothing to send. A
// broken stream (garbage, wrong trailer) is a *gitstore.BundleError. The
// bandwidth limits of the peer pace the reading, and the progress is
// reported.
func (e *Engine) receive(ctx context.Context, pc *peerConn, s *transport.Stream, sp *spool, in *inbound, folder string) (bool, error) {
	clock := &fetchClock{lim: e.cfg.Fetch, start: time.Now()}
	buf := make([]byte, 1+maxChunk)
	bad := func(format string, args ...any) error {
		return &gitstore.BundleError{Reason: fmt.Sprintf(format, args...)}
	}
	started := false
	var tr *transfer
	defer func() {
		if tr != nil {
			e.transferEnd(tr)
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		_ = s.SetReadDeadline(clock.readDeadline(time.Now()))
		p, err := readFrameInto(s, buf)
		if err != nil {
			if errors.Is(err, errFrameTooLarge) {
				return false, bad("%v", err)
			}
			if errors.Is(err, io.EOF) {
				return false, fmt.Errorf("the stream ended before the trailer (truncated)")
			}
			return false, clock.readErr(err)
		}
		if len(p) > 0 && p[0] == dataTag {
			if !started {
				return false, bad("data before the bundle frame")
			}
			if sp.part.size+int64(len(p)-1) > e.cfg.MaxBundleSize {
				return false, bad("bundle exceeds the limit of %d bytes (Config.MaxBundleSize)", e.cfg.MaxBundleSize)
			}
			if err := sp.write(p[1:]); err != nil {
				return false, err
			}
			got := sp.part.size
			e.setFetch(in, func(s *FetchStatus) { s.State, s.Received = "receiving", got })
			e.transferData(tr, p[1:], 0)
			if err := clock.data(time.Now(), len(p)-1); err != nil {
				return false, err
			}
			if err := e.limitersFor(pc.peer, false).wait(ctx, len(p)-1); err != nil {
				return false, err
			}
			continue
		}
		a, err := decodeAnswer(p)
		if err != nil {
			return false, bad("%v", err)
		}
		if a.Type != ansBundle && a.Type != ansError && !started {
			return false, bad("answer frame %q before the bundle frame", a.Type)
		}
		switch a.Type {
		case ansError:
			return false, fmt.Errorf("the peer refused: %s", a.Error)
		case ansNothing:
			return false, nil
		case ansBundle:
			if started {
				return false, bad("a second bundle frame")
			}
			if a.Offset != 0 && (sp.part.bundle != a.Bundle || sp.part.size < a.Offset) {
				return false, bad("the peer resumed bundle %s at %d, which we did not ask for", a.Bundle, a.Offset)
			}
			if err := sp.start(a.Bundle, a.Offset); err != nil {
				return false, err
			}
			started = true
			var head []byte
			if a.Offset > 0 {
				head = readHead(sp.in, a.Offset)
			}
			tr = e.transferStart(pc.peer, folder, false, a.Offset, head)
			got := sp.part.size
			e.setFetch(in, func(s *FetchStatus) { s.State, s.Received = "preparing", got })
		case ansProgress:
			if a.Size > 0 && tr != nil {
				e.transferTotal(tr, a.Size)
			}
			e.setFetch(in, func(s *FetchStatus) {
				s.Produced = a.Produced
				if s.State == "asking" {
					s.State = "preparing"
				}
			})
			if err := clock.check(time.Now()); err != nil {
				return false, err
			}
		case ansEnd:
			if a.Size != sp.part.size {
				return false, bad("trailer says %d bytes, %d arrived", a.Size, sp.part.size)
			}
			if got := hexSum(sp.h.Sum(nil)); got != a.SHA256 {
				return false, bad("bundle SHA-256 %s does not match the trailer's %s", got, a.SHA256)
			}
			return true, nil
		}
	}
}
