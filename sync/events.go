package sync

import (
	"fmt"
	"log/slog"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// EventKind says what an Event reports.
type EventKind string

// The kinds of Event.
const (
	// EventPeerConnected: an authenticated connection to Peer is up (Addr,
	// and Path: how it got there, as in PeerStatus.Path).
	EventPeerConnected EventKind = "peer-connected"
	// EventPeerDisconnected: the connection to Peer ended (Err says why).
	EventPeerDisconnected EventKind = "peer-disconnected"
	// EventLocalChanges: a scan of Folder committed Changes.
	EventLocalChanges EventKind = "local-changes"
	// EventRemoteApplied: a bundle from Peer was applied to Folder; Head is
	// our new head, Paths the files written or deleted, Conflicts the
	// conflict copies made.
	EventRemoteApplied EventKind = "remote-applied"
	// EventFolderStopped: Folder cannot be synced (Err says why, e.g. its
	// .peersync marker vanished: a disk unmounted, a folder moved); it is
	// retried on every scan tick, and nothing of it is read as deleted.
	EventFolderStopped EventKind = "folder-stopped"
	// EventFolderResumed: a stopped Folder is back (its marker is there
	// again) and syncs again.
	EventFolderResumed EventKind = "folder-resumed"
	// EventError: something failed (Err), with Peer and Folder when known.
	// A refused bundle from a peer is reported here and the peer is
	// disconnected.
	EventError EventKind = "error"
	// EventProgress: a bundle of Folder is going to or coming from Peer;
	// Progress says how far (at most every 250 ms per transfer).
	EventProgress EventKind = "progress"
	// EventScanProgress: a scan of Folder is under way; Scan says how far
	// (at most every 250 ms, from the first second of a scan on).
	EventScanProgress EventKind = "scan-progress"
	// EventWindowOpened: Peer's sync window opened; what waited is
	// exchanged now.
	EventWindowOpened EventKind = "window-opened"
	// EventWindowClosed: Peer's sync window closed (Until: when it opens
	// again); a bundle in flight is finished, then nothing more goes until
	// then (or SyncNow).
	EventWindowClosed EventKind = "window-closed"
)

// Event is one thing that happened in the engine. Fields that do not apply
// to a Kind are zero.
type Event struct {
	Time   time.Time
	Kind   EventKind
	Folder string
	Peer   crypto.DeviceID
	Addr   string
	// Path is set on EventPeerConnected, as PeerStatus.Path ("lan tcp").
	Path      string
	Head      gitstore.Hash
	Changes   []gitstore.Change
	Paths     []string
	Conflicts []string
	Err       error
	// Progress is set on EventProgress, Scan on EventScanProgress; Until
	// on EventWindowClosed: when the window opens again (zero: never).
	Progress *Progress
	Scan     *ScanProgress
	Until    time.Time
}

// String renders the event as one log-friendly line.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s", e.Time.Format(time.RFC3339), e.Kind)
	if e.Folder != "" {
		s += " folder=" + e.Folder
	}
	if !e.Peer.IsZero() {
		s += " peer=" + e.Peer.Short()
	}
	if e.Addr != "" {
		s += " addr=" + e.Addr
	}
	if e.Path != "" {
		s += " path=" + e.Path
	}
	if !e.Head.IsZero() {
		s += " head=" + e.Head.String()[:12]
	}
	if n := len(e.Changes); n > 0 {
		s += fmt.Sprintf(" commits=%d", n)
	}
	if n := len(e.Paths); n > 0 {
		s += fmt.Sprintf(" paths=%d", n)
	}
	if n := len(e.Conflicts); n > 0 {
		s += fmt.Sprintf(" conflicts=%d", n)
	}
	if p := e.Progress; p != nil {
		s += fmt.Sprintf(" %s=%d/%d", p.Direction, p.Bytes, p.Total)
	}
	if sc := e.Scan; sc != nil {
		s += fmt.Sprintf(" scanned=%d files", sc.Files)
	}
	if !e.Until.IsZero() {
		s += " until=" + e.Until.Format(time.RFC3339)
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	return s
}

// eventQueue is the buffered channel behind Engine.Events: a send never
// blocks (a full queue drops the event and counts it), and close ends it
// once.
type eventQueue struct {
	ch      chan Event
	mu      gosync.RWMutex // guards closed and sending on ch
	closed  bool
	dropped atomic.Int64
}

func (q *eventQueue) send(ev Event, log *slog.Logger) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return
	}
	select {
	case q.ch <- ev:
	default:
		if n := q.dropped.Add(1); n == 1 || n%100 == 0 {
			log.Warn("events dropped: nobody reads Engine.Events fast enough", "dropped", n)
		}
	}
}

func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}
