package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/mailbox"
	"github.com/peersync/peersync/transport"
)

// MailboxConfig configures the blind mailbox (see the package doc,
// Mailbox). Its zero value turns it on with the default limits.
type MailboxConfig struct {
	// Off turns the mailbox off: a device neither leaves bundles at its
	// rendezvous nor picks any up there, and a rendezvous server
	// (ServeRendezvous) takes no deposits.
	Off bool
	// Limits bound each recipient's box on a rendezvous server: bytes
	// (default 256 MiB), deposits (256) and how long one is kept (30
	// days); the oldest are dropped first.
	Limits mailbox.Limits
}

// EventMailboxDeposited: a bundle of Folder up to Head was left for Peer,
// which is offline, at the rendezvous server's mailbox.
const EventMailboxDeposited EventKind = "mailbox-deposited"

// MailboxError is a deposit refused by its recipient: it could not be
// opened or verified (a forged or damaged deposit; Err wraps one of
// crypto's errors), or its bundle was refused (Err wraps a
// *gitstore.BundleError). Nothing of it was applied and the server is told
// to delete it. It comes in an EventError.
type MailboxError struct {
	ID     string          // the deposit, as the server names it
	From   crypto.DeviceID // the sender: verified if Err is not crypto's, else as the server claims
	Folder string          // "" when the deposit could not be opened
	Err    error
}

// Error says which deposit was refused, from whom, and why.
func (e *MailboxError) Error() string {
	what := "mailbox deposit " + e.ID
	if e.Folder != "" {
		what += " of folder " + e.Folder
	}
	return fmt.Sprintf("sync: %s from %s refused: %v", what, e.From.Short(), e.Err)
}

// Unwrap returns the reason: crypto's error, or the bundle's.
func (e *MailboxError) Unwrap() error { return e.Err }

// MailboxBytes returns the bytes held in this server's mailbox for all
// recipients together: 0 on a device, while not running, or with
// Config.Mailbox.Off. Only sizes and DeviceIDs of deposits are known here.
func (e *Engine) MailboxBytes() int64 {
	e.mu.Lock()
	ms := e.mailLocked()
	e.mu.Unlock()
	if st := ms.serverStore(); st != nil {
		return st.Bytes()
	}
	return 0
}

// mailState is the mailbox's part of a Run: the server's store, and the
// device's record of what it deposited and what it left at the server for
// later. Its fields are guarded by mu.
type mailState struct {
	e  *Engine
	mu gosync.Mutex

	opened bool           // the server's store was opened (or failed to)
	store  *mailbox.Store // the server's boxes; nil on a device
	busy   bool           // a pass (pickups, then deposits) runs
	sent   *mailSent      // what was deposited, per peer and folder (mailbox-sent.json); nil until loaded
	// held are deposits that wait at the server until our configuration
	// takes them (an unknown sender, a folder not shared yet): not fetched
	// again until the configuration changes or mailRetry has passed.
	held map[string]heldDeposit
}

// heldDeposit is a deposit left at the server for now.
type heldDeposit struct {
	until time.Time // fetched again from then on
	conf  *config   // or as soon as the configuration is another one
}

// mailLocked returns the Run's mailbox state, made on first use; nil while
// not running. e.mu must be held.
func (e *Engine) mailLocked() *mailState {
	r := e.run
	if r == nil {
		return nil
	}
	if r.mail == nil {
		r.mail = &mailState{e: e, held: map[string]heldDeposit{}}
	}
	return r.mail
}

// serverStore returns the server's store, opening it on first use: nil on
// a device (no ServeRendezvous), with the mailbox off, or when it cannot
// be opened (logged).
func (ms *mailState) serverStore() *mailbox.Store {
	if ms == nil {
		return nil
	}
	e := ms.e
	if !e.cfg.NAT.ServeRendezvous || e.cfg.Mailbox.Off {
		return nil
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if !ms.opened {
		ms.opened = true
		st, err := mailbox.Open(mailbox.Config{Dir: filepath.Join(e.cfg.Home, "mailbox"), Limits: e.cfg.Mailbox.Limits, Now: e.cfg.Now})
		if err != nil {
			e.log.Error("mailbox unavailable", "err", err)
		}
		ms.store = st
	}
	return ms.store
}

// mailboxTick runs a pass in the background (one at a time): first the
// pickups, then the deposits, so that what was just applied is known to
// be the peer's before anything is deposited for it. It also drops the
// server's expired deposits.
// The tick loop calls it after every scan, and a registration at the
// rendezvous at once.
func (e *Engine) mailboxTick(ctx context.Context) {
	if e.cfg.Mailbox.Off {
		return
	}
	e.mu.Lock()
	ms := e.mailLocked()
	e.mu.Unlock()
	if ms == nil {
		return
	}
	if st := ms.serverStore(); st != nil {
		for _, it := range st.Expire() {
			e.log.Info("mailbox deposit expired", "from", it.From, "to", it.To, "size", it.Size)
		}
	}
	if e.rendezvous() == nil {
		return
	}
	ms.mu.Lock()
	busy := ms.busy
	ms.busy = true
	ms.mu.Unlock()
	if busy {
		return
	}
	e.wg.Go(func() {
		defer func() { ms.mu.Lock(); ms.busy = false; ms.mu.Unlock() }()
		e.mailboxTake(ctx, ms)
		e.mailboxSend(ctx, ms)
	})
}

// rendezvousConn returns the connection to our rendezvous, nil if down.
func (e *Engine) rendezvousConn() *peerConn {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rvPeer.IsZero() {
		return nil
	}
	return e.connLocked(e.rvPeer)
}

// The mailbox protocol. A stream starting with {"type":"mailbox"} carries
// one request (a mailReq frame) and its answer (mailResp frames, raw bytes
// where said), then ends:
//
//	{"op":"deposit","to":ID,"size":N,"replaces":[ID…]}
//	    ← {"op":"ready"}, then N bytes of a sealed stream → ← {"op":"stored","id":ID}
//	{"op":"list"}          ← {"op":"list","items":[{"id","from","size","at"}…]}
//	{"op":"get","id":ID}   ← {"op":"data","size":N}, then N bytes
//	{"op":"ack","id":ID,"applied":true}   ← {"op":"ok"}
//	{"op":"receipts"}      ← {"op":"receipts","receipts":[{"id","to","applied"}…],"held":[ID…]}
//
// Any answer may instead be {"op":"error","error":"…"}. A device may list,
// get and ack only its own box, and deposit only for a device in the
// server's table. An ack leaves the sender a receipt (applied: the
// recipient applied the bundle; else it refused it), which "receipts"
// hands over once, with the IDs of the asker's deposits still held.
const (
	mailDeposit = "deposit"
	mailList    = "list"
	mailGet     = "get"
	mailAck     = "ack"
	mailRcpts   = "receipts"
	mailReady   = "ready"
	mailStored  = "stored"
	mailData    = "data"
	mailOK      = "ok"
	mailErr     = "error"
)

// maxMailList bounds the deposits one list answer names (a box holds
// more only with a raised Limits.MaxItems; the rest come once these are
// taken).
const maxMailList = 200

type mailReq struct {
	Op       string          `json:"op"`
	To       crypto.DeviceID `json:"to,omitzero"`
	Size     int64           `json:"size,omitempty"`
	Replaces []string        `json:"replaces,omitempty"`
	ID       string          `json:"id,omitempty"`
	Applied  bool            `json:"applied,omitempty"` // ack
}

type mailResp struct {
	Op       string        `json:"op"`
	ID       string        `json:"id,omitempty"`
	Items    []mailItem    `json:"items,omitempty"`
	Receipts []mailReceipt `json:"receipts,omitempty"`
	Held     []string      `json:"held,omitempty"` // receipts: the asker's deposits still held
	Size     int64         `json:"size,omitempty"`
	Error    string        `json:"error,omitempty"`
}

type mailReceipt struct {
	ID      string          `json:"id"`
	To      crypto.DeviceID `json:"to"`
	Applied bool            `json:"applied,omitempty"`
}

type mailItem struct {
	ID   string          `json:"id"`
	From crypto.DeviceID `json:"from"`
	Size int64           `json:"size"`
	At   time.Time       `json:"at"`
}

func decodeMailReq(b []byte) (mailReq, error) {
	var r mailReq
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("sync: malformed mailbox request: %w", err)
	}
	switch r.Op {
	case mailDeposit:
		if r.To.IsZero() || r.Size <= 0 || len(r.Replaces) > 16 {
			return r, fmt.Errorf("sync: bad mailbox deposit (to %s, size %d, %d replaced)", r.To.Short(), r.Size, len(r.Replaces))
		}
		for _, id := range r.Replaces {
			if !bundleIDRe.MatchString(id) {
				return r, fmt.Errorf("sync: bad mailbox deposit ID %q", id)
			}
		}
	case mailGet, mailAck:
		if !bundleIDRe.MatchString(r.ID) {
			return r, fmt.Errorf("sync: bad mailbox deposit ID %q", r.ID)
		}
	case mailList, mailRcpts:
	default:
		return r, fmt.Errorf("sync: unknown mailbox request %q", r.Op)
	}
	return r, nil
}

func decodeMailResp(b []byte) (mailResp, error) {
	var r mailResp
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("sync: malformed mailbox answer: %w", err)
	}
	switch r.Op {
	case mailErr:
		return r, fmt.Errorf("sync: the mailbox refused: %q", r.Error)
	case mailStored:
		if !bundleIDRe.MatchString(r.ID) {
			return r, fmt.Errorf("sync: bad mailbox deposit ID %q", r.ID)
		}
	case mailRcpts:
		if len(r.Receipts) > 256 || len(r.Held) > 4096 {
			return r, fmt.Errorf("sync: %d mailbox receipts, %d held", len(r.Receipts), len(r.Held))
		}
	case mailList:
		if len(r.Items) > maxMailList {
			return r, fmt.Errorf("sync: mailbox list of %d deposits", len(r.Items))
		}
		for _, it := range r.Items {
			if !bundleIDRe.MatchString(it.ID) || it.Size <= 0 {
				return r, fmt.Errorf("sync: bad mailbox deposit %q of %d bytes", it.ID, it.Size)
			}
		}
	case mailData:
		if r.Size <= 0 {
			return r, fmt.Errorf("sync: mailbox data of %d bytes", r.Size)
		}
	case mailReady, mailOK:
	default:
		return r, fmt.Errorf("sync: unknown mailbox answer %q", r.Op)
	}
	return r, nil
}

// idleStream bounds each read and write on a stream by an idle limit
// rather than a deadline for the whole transfer.
type idleStream struct {
	s    *transport.Stream
	idle time.Duration
}

func (i idleStream) Read(p []byte) (int, error) {
	_ = i.s.SetReadDeadline(time.Now().Add(i.idle))
	return i.s.Read(p)
}

func (i idleStream) Write(p []byte) (int, error) {
	_ = i.s.SetWriteDeadline(time.Now().Add(i.idle))
	return i.s.Write(p)
}

// serveMailbox answers one mailbox request from pc's device on s (see the
// protocol above). The store is blind: it learns sizes and DeviceIDs, and
// checks only that a deposit starts like a sealed stream.
func (e *Engine) serveMailbox(pc *peerConn, s *transport.Stream) error {
	rw := idleStream{s, e.cfg.Fetch.Idle}
	var req mailReq
	answer := func(r mailResp) error { return writeJSON(rw, r) }
	// A refusal is an answer, not a failure of the stream: it is sent
	// and the stream closed normally, so the asker reads why.
	refuse := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		e.log.Info("mailbox request refused", "peer", pc.peer, "op", req.Op, "why", msg)
		return answer(mailResp{Op: mailErr, Error: msg})
	}
	_ = s.SetReadDeadline(time.Now().Add(streamTimeout))
	b, err := transport.ReadFrame(s, maxMessage)
	if err != nil {
		return err
	}
	req, err = decodeMailReq(b)
	if err != nil {
		return refuse("%v", err)
	}
	e.mu.Lock()
	ms := e.mailLocked()
	_, known := e.conf.peer(req.To)
	e.mu.Unlock()
	st := ms.serverStore() // opened on first use: not under e.mu
	if st == nil {
		return refuse("this device keeps no mailbox")
	}
	switch req.Op {
	case mailDeposit:
		if !known || req.To == pc.peer || req.To == e.DeviceID() {
			return refuse("%s is not a device this server keeps mail for", req.To.Short())
		}
		if q := st.Limits().Quota; req.Size > q {
			return refuse("%v (%d bytes, quota %d)", mailbox.ErrTooLarge, req.Size, q)
		}
		if err := answer(mailResp{Op: mailReady}); err != nil {
			return err
		}
		prefix := make([]byte, crypto.SealedPrefixLen)
		if _, err := io.ReadFull(rw, prefix); err != nil {
			return err
		}
		if !crypto.IsSealed(prefix) || req.Size < int64(len(prefix)) {
			return refuse("not a sealed stream: the mailbox holds only bundles sealed to their recipient")
		}
		it, dropped, err := st.Put(pc.peer, req.To, io.MultiReader(bytes.NewReader(prefix), rw), req.Size, req.Replaces)
		if err != nil {
			return refuse("%v", err)
		}
		for _, d := range dropped {
			e.log.Info("mailbox full: oldest deposit dropped", "from", d.From, "to", d.To, "size", d.Size)
		}
		e.log.Info("mailbox deposit", "from", pc.peer, "to", req.To, "size", it.Size, "held", st.Bytes())
		return answer(mailResp{Op: mailStored, ID: it.ID})
	case mailList:
		var items []mailItem
		for _, it := range st.List(pc.peer) {
			if len(items) == maxMailList {
				break
			}
			items = append(items, mailItem{ID: it.ID, From: it.From, Size: it.Size, At: it.At})
		}
		return answer(mailResp{Op: mailList, Items: items})
	case mailGet:
		f, it, err := st.Read(pc.peer, req.ID)
		if err != nil {
			return refuse("%v", err)
		}
		defer f.Close()
		if err := answer(mailResp{Op: mailData, Size: it.Size}); err != nil {
			return err
		}
		if _, err := copyN(rw, f, it.Size); err != nil {
			return fmt.Errorf("sync: send mailbox deposit: %w", err)
		}
		return nil
	case mailRcpts:
		var out []mailReceipt
		for _, r := range st.Receipts(pc.peer) {
			out = append(out, mailReceipt{ID: r.ID, To: r.To, Applied: r.Applied})
		}
		held := st.HeldFrom(pc.peer)
		return answer(mailResp{Op: mailRcpts, Receipts: out, Held: held[:min(len(held), 4096)]})
	default: // mailAck
		if err := st.Take(pc.peer, req.ID, req.Applied); err != nil {
			return refuse("%v", err)
		}
		e.log.Info("mailbox deposit taken", "to", pc.peer, "held", st.Bytes())
		return answer(mailResp{Op: mailOK})
	}
}

// mailCall opens a mailbox stream on pc, sends req and reads the first
// answer. For a deposit, body then writes the data after "ready" and the
// "stored" answer is returned. The caller closes the stream.
func mailCall(ctx context.Context, pc *peerConn, req mailReq, body func(w io.Writer) error, idle time.Duration) (*transport.Stream, mailResp, error) {
	s, err := pc.c.OpenStream(ctx)
	if err != nil {
		return nil, mailResp{}, err
	}
	rw := idleStream{s, idle}
	if err := writeJSON(rw, message{Type: msgMailbox}); err != nil {
		s.Abort()
		return nil, mailResp{}, err
	}
	if err := writeJSON(rw, req); err != nil {
		s.Abort()
		return nil, mailResp{}, err
	}
	read := func() (mailResp, error) {
		_ = s.SetReadDeadline(time.Now().Add(max(idle, streamTimeout)))
		b, err := transport.ReadFrame(s, maxMessage)
		if err != nil {
			return mailResp{}, err
		}
		return decodeMailResp(b)
	}
	resp, err := read()
	if err == nil && body != nil {
		if resp.Op != mailReady {
			err = fmt.Errorf("sync: mailbox answered %q to a deposit", resp.Op)
		} else if err = body(rw); err == nil {
			resp, err = read()
		}
	}
	if err != nil {
		s.Abort()
		return nil, resp, err
	}
	return s, resp, nil
}

// copyN copies exactly n bytes (io.ErrUnexpectedEOF if src ends early).
func copyN(dst io.Writer, src io.Reader, n int64) (int64, error) {
	c, err := io.CopyN(dst, src, n)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return c, err
}

// mailRefused reports a deposit refused for good.
func (e *Engine) mailRefused(me *MailboxError) {
	e.log.Warn("mailbox deposit refused", "id", me.ID, "from", me.From, "folder", me.Folder, "err", me.Err)
	e.emit(Event{Kind: EventError, Peer: me.From, Folder: me.Folder, Err: me})
}

// permanentApplyError: an apply error that waiting will not cure.
func permanentApplyError(err error) bool {
	var be *gitstore.BundleError
	return errors.As(err, &be)
}
