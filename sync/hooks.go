package sync

import (
	"io"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// testHooks let this package's tests observe and slow the engine.
type testHooks struct {
	// produce wraps the writer a bundle job's WriteBundle writes to.
	produce func(since []gitstore.Hash, w io.Writer) io.Writer
	// served is told the since list and start offset of every want
	// answered with a bundle.
	served func(since []gitstore.Hash, offset int64)
	// noStagger starts every attempt of a dial race at once.
	noStagger bool
	// netState replaces interfaceAddrs, to fake a network change.
	netState func() string
	// quicWinsRace leaves TCP out of dial races (as when QUIC's shorter
	// handshake wins over a long round trip); upgrades still use it.
	quicWinsRace bool
	// heard is told every head a peer announced for a folder that flows
	// between us, and whether it is fetched.
	heard func(from crypto.DeviceID, folder string, head gitstore.Hash, fetch bool)
	// gated is told of every bundle a closed sync window held back: a
	// want answered with nothing (send) or a head not fetched.
	gated func(peer crypto.DeviceID, folder string, send bool)
	// transferred is told of every bundle transfer that ended: its last
	// progress and how long it ran (real time).
	transferred func(p Progress, elapsed time.Duration)
	// noMulticast gives LAN discovery no interface, so that a test's
	// discovery sends nothing off this machine.
	noMulticast bool
	// state wraps the engine's state store (persist.go), to fail saves.
	state func(stateStore) stateStore
	// hashed is told of every SHA-256 of a whole bundle computed for the
	// protocol's trailer, sending or receiving, with the bytes hashed.
	hashed func(n int64)
}

// bundleHashed returns the hashed hook, or nil.
func (e *Engine) bundleHashed() func(int64) {
	if h := e.cfg.test; h != nil {
		return h.hashed
	}
	return nil
}

// stagger is a dial race's head start per attempt.
func (e *Engine) stagger() time.Duration {
	if h := e.cfg.test; h != nil && h.noStagger {
		return 0
	}
	return raceStagger
}

// netState returns this machine's addresses, to notice network changes.
func (e *Engine) netState() string {
	if h := e.cfg.test; h != nil && h.netState != nil {
		return h.netState()
	}
	return interfaceAddrs()
}

// quicWinsRace reports whether tests leave TCP out of dial races.
func (e *Engine) quicWinsRace() bool { return e.cfg.test != nil && e.cfg.test.quicWinsRace }
