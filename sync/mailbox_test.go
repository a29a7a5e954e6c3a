package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/mailbox"
)

// mailNet is a rendezvous server with a mailbox and two devices a and b
// sharing "docs" through it, neither knowing the other's address.
type mailNet struct {
	srv, a, b *node
	rv        *RendezvousConfig
}

func newMailNet(t testing.TB, serverCfg func(*Config)) *mailNet {
	t.Helper()
	srv := newNodeCfg(t, "server", func(c *Config) {
		c.NAT.ServeRendezvous = true
		if serverCfg != nil {
			serverCfg(c)
		}
	})
	srv.start(t)
	rv := &RendezvousConfig{Device: srv.e.DeviceID(), Addr: srv.e.Addr().String()}
	device := func(c *Config) { c.NAT.Rendezvous, c.NAT.STUN = rv, []string{} }
	a, b := newNodeCfg(t, "a", device), newNodeCfg(t, "b", device)
	require.NoError(t, srv.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Name: "a"}))
	require.NoError(t, srv.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Name: "b"}))
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Name: "b", Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Name: "a", Folders: []string{"docs"}}))
	return &mailNet{srv: srv, a: a, b: b, rv: rv}
}

// stop closes n's engine and waits for its Run to return.
func stop(t testing.TB, n *node) {
	t.Helper()
	require.NoError(t, n.e.Close())
	select {
	case <-n.done:
		require.NoError(t, n.runErr)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

// restart opens n's home again with its identity (a device coming back).
func restart(t *testing.T, n *node, rv *RendezvousConfig) *node {
	t.Helper()
	e, err := New(Config{
		Home: n.e.cfg.Home, Identity: n.e.cfg.Identity, Network: NetworkConfig{ListenAddr: "127.0.0.1:0"},
		ScanInterval: 100 * time.Millisecond, DialInterval: 100 * time.Millisecond,
		NAT: NATConfig{Rendezvous: rv, STUN: []string{}},
	})
	require.NoError(t, err)
	return &node{e: e, dir: n.dir}
}

// events collects an engine's events until it closes.
type events struct {
	mu   gosync.Mutex
	list []Event
}

func collect(e *Engine) *events {
	ev := &events{}
	go func() {
		for x := range e.Events() {
			ev.mu.Lock()
			ev.list = append(ev.list, x)
			ev.mu.Unlock()
		}
	}()
	return ev
}

func (ev *events) find(match func(Event) bool) (Event, bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, x := range ev.list {
		if match(x) {
			return x, true
		}
	}
	return Event{}, false
}

func (ev *events) all() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var out []string
	for _, x := range ev.list {
		out = append(out, x.String())
	}
	return out
}

func (ev *events) count(match func(Event) bool) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, x := range ev.list {
		if match(x) {
			n++
		}
	}
	return n
}

func deposited(x Event) bool { return x.Kind == EventMailboxDeposited }

// boxFiles lists the deposits in the server's mailbox for a device.
func boxFiles(t *testing.T, srv *node, to *node) []string {
	t.Helper()
	var out []string
	root := filepath.Join(srv.e.cfg.Home, "mailbox", to.e.DeviceID().String())
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(p)) != "tmp" {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// authorLog is `git log` of a folder's history, one "author subject" a
// line; "" while there is none (it is polled: files are checked out before
// the ref moves).
func authorLog(dir string) string {
	out, err := exec.Command("git", "--git-dir", filepath.Join(dir, ".peersync"), "log", "--format=%an %s", "main").Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// TestMailboxOfflineDelivery: a change travels A → server → B with A and B
// never online together, and back B → server → A the same way; the
// server's disk holds only sealed files (no plaintext marker anywhere in
// its home), and each deposit is deleted once its recipient has applied it.
func TestMailboxOfflineDelivery(t *testing.T) {
	n := newMailNet(t, nil)
	const marker = "PLAINTEXT-MARKER-7f3e1c"
	write(t, n.a.dir, "letter.txt", marker+" from a")
	aEv := collect(n.a.e)
	n.a.start(t)
	eventually(t, "a leaves the bundle at the server", func() bool {
		_, ok := aEv.find(deposited)
		return ok && len(boxFiles(t, n.srv, n.b)) == 1
	})
	x, _ := aEv.find(deposited)
	assert.Equal(t, n.b.e.DeviceID(), x.Peer)
	assert.Equal(t, "docs", x.Folder)
	stop(t, n.a) // a goes offline before b ever comes

	// The server holds it, unreadable: sealed, and nowhere in its home is
	// the plaintext.
	files := boxFiles(t, n.srv, n.b)
	require.Len(t, files, 1)
	assert.Contains(t, files[0], filepath.Join("mailbox", n.b.e.DeviceID().String()), "filed under its recipient")
	assert.Contains(t, filepath.Base(files[0]), n.a.e.DeviceID().String(), "and its sender")
	fi, err := os.Stat(files[0])
	require.NoError(t, err)
	assert.Equal(t, fi.Size(), n.srv.e.MailboxBytes())
	head := make([]byte, crypto.SealedPrefixLen)
	f, err := os.Open(files[0])
	require.NoError(t, err)
	_, err = io.ReadFull(f, head)
	require.NoError(t, f.Close())
	require.NoError(t, err)
	assert.True(t, crypto.IsSealed(head), "the deposit is a sealed stream")
	require.NoError(t, filepath.WalkDir(n.srv.e.cfg.Home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.NotContains(t, string(b), marker, "plaintext on the server's disk: %s", p)
		return nil
	}))

	n.b.start(t)
	eventually(t, "b applies a's bundle from the mailbox", func() bool {
		return fileIs(n.b.dir, "letter.txt", marker+" from a")() && strings.Contains(authorLog(n.b.dir), "a add letter.txt")
	})
	eventually(t, "the deposit is deleted once applied", func() bool {
		return len(boxFiles(t, n.srv, n.b)) == 0 && n.srv.e.MailboxBytes() == 0
	})
	gitIn(t, n.b.dir, "fsck", "--strict")

	// And back, while a is offline.
	bEv := collect(n.b.e)
	write(t, n.b.dir, "reply.txt", "from b")
	eventually(t, "b leaves its reply", func() bool {
		_, ok := bEv.find(func(x Event) bool { return deposited(x) && x.Peer == n.a.e.DeviceID() })
		return ok
	})
	stop(t, n.b)
	a2 := restart(t, n.a, n.rv)
	a2.start(t)
	eventually(t, "a applies b's reply from the mailbox", func() bool {
		return fileIs(a2.dir, "reply.txt", "from b")() && strings.Contains(authorLog(a2.dir), "b add reply.txt")
	})
	eventually(t, "a knows what b has", func() bool {
		st := a2.e.Status()
		return len(st.Peers) == 1 && st.Peers[0].Known["docs"] == st.Folders[0].Head
	})
	eventually(t, "the mailbox is empty", func() bool { return n.srv.e.MailboxBytes() == 0 })
}

// TestMailboxQuotaAndExpiry: a deposit over the recipient's quota is
// refused by the server with a clear error to the sender and the earlier
// deposit stays; deposits past their expiry are dropped.
func TestMailboxQuotaAndExpiry(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	n := newMailNet(t, func(c *Config) {
		c.Mailbox.Limits = mailbox.Limits{Quota: 64 << 10, Expiry: time.Hour}
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	aEv := collect(n.a.e)
	write(t, n.a.dir, "small.txt", "fits")
	n.a.start(t)
	eventually(t, "the small deposit is held", func() bool { return n.srv.e.MailboxBytes() > 0 })
	held := n.srv.e.MailboxBytes()

	big := make([]byte, 200<<10) // incompressible: the bundle stays over 64 KiB
	_, _ = rand.Read(big)
	// Written elsewhere and renamed in, so the watcher never commits it half written.
	tmp := filepath.Join(t.TempDir(), "big.bin")
	require.NoError(t, os.WriteFile(tmp, big, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(n.a.dir, "big.bin")))
	eventually(t, "the sender is told the deposit is over the quota", func() bool {
		_, ok := aEv.find(func(x Event) bool {
			return x.Kind == EventError && x.Err != nil && strings.Contains(x.Err.Error(), "larger than the recipient's quota")
		})
		return ok
	})
	assert.Equal(t, held, n.srv.e.MailboxBytes(), "the earlier deposit stays")
	assert.Equal(t, 1, aEv.count(deposited), "one deposit made, the big one refused")
	stop(t, n.a)

	now.Add(int64(2 * time.Hour))
	eventually(t, "an expired deposit is dropped", func() bool {
		return n.srv.e.MailboxBytes() == 0 && len(boxFiles(t, n.srv, n.b)) == 0
	})
}

// TestMailboxRefusesForgedDeposits: deposits b cannot open or whose
// bundle is hostile are refused with a clear error (a *MailboxError, also
// deleted at the server), a genuine one beside them still applies, and
// nothing of b's folder is lost. The server itself refuses a deposit that
// is not sealed, and one for a device it keeps no mail for.
func TestMailboxRefusesForgedDeposits(t *testing.T) {
	n := newMailNet(t, nil)
	write(t, n.b.dir, "mine.txt", "b's own file")
	_, err := n.b.e.Scan(context.Background(), "docs")
	require.NoError(t, err)
	write(t, n.a.dir, "letter.txt", "genuine")
	aEv := collect(n.a.e)
	n.a.start(t)
	eventually(t, "a's genuine deposit", func() bool { _, ok := aEv.find(deposited); return ok })
	pc := n.a.e.rendezvousConn()
	require.NotNil(t, pc)
	ctx := context.Background()
	raw := func(to crypto.DeviceID, data []byte) (mailResp, error) {
		s, resp, err := mailCall(ctx, pc, mailReq{Op: mailDeposit, To: to, Size: int64(len(data))}, func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		}, 10*time.Second)
		if s != nil {
			_ = s.Close()
		}
		return resp, err
	}
	// The server refuses plaintext, and a recipient it does not know.
	held := n.srv.e.MailboxBytes()
	resp, err := raw(n.b.e.DeviceID(), []byte("PLAINTEXT bundle for b, not sealed at all"))
	require.Error(t, err)
	assert.Contains(t, resp.Error, "not a sealed stream")
	stranger, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	resp, err = raw(stranger.DeviceID(), []byte("age-encryption.org/v1\n..."))
	require.Error(t, err)
	assert.Contains(t, resp.Error, "not a device this server keeps mail for")
	assert.Equal(t, held, n.srv.e.MailboxBytes(), "nothing stored")

	// Sealed by a to b, but the bundle inside is garbage: a hostile peer.
	var hostile bytes.Buffer
	sw, err := crypto.Seal(ctx, &hostile, []crypto.DeviceID{n.b.e.DeviceID()}, n.a.e.cfg.Identity)
	require.NoError(t, err)
	_, err = io.WriteString(sw, mailMagic+"folder docs\n\n# v2 git bundle\nnot a bundle at all\n")
	require.NoError(t, err)
	require.NoError(t, sw.Close())
	_, err = raw(n.b.e.DeviceID(), hostile.Bytes())
	require.NoError(t, err)
	// A sealed deposit damaged in transit or on the server's disk.
	damaged := bytes.Clone(hostile.Bytes())
	damaged[len(damaged)-40] ^= 0x55
	_, err = raw(n.b.e.DeviceID(), damaged)
	require.NoError(t, err)
	require.Len(t, boxFiles(t, n.srv, n.b), 3)
	stop(t, n.a)

	bEv := collect(n.b.e)
	n.b.start(t)
	eventually(t, "the genuine deposit applies", fileIs(n.b.dir, "letter.txt", "genuine"))
	if !assert.Eventually(t, func() bool {
		return bEv.count(func(x Event) bool { var me *MailboxError; return errors.As(x.Err, &me) }) == 2 &&
			len(boxFiles(t, n.srv, n.b)) == 0
	}, 20*time.Second, 50*time.Millisecond, "both forged deposits are refused and deleted") {
		t.Fatalf("b's events:\n%s", strings.Join(bEv.all(), "\n"))
	}
	var bundleErr, cryptoErr bool
	bEv.find(func(x Event) bool {
		var me *MailboxError
		if !errors.As(x.Err, &me) {
			return false
		}
		assert.Equal(t, EventError, x.Kind)
		assert.Equal(t, n.a.e.DeviceID(), me.From)
		var be *gitstore.BundleError
		bundleErr = bundleErr || errors.As(me.Err, &be) && me.Folder == "docs"
		cryptoErr = cryptoErr || errors.Is(me.Err, crypto.ErrCorrupt)
		assert.Contains(t, x.Err.Error(), "refused")
		return false
	})
	assert.True(t, bundleErr, "the hostile bundle is refused as a bundle")
	assert.True(t, cryptoErr, "the damaged deposit is refused as corrupt")
	assert.True(t, fileIs(n.b.dir, "mine.txt", "b's own file")(), "nothing of b's folder is lost")
	gitIn(t, n.b.dir, "fsck", "--strict")
}

// TestMailboxReceiptsKeepDepositsSmall: once the recipient has applied a
// deposit, the sender learns it from the server's receipt, so its next
// deposit carries only what is new, not the big file again. (a and b are
// never online together.)
func TestMailboxReceiptsKeepDepositsSmall(t *testing.T) {
	n := newMailNet(t, nil)
	big := make([]byte, 300<<10) // incompressible
	_, _ = rand.Read(big)
	write(t, n.a.dir, "big.bin", string(big))
	a1Ev := collect(n.a.e)
	n.a.start(t)
	eventually(t, "the big deposit", func() bool {
		_, ok := a1Ev.find(deposited) // recorded by a
		return ok && n.srv.e.MailboxBytes() > 300<<10
	})
	stop(t, n.a)

	n.b.start(t)
	eventually(t, "b takes it", func() bool { return fileIs(n.b.dir, "big.bin", string(big))() && n.srv.e.MailboxBytes() == 0 })
	stop(t, n.b)

	a2 := restart(t, n.a, n.rv)
	aEv := collect(a2.e)
	a2.start(t)
	eventually(t, "a learns from the receipt that b has its head", func() bool {
		st := a2.e.Status()
		return len(st.Peers) == 1 && st.Peers[0].Known["docs"] == st.Folders[0].Head
	})
	write(t, a2.dir, "small.txt", "only this is new")
	eventually(t, "a deposits the new file", func() bool { _, ok := aEv.find(deposited); return ok && n.srv.e.MailboxBytes() > 0 })
	held := n.srv.e.MailboxBytes()
	assert.Less(t, held, int64(16<<10), "the second deposit starts from what b applied (%d bytes)", held)
	assert.Equal(t, 1, aEv.count(deposited))
}

// FuzzDecodeMail: the mailbox protocol's parsers accept only what they
// promise, whatever a peer or the server sends.
func FuzzDecodeMail(f *testing.F) {
	id := "0123456789abcdef0123456789abcdef"
	f.Add([]byte(`{"op":"deposit","to":"AEAAAAA-AAAAAA4-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA","size":12,"replaces":["` + id + `"]}`))
	f.Add([]byte(`{"op":"list","items":[{"id":"` + id + `","from":"AEAAAAA-AAAAAA4-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA","size":3,"at":"2026-12-06T15:00:00Z"}]}`))
	f.Add([]byte(`{"op":"ack","id":"` + id + `","applied":true}`))
	f.Add([]byte(`{"op":"data","size":9}`))
	f.Add([]byte(`{"op":"receipts","receipts":[{"id":"` + id + `","to":"AEAAAAA-AAAAAA4-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeMailReq(b); err == nil {
			switch r.Op {
			case mailDeposit:
				assert.False(t, r.To.IsZero())
				assert.Positive(t, r.Size)
				assert.LessOrEqual(t, len(r.Replaces), 16)
			case mailGet, mailAck:
				assert.Regexp(t, bundleIDRe, r.ID)
			}
		}
		if r, err := decodeMailResp(b); err == nil {
			assert.NotEqual(t, mailErr, r.Op)
			assert.LessOrEqual(t, len(r.Items), maxMailList)
			for _, it := range r.Items {
				assert.Positive(t, it.Size)
				assert.Regexp(t, bundleIDRe, it.ID)
			}
			if r.Op == mailData {
				assert.Positive(t, r.Size)
			}
		}
	})
}

// TestMailboxRedepositsWhatExpired: a deposit that expired untaken is
// deposited again by its sender, which learns from the server that it is
// gone.
func TestMailboxRedepositsWhatExpired(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	n := newMailNet(t, func(c *Config) {
		c.Mailbox.Limits = mailbox.Limits{Expiry: time.Hour}
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	aEv := collect(n.a.e)
	write(t, n.a.dir, "note.txt", "waiting for b")
	n.a.start(t)
	eventually(t, "the deposit", func() bool { return aEv.count(deposited) == 1 && n.srv.e.MailboxBytes() > 0 })
	now.Add(int64(2 * time.Hour))
	eventually(t, "it expires, and a deposits it again", func() bool {
		return aEv.count(deposited) == 2 && n.srv.e.MailboxBytes() > 0
	})
	assert.Len(t, boxFiles(t, n.srv, n.b), 1)
}

// TestMailboxHeldUntilShared: a deposit for a folder b does not receive
// yet (b has not shared it with a) is left at the server, not refused;
// once b shares the folder it is applied at once, nothing lost.
func TestMailboxHeldUntilShared(t *testing.T) {
	n := newMailNet(t, nil)
	require.NoError(t, n.b.e.SetPeer(PeerConfig{Device: n.a.e.DeviceID(), Name: "a"})) // no folders yet
	write(t, n.a.dir, "offer.txt", "for when b shares docs")
	aEv := collect(n.a.e)
	n.a.start(t)
	eventually(t, "a's deposit", func() bool { _, ok := aEv.find(deposited); return ok })
	stop(t, n.a)

	n.b.start(t)
	eventually(t, "b looked at it and left it at the server", func() bool {
		n.b.e.mu.Lock()
		ms := n.b.e.mailLocked()
		n.b.e.mu.Unlock()
		if ms == nil {
			return false
		}
		ms.mu.Lock()
		defer ms.mu.Unlock()
		return len(ms.held) == 1
	})
	assert.Len(t, boxFiles(t, n.srv, n.b), 1, "held, not deleted")
	assert.False(t, fileIs(n.b.dir, "offer.txt", "for when b shares docs")())

	require.NoError(t, n.b.e.SetPeer(PeerConfig{Device: n.a.e.DeviceID(), Name: "a", Folders: []string{"docs"}}))
	eventually(t, "applied once shared, well before the minute's retry", fileIs(n.b.dir, "offer.txt", "for when b shares docs"))
	eventually(t, "and taken from the server", func() bool { return len(boxFiles(t, n.srv, n.b)) == 0 })
}
