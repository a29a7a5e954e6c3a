package gitstore

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Automatic maintenance: whenever main moves (a scan's commits, an applied
// bundle, a merge, a restore), setRefLocked calls maintainSoon, which
// starts one goroutine that runs Maintain's check and, over the thresholds,
// the consolidation (maintain.go), then ends. A move while it runs makes
// it check once more before ending; so there is never more than one, and
// none while the store is idle. The scan or apply that moved main does not
// wait for it: it costs them one mutex and, at most, starting a goroutine.
// Close stops it (its context is cancelled: the pack being written is
// dropped as a kill would drop it) and waits for it to end.

// autoMaint is the state of automatic maintenance.
type autoMaint struct {
	// run serializes maintenance runs (the background one and Maintain).
	run sync.Mutex

	mu      sync.Mutex      // guards the fields below
	running bool            // the goroutine is on
	again   bool            // main moved while it ran: check once more
	stopped bool            // set by stop: start nothing more
	ctx     context.Context // the running goroutine's; cancelled by stop
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// last is the result of the last run that consolidated, runs the
	// number of such runs and held the longest time one held the store's
	// locks (for tests and benchmarks).
	last MaintainResult
	runs int
	held time.Duration
}

// maintainSoon starts the background maintenance, or makes the running
// one check again.
func (s *Store) maintainSoon() {
	m := &s.maint
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped || noAutoMaintain {
		return
	}
	if m.running {
		m.again = true
		return
	}
	m.running = true
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go s.maintainLoop(m.ctx)
}

// maintainLoop is the background goroutine.
func (s *Store) maintainLoop(ctx context.Context) {
	m := &s.maint
	defer m.wg.Done()
	for {
		res, err := s.maintain(ctx, maintainAuto)
		switch {
		case err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil:
			// Nothing is lost (maintain.go); the next move of main tries
			// again.
			s.opts.log.Warn("gitstore: background maintenance failed", "dir", s.dir, "err", err)
		case res.Done:
			s.opts.log.Debug("gitstore: store maintained", "dir", s.dir, "loose", res.Loose, "packs", res.Packs,
				"objects", res.Objects, "held", res.Held)
		}
		m.mu.Lock()
		if res.Done {
			m.last, m.runs, m.held = res, m.runs+1, max(m.held, res.Held)
		}
		if !m.again || m.stopped || err != nil {
			m.running, m.again = false, false
			m.cancel()
			m.mu.Unlock()
			return
		}
		m.again = false
		m.mu.Unlock()
	}
}

// stop ends the background maintenance and waits for it. Idempotent.
func (m *autoMaint) stop() {
	m.mu.Lock()
	m.stopped = true
	if m.cancel != nil {
		m.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// noAutoMaintain turns automatic maintenance off (tests that count the
// files a scan leaves set it before opening stores).
var noAutoMaintain = false

// runContext returns the context of the running goroutine (nil if none).
func (m *autoMaint) runContext() context.Context {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return nil
	}
	return m.ctx
}
