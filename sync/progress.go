package sync

import (
	"bytes"
	"encoding/binary"
	"io"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// Progress is how far one bundle transfer with a peer has got: in
// EventProgress (at most every 250 ms per transfer) and in
// PeerStatus.Progress while it runs.
type Progress struct {
	Peer   crypto.DeviceID
	Folder string
	// Direction is "send" (our bundle to the peer) or "receive".
	Direction string
	// Bytes of the bundle done (a resumed transfer counts what it held);
	// Total is its length, 0 while the sender is still producing it.
	Bytes, Total int64
	// ObjectsTotal is the number of objects in the bundle's pack (read
	// from its header), Objects those done, estimated from the bytes
	// (0 while Total is unknown).
	Objects, ObjectsTotal int64
	// Rate is the transfer's average rate in bytes per second since its
	// data started to flow (resumed bytes excluded); ETA the time left at
	// that rate (0 while Total is unknown).
	Rate float64
	ETA  time.Duration
}

// ScanProgress is how far a long scan of a folder has got: the files read
// and hashed so far and their bytes (a first scan reads every file; later
// ones only what changed). In EventScanProgress and FolderStatus.Scan.
type ScanProgress struct {
	Files, Bytes int64
}

// Transfer directions.
const (
	dirSend    = "send"
	dirReceive = "receive"
)

// progressEvery is the least time between two progress events of one
// transfer.
const progressEvery = 250 * time.Millisecond

type transferKey struct {
	folder string
	send   bool
}

// transfer tracks one bundle going to or coming from a peer. Its fields
// are guarded by Engine.mu.
type transfer struct {
	p         Progress
	base      int64     // bytes held when this attempt started (resumed)
	start     time.Time // real clock, of the first data: for the rate
	flowing   bool      // data has come
	lastEmit  time.Time
	header    []byte // the bundle's first bytes until the pack header is read
	headerEnd bool   // the pack header was read, or given up on
}

// transferStart registers a transfer of folder with peer, which starts at
// offset off; head holds the bundle's first bytes when off > 0 (a resume),
// for the object count. End it with transferEnd.
func (e *Engine) transferStart(peer crypto.DeviceID, folder string, send bool, off int64, head []byte) *transfer {
	dir := dirReceive
	if send {
		dir = dirSend
	}
	t := &transfer{p: Progress{Peer: peer, Folder: folder, Direction: dir, Bytes: off}, base: off, start: time.Now()}
	t.lastEmit = t.start
	t.sniff(head)
	e.mu.Lock()
	e.schedPeerLocked(peer).transfers[transferKey{folder, send}] = t
	e.mu.Unlock()
	return t
}

// transferEnd unregisters t (the test hook is told how long its data
// flowed).
func (e *Engine) transferEnd(t *transfer) {
	e.mu.Lock()
	p, elapsed := t.p, time.Since(t.start)
	sp := e.schedPeerLocked(t.p.Peer)
	if k := (transferKey{t.p.Folder, t.p.Direction == dirSend}); sp.transfers[k] == t {
		delete(sp.transfers, k)
	}
	e.mu.Unlock()
	if h := e.cfg.test; h != nil && h.transferred != nil {
		h.transferred(p, elapsed)
	}
}

// transferData records that data (the bytes from offset t.p.Bytes on)
// went, and that the bundle's total length is total (0: not known yet),
// and emits an EventProgress if the last one is 250 ms old.
func (e *Engine) transferData(t *transfer, data []byte, total int64) {
	now := time.Now()
	e.mu.Lock()
	if !t.flowing {
		// The rate counts from the first data, not from the request
		// (the sender's preparation is not the link's speed).
		t.flowing, t.start, t.lastEmit = true, now, now
	}
	if !t.headerEnd && t.p.Bytes == int64(len(t.header)) {
		t.sniff(data)
	}
	t.p.Bytes += int64(len(data))
	e.countTrafficLocked(t.p.Direction, len(data))
	if total > 0 {
		t.p.Total = total
	}
	t.update(now)
	var ev *Progress
	if now.Sub(t.lastEmit) >= progressEvery {
		t.lastEmit = now
		p := t.p
		ev = &p
	}
	e.mu.Unlock()
	if ev != nil {
		e.emit(Event{Kind: EventProgress, Peer: ev.Peer, Folder: ev.Folder, Progress: ev})
	}
}

// transferTotal records the bundle's total length once it is known.
func (e *Engine) transferTotal(t *transfer, total int64) {
	e.mu.Lock()
	t.p.Total = total
	t.update(time.Now())
	e.mu.Unlock()
}

// update derives the rate, ETA and objects done. e.mu must be held.
func (t *transfer) update(now time.Time) {
	if secs := now.Sub(t.start).Seconds(); secs > 0 {
		t.p.Rate = float64(t.p.Bytes-t.base) / secs
	}
	t.p.ETA = 0
	if t.p.Total > 0 && t.p.Rate > 0 && t.p.Bytes < t.p.Total {
		t.p.ETA = time.Duration(float64(t.p.Total-t.p.Bytes) / t.p.Rate * float64(time.Second)).Round(time.Second / 10)
	}
	if t.p.Total > 0 {
		t.p.Objects = t.p.ObjectsTotal * min(t.p.Bytes, t.p.Total) / t.p.Total
	}
}

// maxBundleHeader bounds how much of a bundle is kept to find its pack
// header: a bundle header lists at most a few hundred commits.
const maxBundleHeader = 256 << 10

// packMagic starts the pack after the bundle header's blank line.
var packMagic = []byte("\n\nPACK")

// sniff reads the object count from the pack header (bundle header, a
// blank line, "PACK", version, count: 4 bytes each, big-endian) in the
// bundle's first bytes, fed in order.
func (t *transfer) sniff(p []byte) {
	if t.headerEnd || len(p) == 0 {
		return
	}
	t.header = append(t.header, p[:min(len(p), maxBundleHeader-len(t.header))]...)
	if i := bytes.Index(t.header, packMagic); i >= 0 {
		if hdr := t.header[i+2:]; len(hdr) >= 12 {
			t.p.ObjectsTotal = int64(binary.BigEndian.Uint32(hdr[8:12]))
			t.header, t.headerEnd = nil, true
		}
		return
	}
	if len(t.header) >= maxBundleHeader {
		t.header, t.headerEnd = nil, true
	}
}

// readHead returns the first min(n, maxBundleHeader) bytes of a file, for
// a resumed transfer's object count.
func readHead(r io.ReaderAt, n int64) []byte {
	b := make([]byte, min(n, maxBundleHeader))
	k, _ := r.ReadAt(b, 0)
	return b[:k]
}

// progressLocked lists the transfers with peer d. e.mu must be held.
func (e *Engine) progressLocked(d crypto.DeviceID) []Progress {
	p := e.peers[d]
	if p == nil {
		return nil
	}
	var out []Progress
	for _, t := range p.sched.transfers {
		out = append(out, t.p)
	}
	return out
}

// scanProgress returns the gitstore callback of the store of the folder
// at dir: it keeps FolderStatus.Scan and emits EventScanProgress.
func (e *Engine) scanProgress(dir string) func(gitstore.ScanProgress) {
	return func(p gitstore.ScanProgress) {
		e.mu.Lock()
		var id string
		for _, f := range e.conf.Folders {
			if f.Path == dir {
				id = f.ID
			}
		}
		if id != "" {
			f := e.folderLocked(id)
			f.scan = nil
			if !p.Done {
				f.scan = &ScanProgress{Files: p.Files, Bytes: p.Bytes}
			}
		}
		if id != "" && !p.Published.IsZero() {
			e.announceLocked(id)
		}
		e.mu.Unlock()
		if id != "" && !p.Done {
			e.emit(Event{Kind: EventScanProgress, Folder: id, Scan: &ScanProgress{Files: p.Files, Bytes: p.Bytes}})
		}
	}
}
