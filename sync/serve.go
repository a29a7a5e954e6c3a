package sync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
// prepares, and the trailer (see the package doc, Exchange protocol), with
// the bundle's SHA-256 only for an asker before version 3.
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
	if !e.mayExchange(pc.peer, m.Folder) {
		// Outside the peer's window: nothing now. The window's opening
		// announces our head again, and the peer asks again.
		// (A bundle frame comes first, as always; its ID names no job.)
		e.heldBack(pc.peer, m.Folder, true)
		var id [16]byte
		_, _ = rand.Read(id[:])
		if err := send(answer{Type: ansBundle, Bundle: hex.EncodeToString(id[:]), Proto: protocolVersion}); err != nil {
			return err
		}
		return send(answer{Type: ansNothing})
	}
	since := m.Since
	produce := func(ctx context.Context, w io.Writer) (gitstore.Hash, error) {
		if h := e.cfg.test; h != nil && h.produce != nil {
			w = h.produce(since, w)
		}
		info, err := st.WriteBundle(ctx, w, since)
		return info.Head, err
	}
	head, _ := st.Head() // zero if closed: no finished job is then joined
	key := jobKey{pc.peer, m.Folder}
	wantsSum := m.Proto < protoNoSHA256
	j, off, err := jobs.attach(key, sinceKey(since), head, m.Resume, wantsSum, produce)
	if err != nil {
		msg := "could not start the bundle"
		if errors.Is(err, errBusy) {
			msg = err.Error()
		}
		_ = send(answer{Type: ansError, Error: msg})
		return err
	}
	defer jobs.detach(key, j)
	if h := e.cfg.test; h != nil && h.served != nil {
		h.served(since, off)
	}
	if err := send(answer{Type: ansBundle, Bundle: j.id, Offset: off, Proto: protocolVersion}); err != nil {
		return err
	}
	return e.sendJob(ctx, s, j, off, key, wantsSum)
}

// sendJob streams j from off to s until its trailer (with the bundle's
// SHA-256 if wantsSum), at the pace the bandwidth limits of key's peer
// allow, reporting its progress.
func (e *Engine) sendJob(ctx context.Context, s *transport.Stream, j *bundleJob, off int64, key jobKey, wantsSum bool) error {
	idle := e.cfg.Fetch.Idle
	send := func(a answer) error {
		_ = s.SetWriteDeadline(time.Now().Add(idle))
		return writeJSON(s, a)
	}
	var frame dataFrame
	tick := time.NewTicker(e.keepAlive())
	defer tick.Stop()
	lastSent := time.Now()
	var head []byte
	if off > 0 {
		head = readHead(j.f, off)
	}
	tr := e.transferStart(key.peer, key.folder, true, off, head)
	defer e.transferEnd(tr)
	totalSent := false
	for {
		size, finished, jerr, changed := j.state()
		if finished && jerr == nil && !totalSent && off < size {
			// The receiver learns the bundle's length for its progress
			// (a progress frame with "size"; see the package doc).
			if err := send(answer{Type: ansProgress, Produced: size, Size: size}); err != nil {
				return err
			}
			totalSent = true
			e.transferTotal(tr, size)
		}
		if off < size {
			lim := e.limitersFor(key.peer, true)
			n := int(min(size-off, int64(lim.chunk())))
			if _, err := j.f.ReadAt(frame.payload()[:n], off); err != nil {
				return fmt.Errorf("sync: read bundle job: %w", err)
			}
			if err := lim.wait(ctx, n); err != nil {
				return err
			}
			_ = s.SetWriteDeadline(time.Now().Add(idle))
			if err := frame.write(s, n); err != nil {
				return err
			}
			e.transferData(tr, frame.payload()[:n], 0)
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
			if !totalSent {
				// The stream kept up with the producer: the length is
				// known only now (the receiver takes it from the end).
				e.transferTotal(tr, size)
			}
			end := answer{Type: ansEnd, Size: size}
			if wantsSum {
				sum, err := j.sha256(size)
				if err != nil {
					_ = send(answer{Type: ansError, Error: "could not write bundle"})
					return err
				}
				end.SHA256 = hexSum(sum)
			}
			return send(end)
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
