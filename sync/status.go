package sync

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// Status is a snapshot of the engine for display.
type Status struct {
	Device crypto.DeviceID
	Name   string
	Addr   string // listening address while Run is active
	// Discovery is true while LAN discovery runs (see Settings).
	Discovery bool
	Folders   []FolderStatus
	Peers     []PeerStatus
	// Rendezvous is the state of our registration at Config.NAT.Rendezvous;
	// nil when none is configured.
	Rendezvous *RendezvousStatus
	// Pending lists the devices and folder offers waiting for an answer.
	Pending Pending
}

// RendezvousStatus describes the rendezvous server this device uses.
type RendezvousStatus struct {
	Addr   string          // as configured
	Device crypto.DeviceID // pinned, or learned from the server (zero until then)
	Pinned bool            // Device was given in the configuration
	// Registered is true while our registration is up; Observed is our
	// public address as the server sees it.
	Registered bool
	Observed   string
}

// FolderStatus describes one shared folder.
type FolderStatus struct {
	FolderConfig
	Head    gitstore.Hash // our head; zero if nothing is committed yet
	Stopped string        // why the folder is not syncing; "" if it is
	// Fetches are the bundles being received for this folder, one per
	// peer, and the last abandoned attempt's reason until the next one.
	Fetches []FetchStatus
	// NotSent, for a folder this device only receives from some peer
	// (DirReceive), is the number of files that differ from the last
	// state received, or all files while nothing was received ("N local
	// changes not sent"); RevertFolder undoes them. 0 otherwise.
	NotSent int
	// Scan is how far a long scan has got, while one runs.
	Scan *ScanProgress
}

// PeerStatus describes one peer of the sync table.
type PeerStatus struct {
	PeerConfig
	Connected bool
	Addr      string // remote address while connected
	// Path is how the connection got there, "ROUTE PROTO": the route is
	// lan or public (a known address, on the LAN or not), ice-host,
	// ice-srflx or ice-relay (the pair ICE selected: same network, through
	// a NAT, through a TURN relay); the protocol is quic or tcp. E.g.
	// "lan tcp", "public quic", "ice-relay quic".
	Path  string
	Known map[string]gitstore.Hash // folder ID -> last revision the peer is known to have
	// Progress lists the bundles going to and coming from the peer now;
	// Window is its sync window's state ("open", "closed until 22:00");
	// Waiting, while it is closed, about how many of our changes wait
	// for it (see schedule_engine.go).
	Progress []Progress
	Window   string
	Waiting  int
}

// Status returns the current state. Folders are opened to read their heads.
func (e *Engine) Status() Status {
	e.mu.Lock()
	conf := e.conf.clone()
	st := Status{Device: e.DeviceID(), Name: e.nameLocked(), Folders: []FolderStatus{}, Peers: []PeerStatus{}}
	if tr := e.run.transport(); tr != nil {
		st.Addr = tr.LocalAddr().String()
	}
	st.Discovery = e.run.discoverer() != nil
	if r := e.rendezvousLocked(); r != nil {
		rs := &RendezvousStatus{Addr: r.Addr, Device: e.rvPeer, Pinned: !r.Device.IsZero()}
		if rv := e.run.client(); rv != nil {
			rs.Registered, rs.Observed = true, rv.Observed()
		}
		st.Rendezvous = rs
	}
	for _, p := range conf.Peers {
		ps := PeerStatus{PeerConfig: p, Known: maps.Clone(e.tab.Known[p.Device])}
		if pc := e.connLocked(p.Device); pc != nil {
			ps.Connected, ps.Addr, ps.Path = true, pc.c.RemoteAddr().String(), pathName(pc.c)
		}
		st.Peers = append(st.Peers, ps)
	}
	fetches := map[string][]FetchStatus{}
	for id, f := range e.folders {
		for _, in := range f.fetches {
			if in.status.State != "" {
				fetches[id] = append(fetches[id], in.status)
			}
		}
	}
	e.mu.Unlock()
	for _, f := range conf.Folders {
		fs := FolderStatus{FolderConfig: f, Fetches: fetches[f.ID]}
		s, err := e.store(f.ID)
		if err == nil {
			fs.Head, err = s.Head()
		}
		if err == nil {
			fs.NotSent = e.notSentCount(f.ID, s, fs.Head)
		}
		if err == nil {
			e.mu.Lock()
			fo := e.folderLocked(f.ID)
			err = fo.stopped
			if err == nil {
				err = fo.paused
			}
			e.mu.Unlock()
		}
		if err != nil {
			fs.Stopped = err.Error()
		}
		st.Folders = append(st.Folders, fs)
	}
	slices.SortFunc(st.Folders, func(a, b FolderStatus) int { return strings.Compare(a.ID, b.ID) })
	st.Pending = e.Pending()
	e.schedStatus(&st)
	return st
}

// pathName names the path of a connection for status, as "ROUTE PROTO":
// the route is lan or public (a known address, by whether the remote IP
// is private, loopback or link-local), or ice-host, ice-srflx or ice-relay
// (the pair ICE selected); the protocol is quic or tcp. ICE paths always
// run QUIC.
func pathName(c *transport.Conn) string {
	switch p := c.Path(); p {
	case transport.PathTCP:
		return routeOf(c.RemoteAddr()) + " tcp"
	case transport.PathDirect:
		return routeOf(c.RemoteAddr()) + " quic"
	default:
		return p.String() + " quic"
	}
}

// routeOf says whether a remote address is on the LAN ("lan") or not
// ("public").
func routeOf(a net.Addr) string {
	if a == nil {
		return "public"
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		host = a.String()
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "public"
	}
	ip = ip.Unmap()
	if ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return "lan"
	}
	return "public"
}
