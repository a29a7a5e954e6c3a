package sync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/peersync/peersync/crypto"
)

// mailRetry is how long a deposit our configuration does not take yet (an
// unknown sender, a folder not shared, paused or away, a closed window)
// waits at the server before we fetch it again (at once if the
// configuration changes: the sender accepted, the folder shared).
const mailRetry = time.Minute

// mailOutcome is what became of one deposit.
type mailOutcome int

const (
	mailApplied mailOutcome = iota // applied (or nothing new): delete it
	mailDropped                    // refused for good: delete it
	mailHeld                       // not for now: leave it, fetch again after mailRetry
	mailFailed                     // fetching or applying failed: leave it, try next pass
)

// mailboxTake fetches the deposits waiting for us at the rendezvous
// server, oldest first, and deletes at the server each one applied or
// refused for good.
func (e *Engine) mailboxTake(ctx context.Context, ms *mailState) {
	pc := e.rendezvousConn()
	if pc == nil {
		return
	}
	s, resp, err := mailCall(ctx, pc, mailReq{Op: mailList}, nil, e.cfg.Fetch.Idle)
	if err != nil {
		if ctx.Err() == nil && resp.Op != mailErr { // mailErr: a server without a mailbox
			e.log.Debug("mailbox list", "err", err)
		}
		return
	}
	_ = s.Close()
	ms.mu.Lock()
	for id := range ms.held { // gone from the server: forget them
		if !slices.ContainsFunc(resp.Items, func(it mailItem) bool { return it.ID == id }) {
			delete(ms.held, id)
		}
	}
	ms.mu.Unlock()
	e.mu.Lock()
	conf := e.conf // replaced, never modified, by every configuration change
	e.mu.Unlock()
	for _, it := range resp.Items {
		ms.mu.Lock()
		h, held := ms.held[it.ID]
		ms.mu.Unlock()
		if held && h.conf == conf && e.cfg.Now().Before(h.until) {
			continue
		}
		out, err := e.takeDeposit(ctx, pc, it)
		switch out {
		case mailFailed:
			if ctx.Err() == nil {
				e.log.Info("mailbox deposit not taken; trying again later", "id", it.ID, "err", err)
			}
			return
		case mailHeld:
			e.log.Info("mailbox deposit left at the server for now", "id", it.ID, "from", it.From, "why", err)
			ms.mu.Lock()
			ms.held[it.ID] = heldDeposit{until: e.cfg.Now().Add(mailRetry), conf: conf}
			ms.mu.Unlock()
			continue
		}
		ack := mailReq{Op: mailAck, ID: it.ID, Applied: out == mailApplied}
		if s, _, err := mailCall(ctx, pc, ack, nil, e.cfg.Fetch.Idle); err != nil {
			e.log.Info("mailbox acknowledgement failed", "id", it.ID, "err", err)
		} else {
			_ = s.Close()
		}
	}
}

// takeDeposit fetches one deposit into a temporary file, opens and
// verifies it (the whole of it, before anything is applied), checks that
// its verified sender is a peer we receive its folder from, and applies
// the bundle inside through the normal path (ImportBundle: validated
// before anything is written). A refusal for good is reported as an
// EventError with a *MailboxError.
func (e *Engine) takeDeposit(ctx context.Context, pc *peerConn, it mailItem) (mailOutcome, error) {
	refuse := func(folder string, from crypto.DeviceID, err error) (mailOutcome, error) {
		me := &MailboxError{ID: it.ID, From: from, Folder: folder, Err: err}
		e.mailRefused(me)
		return mailDropped, me
	}
	if it.Size > e.cfg.MaxBundleSize+1<<20 {
		return refuse("", it.From, fmt.Errorf("%d bytes is over Config.MaxBundleSize", it.Size))
	}
	dir, err := e.jobDir()
	if err != nil {
		return mailFailed, err
	}
	f, err := os.CreateTemp(dir, "mailbox-in-*")
	if err != nil {
		return mailFailed, fmt.Errorf("sync: %w", err)
	}
	defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()
	s, resp, err := mailCall(ctx, pc, mailReq{Op: mailGet, ID: it.ID}, nil, e.cfg.Fetch.Idle)
	if err != nil {
		return mailFailed, err
	}
	if resp.Op != mailData || resp.Size != it.Size {
		s.Abort()
		return mailFailed, fmt.Errorf("sync: mailbox answered %q of %d bytes for a deposit of %d", resp.Op, resp.Size, it.Size)
	}
	_, err = copyN(f, idleStream{s, e.cfg.Fetch.Idle}, resp.Size)
	_ = s.Close()
	if err != nil {
		return mailFailed, fmt.Errorf("sync: fetch mailbox deposit: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return mailFailed, fmt.Errorf("sync: %w", err)
	}
	vf, sender, err := crypto.OpenVerified(ctx, f, e.cfg.Identity, dir)
	if err != nil {
		if ctx.Err() != nil {
			return mailFailed, err
		}
		return refuse("", it.From, err)
	}
	defer vf.Close()
	folder, err := readMailHeader(vf)
	if err != nil {
		return refuse("", sender, err)
	}
	e.mu.Lock()
	_, known := e.conf.peer(sender)
	receives := e.conf.receivesFrom(sender, folder)
	e.mu.Unlock()
	switch {
	case !known:
		return mailHeld, fmt.Errorf("sender %s is not in the sync table", sender.Short())
	case !receives:
		return mailHeld, fmt.Errorf("folder %q is not received from %s (not shared, paused, or direction send)", folder, sender.Short())
	case !e.mayExchange(sender, folder):
		return mailHeld, fmt.Errorf("the sync window with %s is closed", sender.Short())
	case e.folderGone(folder):
		return mailHeld, fmt.Errorf("folder %q is away", folder)
	}
	res, err := e.ImportBundle(ctx, folder, vf, sender.String())
	if err != nil {
		if permanentApplyError(err) {
			return refuse(folder, sender, err)
		}
		return mailFailed, err
	}
	e.setKnown(sender, folder, res.PeerHead)
	e.log.Info("applied a bundle from the mailbox", "from", sender, "folder", folder, "head", res.Head)
	return mailApplied, nil
}

// readMailHeader reads the plaintext header of a deposit (mailMagic, the
// folder line, a blank line) from the start of vf, leaves vf at the
// bundle, and returns the folder ID.
func readMailHeader(vf *crypto.VerifiedFile) (string, error) {
	buf := make([]byte, len(mailMagic)+len("folder \n\n")+64)
	n, err := vf.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("sync: read mailbox deposit: %w", err)
	}
	buf = buf[:n]
	rest, ok := bytes.CutPrefix(buf, []byte(mailMagic+"folder "))
	end := bytes.Index(rest, []byte("\n\n"))
	if !ok || end < 0 {
		return "", errors.New("sync: not a mailbox deposit (bad header)")
	}
	folder := string(rest[:end])
	if err := ValidFolderID(folder); err != nil || strings.ContainsAny(folder, "\n") {
		return "", fmt.Errorf("sync: mailbox deposit for a bad folder ID %q", folder)
	}
	if _, err := vf.Seek(int64(len(buf)-len(rest)+end+2), io.SeekStart); err != nil {
		return "", fmt.Errorf("sync: %w", err)
	}
	return folder, nil
}
