package sync

import (
	"context"

	"github.com/peersync/peersync/discovery"
	"github.com/peersync/peersync/transport"
	"github.com/peersync/peersync/transport/rendezvous"
)

// runState is what one Run opened, from its start to its end; Engine.run
// points to it while Run is active. Its fields are set once, except rv and
// disc, which Engine.mu guards. The accessors answer nil on a nil runState (not
// running).
type runState struct {
	tr       *transport.Transport
	listen   string                // the listen address Run was given (see RestartNeeded)
	disc     *discovery.Discoverer // LAN discovery while on (Settings.Discovery); Engine.mu guards it
	rvServer *rendezvous.Server    // nil without Config.NAT.ServeRendezvous
	jobs     *jobTable             // bundles produced for peers
	rv       *rendezvous.Client    // our registration at Config.NAT.Rendezvous, while it is up
	changed  chan struct{}         // wakes the tick loop after a configuration change (refetch)
	cancel   context.CancelFunc    // ends the Run
	done     chan struct{}         // closed when Run has returned its resources
	ctx      context.Context       // the Run's context, for work started from outside it (SyncNow)
	sched    *schedState           // schedules, limits, progress; created on first use under Engine.mu
	mail     *mailState            // the blind mailbox; created on first use under Engine.mu
}

func (r *runState) context() context.Context {
	if r == nil {
		return nil
	}
	return r.ctx
}

func (r *runState) transport() *transport.Transport {
	if r == nil {
		return nil
	}
	return r.tr
}

func (r *runState) discoverer() *discovery.Discoverer {
	if r == nil {
		return nil
	}
	return r.disc
}

func (r *runState) server() *rendezvous.Server {
	if r == nil {
		return nil
	}
	return r.rvServer
}

func (r *runState) client() *rendezvous.Client {
	if r == nil {
		return nil
	}
	return r.rv
}

func (r *runState) jobTable() *jobTable {
	if r == nil {
		return nil
	}
	return r.jobs
}

// configChanged wakes the tick loop to refetch (see Engine.refetch).
func (r *runState) configChanged() {
	if r == nil {
		return
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}
