package sync

// Traffic is what a running Engine has moved since its Run started, for
// an operator's metrics: bundle bytes received from and sent to peers
// (every transfer's data as it flows, resumed and abandoned ones
// included), and, when it serves as rendezvous (Config.ServeRendezvous),
// the signaling messages it relayed between devices (ICE offers and
// answers). Not running, it is zero.
type Traffic struct {
	BundleBytesIn  int64
	BundleBytesOut int64
	OffersRelayed  int64
}

// Traffic returns the counts of the running Engine (see [Traffic]).
func (e *Engine) Traffic() Traffic {
	e.mu.Lock()
	defer e.mu.Unlock()
	var t Traffic
	if s := e.schedLocked(); s != nil {
		t = s.traffic
	}
	if rv := e.run.server(); rv != nil {
		t.OffersRelayed = rv.Relayed()
	}
	return t
}

// countTrafficLocked adds n bytes of a transfer in direction dir (dirSend
// or dirReceive). e.mu must be held.
func (e *Engine) countTrafficLocked(dir string, n int) {
	s := e.schedLocked()
	if s == nil {
		return
	}
	if dir == dirSend {
		s.traffic.BundleBytesOut += int64(n)
	} else {
		s.traffic.BundleBytesIn += int64(n)
	}
}
