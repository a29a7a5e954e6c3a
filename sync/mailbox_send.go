package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// mailMagic starts the plaintext inside a deposit's seal; a "folder" line
// and a blank line follow, then the git bundle. The seal signs it all, so
// the folder ID is the sender's word too.
const mailMagic = "peersync-mailbox/1\n"

// mailSentFile records a device's deposits, so that a restart neither
// deposits the same head again nor leaves the superseded deposit behind.
const mailSentFile = "mailbox-sent.json"

// mailSent is mailbox-sent.json: per peer and folder, the last deposit.
type mailSent struct {
	Version int           `json:"version"`
	Sent    []sentDeposit `json:"sent,omitempty"`
}

// sentDeposit is the last bundle of Folder deposited for Peer.
type sentDeposit struct {
	Peer   crypto.DeviceID `json:"peer"`
	Folder string          `json:"folder"`
	Since  gitstore.Hash   `json:"since,omitzero"`  // the peer's known head it started from
	Head   gitstore.Hash   `json:"head"`            // our head it carried
	ID     string          `json:"id,omitempty"`    // as the server named it; "" when refused
	At     time.Time       `json:"at"`              // when
	Err    string          `json:"error,omitempty"` // why the server refused it
}

// sentLocked returns the deposit record, loading it on first use. ms.mu
// must be held.
func (ms *mailState) sentLocked() *mailSent {
	if ms.sent == nil {
		ms.sent = &mailSent{Version: 1}
		if err := ms.e.home.load(docMailSent, ms.sent); err != nil {
			ms.e.log.Warn("mailbox record unreadable; starting afresh", "err", err)
			ms.sent = &mailSent{Version: 1}
		}
	}
	return ms.sent
}

// lastSent returns the last deposit for peer and folder (zero if none).
func (ms *mailState) lastSent(peer crypto.DeviceID, folder string) sentDeposit {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	s := ms.sentLocked()
	if i := slices.IndexFunc(s.Sent, func(d sentDeposit) bool { return d.Peer == peer && d.Folder == folder }); i >= 0 {
		return s.Sent[i]
	}
	return sentDeposit{}
}

// recordSent replaces the record of peer and folder with d and saves it.
func (ms *mailState) recordSent(d sentDeposit) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	s := ms.sentLocked()
	s.Sent = slices.DeleteFunc(s.Sent, func(o sentDeposit) bool { return o.Peer == d.Peer && o.Folder == d.Folder })
	s.Sent = append(s.Sent, d)
	if err := ms.e.home.save(docMailSent, s); err != nil {
		ms.e.log.Warn("saving the mailbox record", "err", err)
	}
}

// mailTarget is a peer and folder a deposit may be due for.
type mailTarget struct {
	peer   crypto.DeviceID
	folder string
	known  gitstore.Hash // what the peer is known to have
}

// mailboxSend deposits, for every peer that is not connected and every
// folder we send it that is not shared with the rendezvous server (the
// server mirrors those itself), the bundle of what the peer lacks, sealed
// to it, at the server: from what the sync table says the peer has, up to
// our head. Each deposit replaces the previous one for that peer and
// folder, so the box holds one bundle per folder, which applies on its own.
func (e *Engine) mailboxSend(ctx context.Context, ms *mailState) {
	pc := e.rendezvousConn()
	if pc == nil {
		return
	}
	e.mailReceipts(ctx, pc, ms)
	e.mu.Lock()
	var todo []mailTarget
	for _, p := range e.conf.Peers {
		if p.Device == pc.peer || e.connLocked(p.Device) != nil {
			continue
		}
		for _, f := range p.Folders {
			if e.conf.sendsTo(p.Device, f) && !e.conf.shares(pc.peer, f) {
				todo = append(todo, mailTarget{p.Device, f, e.tab.Known[p.Device][f]})
			}
		}
	}
	e.mu.Unlock()
	for _, t := range todo {
		if ctx.Err() != nil {
			return
		}
		if !e.mayExchange(t.peer, t.folder) {
			continue
		}
		st, err := e.store(t.folder)
		if err != nil {
			continue
		}
		head, err := st.Head()
		if err != nil || head.IsZero() || head == t.known {
			continue
		}
		prev := ms.lastSent(t.peer, t.folder)
		if prev.Head == head {
			continue
		}
		id, err := e.deposit(ctx, pc, st, t, prev.ID)
		var refused *mailRefusal
		switch {
		case errors.Is(err, gitstore.ErrNothingToSend):
			ms.recordSent(sentDeposit{Peer: t.peer, Folder: t.folder, Since: t.known, Head: head, ID: prev.ID, At: e.cfg.Now()})
		case errors.As(err, &refused):
			// Not again until the head moves: a bundle over the quota stays so.
			e.log.Warn("mailbox deposit refused by the server", "peer", t.peer, "folder", t.folder, "err", err)
			e.emit(Event{Kind: EventError, Peer: t.peer, Folder: t.folder, Err: err})
			ms.recordSent(sentDeposit{Peer: t.peer, Folder: t.folder, Head: head, At: e.cfg.Now(), Err: refused.msg})
		case err != nil:
			if ctx.Err() == nil {
				e.log.Info("mailbox deposit failed; retrying later", "peer", t.peer, "folder", t.folder, "err", err)
			}
			return // the connection to the server is likely gone
		default:
			ms.recordSent(sentDeposit{Peer: t.peer, Folder: t.folder, Since: t.known, Head: head, ID: id, At: e.cfg.Now()})
			e.log.Info("left a bundle in the mailbox", "peer", t.peer, "folder", t.folder, "head", head)
			e.emit(Event{Kind: EventMailboxDeposited, Peer: t.peer, Folder: t.folder, Head: head})
		}
	}
}

// mailReceipts asks the server what became of our deposits. A peer that
// applied one has the head it carried: the sync table says so (unless it
// learned something newer about that peer meanwhile), so the next deposit
// starts from there instead of carrying it all again. A deposit neither
// held any more nor taken (it expired, or newer deposits pushed it out)
// is forgotten, so the next pass deposits again.
func (e *Engine) mailReceipts(ctx context.Context, pc *peerConn, ms *mailState) {
	s, resp, err := mailCall(ctx, pc, mailReq{Op: mailRcpts}, nil, e.cfg.Fetch.Idle)
	if err != nil {
		return
	}
	_ = s.Close()
	ms.mu.Lock()
	var lost []sentDeposit
	for _, d := range ms.sentLocked().Sent {
		taken := slices.ContainsFunc(resp.Receipts, func(r mailReceipt) bool { return r.ID == d.ID })
		if d.ID != "" && !taken && !slices.Contains(resp.Held, d.ID) {
			lost = append(lost, d)
		}
	}
	ms.mu.Unlock()
	for _, d := range lost {
		e.log.Info("our mailbox deposit is gone untaken (expired or pushed out); depositing again", "peer", d.Peer, "folder", d.Folder)
		ms.recordSent(sentDeposit{Peer: d.Peer, Folder: d.Folder, At: e.cfg.Now()})
	}
	for _, r := range resp.Receipts {
		ms.mu.Lock()
		sent := ms.sentLocked().Sent
		i := slices.IndexFunc(sent, func(d sentDeposit) bool { return d.ID == r.ID && d.Peer == r.To })
		var d sentDeposit
		if i >= 0 {
			d = sent[i]
		}
		ms.mu.Unlock()
		if i < 0 {
			continue
		}
		taken := d
		taken.ID = "" // gone from the server, and not lost
		ms.recordSent(taken)
		switch {
		case !r.Applied:
			e.log.Warn("our mailbox deposit was refused by its recipient", "peer", d.Peer, "folder", d.Folder, "head", d.Head)
		default:
			e.mu.Lock()
			unchanged := e.tab.Known[d.Peer][d.Folder] == d.Since
			e.mu.Unlock()
			if unchanged {
				e.setKnown(d.Peer, d.Folder, d.Head)
			}
			e.log.Info("our mailbox deposit was applied", "peer", d.Peer, "folder", d.Folder, "head", d.Head)
		}
	}
}

// mailRefusal is the server's answer "error" to a deposit.
type mailRefusal struct{ msg string }

func (r *mailRefusal) Error() string { return "sync: the mailbox refused the deposit: " + r.msg }

// deposit seals the bundle of t's folder since t.known to t.peer into a
// temporary file and leaves it at the server over pc, replacing the
// deposit named replaces ("" = none). It returns the deposit's ID.
func (e *Engine) deposit(ctx context.Context, pc *peerConn, st *gitstore.Store, t mailTarget, replaces string) (string, error) {
	dir, err := e.jobDir()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "mailbox-out-*")
	if err != nil {
		return "", fmt.Errorf("sync: %w", err)
	}
	defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()
	sw, err := crypto.Seal(ctx, f, []crypto.DeviceID{t.peer}, e.cfg.Identity)
	if err != nil {
		return "", fmt.Errorf("sync: seal: %w", err)
	}
	if _, err := fmt.Fprintf(sw, "%sfolder %s\n\n", mailMagic, t.folder); err != nil {
		return "", fmt.Errorf("sync: seal: %w", err)
	}
	var since []gitstore.Hash
	if !t.known.IsZero() {
		since = []gitstore.Hash{t.known}
	}
	if _, err := st.WriteBundle(ctx, sw, since); err != nil {
		return "", err
	}
	if err := sw.Close(); err != nil {
		return "", fmt.Errorf("sync: seal: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return "", fmt.Errorf("sync: %w", err)
	}
	req := mailReq{Op: mailDeposit, To: t.peer, Size: size}
	if replaces != "" {
		req.Replaces = []string{replaces}
	}
	s, resp, err := mailCall(ctx, pc, req, func(w io.Writer) error {
		_, err := copyN(w, f, size)
		return err
	}, e.cfg.Fetch.Idle)
	if err != nil {
		if resp.Op == mailErr {
			return "", &mailRefusal{resp.Error}
		}
		return "", err
	}
	_ = s.Close()
	return resp.ID, nil
}
