package sync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// Run syncs until ctx is done or Close is called: it listens on
// Config.ListenAddr, dials the peers of the sync table, scans the folders
// every Config.ScanInterval, and exchanges bundles. It returns nil after
// Close, an error wrapping ctx.Err() when ctx ends, or the error that kept it
// from starting (e.g. the port is taken).
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return ErrClosed
	case e.running:
		e.mu.Unlock()
		return ErrRunning
	}
	tr, err := transport.New(transport.Config{
		Identity:   e.id,
		ListenAddr: e.cfg.ListenAddr,
		Authorize:  e.authorize,
		Logger:     e.log,
	})
	if err != nil {
		e.mu.Unlock()
		return fmt.Errorf("sync: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	e.running, e.tr, e.cancelRun, e.runDone = true, tr, cancel, make(chan struct{})
	done := e.runDone
	e.mu.Unlock()
	e.log.Info("running", "device", e.id.DeviceID(), "listen", tr.LocalAddr().String())

	var wg gosync.WaitGroup
	wg.Go(func() { e.acceptLoop(runCtx, tr, &wg) })
	wg.Go(func() { e.dialLoop(runCtx, tr, &wg) })
	wg.Go(func() { e.tickLoop(runCtx) })

	<-runCtx.Done()
	closeErr := tr.Close() // ends every connection, unblocks Accept/Dial
	e.mu.Lock()
	conns := e.conns
	e.conns = map[crypto.DeviceID]*peerConn{}
	e.mu.Unlock()
	for _, pc := range conns {
		_ = pc.c.Close()
	}
	wg.Wait()

	e.mu.Lock()
	e.running, e.tr, e.cancelRun = false, nil, nil
	closedByUs := e.closed
	e.mu.Unlock()
	close(done)
	if closeErr != nil && !errors.Is(closeErr, transport.ErrClosed) {
		e.log.Warn("closing transport", "err", closeErr)
	}
	if closedByUs || ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("sync: run: %w", ctx.Err())
}

// authorize is the transport's gate: only devices in the sync table.
func (e *Engine) authorize(d crypto.DeviceID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.conf.peer(d); !ok {
		return crypto.ErrUnknownPeer
	}
	return nil
}

func (e *Engine) acceptLoop(ctx context.Context, tr *transport.Transport, wg *gosync.WaitGroup) {
	for {
		c, err := tr.Accept(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, transport.ErrClosed) {
				e.log.Warn("accept", "err", err)
			}
			return
		}
		e.addConn(ctx, c, wg)
	}
}

func (e *Engine) dialLoop(ctx context.Context, tr *transport.Transport, wg *gosync.WaitGroup) {
	t := time.NewTicker(e.cfg.DialInterval)
	defer t.Stop()
	for {
		e.mu.Lock()
		var todo []PeerConfig
		for _, p := range e.conf.Peers {
			if len(p.Addrs) == 0 || e.conns[p.Device] != nil || e.dialing[p.Device] {
				continue
			}
			e.dialing[p.Device] = true
			todo = append(todo, p)
		}
		e.mu.Unlock()
		for _, p := range todo {
			wg.Go(func() {
				defer func() {
					e.mu.Lock()
					delete(e.dialing, p.Device)
					e.mu.Unlock()
				}()
				for _, addr := range p.Addrs {
					dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					c, err := tr.Dial(dctx, addr, p.Device)
					cancel()
					if err == nil {
						e.addConn(ctx, c, wg)
						return
					}
					if ctx.Err() != nil {
						return
					}
					e.log.Debug("dial failed", "peer", p.Device, "addr", addr, "err", err)
				}
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tickLoop rescans folders, reloads config.json when another process (the
// CLI) changed it, and periodically re-announces heads.
func (e *Engine) tickLoop(ctx context.Context) {
	scan := time.NewTicker(e.cfg.ScanInterval)
	defer scan.Stop()
	announce := time.NewTicker(e.cfg.AnnounceInterval)
	defer announce.Stop()
	for {
		e.reloadConfig()
		_, _ = e.Scan(ctx, "")
		select {
		case <-ctx.Done():
			return
		case <-scan.C:
		case <-announce.C:
			e.mu.Lock()
			var ids []string
			for _, f := range e.conf.Folders {
				ids = append(ids, f.ID)
			}
			e.mu.Unlock()
			for _, id := range ids {
				e.announce(id)
			}
		}
	}
}

// reloadConfig picks up edits to config.json made by another process.
func (e *Engine) reloadConfig() {
	path := filepath.Join(e.cfg.Home, configFile)
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	e.mu.Lock()
	same := fi.ModTime().Equal(e.confMod)
	e.mu.Unlock()
	if same {
		return
	}
	c, mod, err := e.readConfig()
	if err != nil {
		e.emit(Event{Kind: EventError, Err: err})
		return
	}
	e.mu.Lock()
	e.conf, e.confMod = c, mod
	e.mu.Unlock()
	e.log.Info("configuration reloaded", "folders", len(c.Folders), "peers", len(c.Peers))
	e.dropUnknownPeers()
	// Tell connected peers about folders that may be newly shared.
	for _, f := range c.Folders {
		e.announce(f.ID)
	}
}

// dropUnknownPeers closes connections of devices no longer in the table.
func (e *Engine) dropUnknownPeers() {
	e.mu.Lock()
	var gone []*peerConn
	for d, pc := range e.conns {
		if _, ok := e.conf.peer(d); !ok {
			gone = append(gone, pc)
		}
	}
	e.mu.Unlock()
	for _, pc := range gone {
		_ = pc.c.CloseWithError(2, "removed from sync table")
	}
}
