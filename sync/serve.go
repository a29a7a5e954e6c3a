package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// keepAliveMax is the longest a sender stays silent on a want stream: it
// sends a progress frame at least this often while it has no data (the
// protocol promises every 5 s).
const keepAliveMax = 5 * time.Second

// keepAlive is how often this engine sends progress frames: every 5 s, or
// a quarter of its own Fetch.Idle if that is shorter (tests scale it down).
func (e *Engine) keepAlive() time.Duration {
	return min(keepAliveMax, e.cfg.Fetch.Idle/4)
}

// serveWant answers a bundle request: the bundle frame at once, then the
// bundle's chunks as its job produces them, progress frames while it
// prepares, and the trailer (see the package doc, Exchange protocol).
func (e *Engine) serveWant(ctx context.Context, pc *peerConn, s *transport.Stream, m message) error {
	idle := e.cfg.Fetch.Idle
	send := func(a answer) error {
		_ = s.SetWriteDeadline(time.Now().Add(idle))
		return writeJSON(s, a)
	}
	e.mu.Lock()
	shared := e.conf.sendsTo(pc.peer, m.Folder) // shared, not receive-only, not paused
	_, have := e.conf.folder(m.Folder)
	jobs := e.run.jobTable()
	e.mu.Unlock()
	if !shared || !have {
		return send(answer{Type: ansError, Error: "folder not shared with you"})
	}
	st, err := e.store(m.Folder)
	if err != nil || jobs == nil {
		return send(answer{Type: ansError, Error: "folder unavailable"})
	}
	since := m.Since
	produce := func(ctx context.Context, w io.Writer) error {
		if h := e.cfg.test; h != nil && h.produce != nil {
			w = h.produce(since, w)
		}
		_, err := st.WriteBundle(ctx, w, since)
		return err
	}
	j, off, err := jobs.attach(jobKey{pc.peer, m.Folder}, sinceKey(since), m.Resume, produce)
	if err != nil {
		msg := "could not start the bundle"
		if errors.Is(err, errBusy) {
			msg = err.Error()
		}
		_ = send(answer{Type: ansError, Error: msg})
		return err
	}
	defer jobs.detach(j)
	if h := e.cfg.test; h != nil && h.served != nil {
		h.served(since, off)
	}
	if err := send(answer{Type: ansBundle, Bundle: j.id, Offset: off}); err != nil {
		return err
	}
	return e.sendJob(ctx, s, j, off)
}

// sendJob streams j from off to s until its trailer.
func (e *Engine) sendJob(ctx context.Context, s *transport.Stream, j *bundleJob, off int64) error {
	idle := e.cfg.Fetch.Idle
	send := func(a answer) error {
		_ = s.SetWriteDeadline(time.Now().Add(idle))
		return writeJSON(s, a)
	}
	var frame dataFrame
	tick := time.NewTicker(e.keepAlive())
	defer tick.Stop()
	lastSent := time.Now()
	for {
		size, finished, jerr, sum, changed := j.state()
		if off < size {
			n := int(min(size-off, maxChunk))
			if _, err := j.f.ReadAt(frame.payload()[:n], off); err != nil {
				return fmt.Errorf("sync: read bundle job: %w", err)
			}
			_ = s.SetWriteDeadline(time.Now().Add(idle))
			if err := frame.write(s, n); err != nil {
				return err
			}
			off += int64(n)
			lastSent = time.Now()
			continue
		}
		if finished {
			switch {
			case errors.Is(jerr, gitstore.ErrNothingToSend):
				return send(answer{Type: ansNothing})
			case jerr != nil:
				_ = send(answer{Type: ansError, Error: "could not write bundle"})
				return fmt.Errorf("sync: write bundle: %w", jerr)
			}
			return send(answer{Type: ansEnd, Size: size, SHA256: hexSum(sum)})
		}
		select {
		case <-changed:
		case <-tick.C:
			if time.Since(lastSent) >= e.keepAlive()/2 {
				if err := send(answer{Type: ansProgress, Produced: size}); err != nil {
					return err
				}
				lastSent = time.Now()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
