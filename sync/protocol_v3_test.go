package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// hashCount counts the SHA-256 of whole bundles an engine computes for the
// protocol's trailer (testHooks.hashed).
type hashCount struct{ runs, bytes atomic.Int64 }

func (h *hashCount) hook(n int64) { h.runs.Add(1); h.bytes.Add(n) }

// TestV3ExchangeHashesNothing: two engines of protocol version 3 exchange a
// bundle (a first sync, then an edit) without either computing its
// SHA-256, and the files arrive intact.
func TestV3ExchangeHashesNothing(t *testing.T) {
	var ha, hb hashCount
	a := newNodeCfg(t, "a", func(c *Config) { c.test = &testHooks{hashed: ha.hook} })
	b := newNodeCfg(t, "b", func(c *Config) { c.test = &testHooks{hashed: hb.hook} })
	data := writeRandom(t, a.dir, "random.bin", 2<<20)
	write(t, a.dir, "note.txt", "first")
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)

	eventually(t, "the first sync arrives", func() bool {
		got, err := os.ReadFile(filepath.Join(b.dir, "random.bin"))
		return err == nil && bytes.Equal(got, data) && fileIs(b.dir, "note.txt", "first")()
	})
	write(t, a.dir, "note.txt", "second")
	eventually(t, "the edit arrives", fileIs(b.dir, "note.txt", "second"))
	noErrorEvents(t, b.e)
	assert.Zero(t, ha.runs.Load(), "the sender hashed a bundle")
	assert.Zero(t, hb.runs.Load(), "the receiver hashed a bundle")
}

// writeRandom writes size random bytes to dir/name and returns them.
func writeRandom(t *testing.T, dir, name string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	return b
}

// scannedBundle scans n's folder and returns a bundle of all of it.
func scannedBundle(t *testing.T, n *node) []byte {
	t.Helper()
	_, err := n.e.Scan(t.Context(), "docs")
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = n.e.ExportBundle(t.Context(), "docs", nil, &buf)
	require.NoError(t, err)
	return buf.Bytes()
}

// askBundle dials n as f (a peer in n's table), announces protocol version
// proto and asks for n's whole folder with a want of that version. It
// returns the answer's bundle frame, its data and its end frame.
func askBundle(t *testing.T, f *fakePeer, n *node, proto int) (answer, []byte, answer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := f.tr.Dial(ctx, n.e.Addr().String(), n.e.DeviceID())
	require.NoError(t, err)
	defer c.Close()
	ctrl, err := c.OpenStream(ctx)
	require.NoError(t, err)
	sendJSON(t, ctrl, message{Type: msgControl, Proto: proto, Name: "old"})
	s, err := c.OpenStream(ctx)
	require.NoError(t, err)
	sendJSON(t, s, message{Type: msgWant, Proto: proto, Folder: "docs"})
	_ = s.Close()
	var first answer
	var data bytes.Buffer
	buf := make([]byte, 1+maxChunk)
	for {
		_ = s.SetReadDeadline(time.Now().Add(20 * time.Second))
		p, err := readFrameInto(s, buf)
		require.NoError(t, err)
		if p[0] == dataTag {
			data.Write(p[1:])
			continue
		}
		a, err := decodeAnswer(p)
		require.NoError(t, err)
		switch a.Type {
		case ansBundle:
			first = a
		case ansEnd:
			return first, data.Bytes(), a
		case ansProgress:
		default:
			t.Fatalf("unexpected answer %+v", a)
		}
	}
}

// TestV2AskerGetsSHA256: a want of protocol version 2, written by hand, is
// answered with the bundle's SHA-256 in the trailer, and it is right, both
// when the version 2 asker joins a finished job that a version 3 asker
// started (the job's file read and hashed once, at its end) and when it
// starts the job itself (hashed while produced). A version 3 asker gets no
// SHA-256 and nothing is hashed for it. The bundles are ones git accepts.
func TestV2AskerGetsSHA256(t *testing.T) {
	var hc hashCount
	n := newNodeCfg(t, "sender", func(c *Config) { c.test = &testHooks{hashed: hc.hook} })
	writeRandom(t, n.dir, "random.bin", 1<<20)
	write(t, n.dir, "note.txt", "hello")
	n.start(t)
	newer, old, late := newFakePeer(t), newFakePeer(t), newFakePeer(t)
	for _, f := range []*fakePeer{newer, old, late} {
		require.NoError(t, n.e.AddPeer(PeerConfig{Device: f.id.DeviceID(), Folders: []string{"docs"}}))
	}
	eventually(t, "scanned", func() bool { return !n.e.Status().Folders[0].Head.IsZero() })
	sumOf := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

	// A version 3 asker: no SHA-256, nothing hashed.
	first, bundle3, end3 := askBundle(t, newer, n, 3)
	assert.Equal(t, protocolVersion, first.Proto, "the bundle frame declares the sender's version")
	assert.Empty(t, end3.SHA256)
	assert.Equal(t, int64(len(bundle3)), end3.Size)
	assert.Zero(t, hc.runs.Load(), "nothing hashed for a version 3 asker")
	gitAccepts(t, bundle3)

	// A version 2 asker joins that finished job: its file is hashed once.
	_, bundle2, end2 := askBundle(t, old, n, 2)
	assert.Equal(t, bundle3, bundle2, "the version 2 asker shares the finished job")
	assert.Equal(t, int64(len(bundle2)), end2.Size)
	assert.Equal(t, sumOf(bundle2), end2.SHA256)
	assert.Equal(t, int64(1), hc.runs.Load())
	assert.Equal(t, int64(len(bundle2)), hc.bytes.Load())

	// Our head moves: a version 2 asker starts a new job, hashed while it
	// is produced.
	before := n.e.Status().Folders[0].Head
	write(t, n.dir, "later.txt", "a new head")
	eventually(t, "scanned again", func() bool { return n.e.Status().Folders[0].Head != before })
	_, bundle, end := askBundle(t, late, n, 2)
	assert.NotEqual(t, bundle2, bundle)
	assert.Equal(t, int64(len(bundle)), end.Size)
	assert.Equal(t, sumOf(bundle), end.SHA256)
	assert.Equal(t, int64(2), hc.runs.Load())
	assert.Equal(t, int64(len(bundle2)+len(bundle)), hc.bytes.Load())
	gitAccepts(t, bundle)
}

// gitAccepts checks bundle with `git bundle verify` in an empty repository
// and fetches it.
func gitAccepts(t *testing.T, bundle []byte) {
	t.Helper()
	dir := t.TempDir()
	name := filepath.Join(dir, "b.bundle")
	require.NoError(t, os.WriteFile(name, bundle, 0o644))
	repo := filepath.Join(dir, "repo")
	for _, args := range [][]string{
		{"init", "-q", repo},
		{"-C", repo, "bundle", "verify", "-q", name},
		{"-C", repo, "fetch", "-q", name, "main:main"},
	} {
		out, err := exec.Command("git", args...).CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}
}

// TestV3StreamCorruptionRefused: a version 3 sender sends no SHA-256, and a
// bundle with one byte changed is still refused (by the pack's own checks),
// nothing of it applied and the sender disconnected; the same bundle
// unchanged, with the same trailer, is applied.
func TestV3StreamCorruptionRefused(t *testing.T) {
	src := newNode(t, "src")
	writeRandom(t, src.dir, "payload.bin", 64<<10)
	write(t, src.dir, "evil.txt", "should only arrive whole")
	bundle := scannedBundle(t, src)
	pack := bytes.Index(bundle, []byte("PACK"))
	require.Positive(t, pack)

	cases := map[string]int{
		"in the middle of the pack": pack + (len(bundle)-pack)/2,
		"in an entry's header":      pack + 12,
		"in the pack's trailer":     len(bundle) - 3,
		"in the head's hash":        bytes.IndexByte(bundle, '\n') + 5, // another hex digit
		"none":                      -1,
	}
	for name, at := range cases {
		t.Run(name, func(t *testing.T) {
			var hc hashCount
			n, f, before := newVictim(t, func(c *Config) { c.test = &testHooks{hashed: hc.hook} })
			sent := bytes.Clone(bundle)
			switch {
			case at < 0:
			case at < pack: // keep the header well formed: another commit
				sent[at] = map[bool]byte{true: '1', false: '0'}[sent[at] == '0']
			default:
				sent[at] ^= 0x40
			}
			c := f.serveHostile(t, n.e.Addr().String(), n.e.DeviceID(), func(s *transport.Stream) {
				sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID, Proto: 3})
				sendChunks(t, s, sent)
				sendJSON(t, s, answer{Type: ansEnd, Size: int64(len(sent))})
			})
			defer c.Close()
			if at < 0 {
				eventually(t, "the bundle is applied", fileIs(n.dir, "evil.txt", "should only arrive whole"))
				assert.Zero(t, hc.runs.Load(), "a version 3 stream is not hashed")
				return
			}
			refused(t, n, f, c, before)
			_, err := os.Stat(filepath.Join(n.dir, "evil.txt"))
			assert.ErrorIs(t, err, os.ErrNotExist)
			_, err = os.Stat(filepath.Join(n.dir, "payload.bin"))
			assert.ErrorIs(t, err, os.ErrNotExist)
			assert.Zero(t, hc.runs.Load(), "a version 3 stream is not hashed")
		})
	}
}

// TestV3ReceiverChecksV2SenderAcrossResume: a sender that declares no
// version (version 2) is held to its SHA-256 even when the bundle comes in
// two attempts: the receiver hashes what it kept from the first and the
// rest of the stream, and applies the bundle; a v2 trailer without a
// SHA-256 is refused.
func TestV3ReceiverChecksV2SenderAcrossResume(t *testing.T) {
	src := newNode(t, "src")
	payload := writeRandom(t, src.dir, "payload.bin", 1<<20)
	bundle := scannedBundle(t, src)
	half := len(bundle) / 2

	t.Run("resumed", func(t *testing.T) {
		var hc hashCount
		n, f, _ := newVictim(t, func(c *Config) { c.test = &testHooks{hashed: hc.hook} })
		var mu gosync.Mutex
		var resumes []*resume
		c := f.serveWants(t, n, func(s *transport.Stream, m message, attempt int) bool {
			mu.Lock()
			resumes = append(resumes, m.Resume)
			mu.Unlock()
			if attempt == 0 {
				sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID})
				sendChunks(t, s, bundle[:half])
				s.Abort() // the connection breaks mid-bundle
				return true
			}
			if !assert.NotNil(t, m.Resume, "the retry asks to resume") {
				return false
			}
			sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID, Offset: m.Resume.Offset})
			sendChunks(t, s, bundle[m.Resume.Offset:])
			sendJSON(t, s, trailerOf(bundle))
			return false
		})
		defer c.Close()
		eventually(t, "the bundle is applied", func() bool {
			got, err := os.ReadFile(filepath.Join(n.dir, "payload.bin"))
			return err == nil && bytes.Equal(got, payload)
		})
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, resumes, 2)
		assert.Positive(t, resumes[1].Offset, "a resume, not a restart")
		assert.LessOrEqual(t, resumes[1].Offset, int64(half))
		assert.Equal(t, int64(1), hc.runs.Load(), "the version 2 sender's SHA-256 is checked")
		assert.Equal(t, int64(len(bundle)), hc.bytes.Load(), "over the kept part and the rest")
	})
	t.Run("no SHA-256", func(t *testing.T) {
		n, f, before := newVictim(t, func(c *Config) {})
		c := f.serveHostile(t, n.e.Addr().String(), n.e.DeviceID(), func(s *transport.Stream) {
			sendJSON(t, s, answer{Type: ansBundle, Bundle: fakeBundleID})
			sendChunks(t, s, bundle)
			sendJSON(t, s, answer{Type: ansEnd, Size: int64(len(bundle))})
		})
		defer c.Close()
		be := refused(t, n, f, c, before)
		require.NotNil(t, be)
		assert.Contains(t, be.Reason, "no SHA-256")
	})
}

// sendChunks writes b as data frames of at most maxChunk bytes.
func sendChunks(t *testing.T, s *transport.Stream, b []byte) {
	t.Helper()
	for off := 0; off < len(b); off += maxChunk {
		sendData(t, s, b[off:min(off+maxChunk, len(b))])
	}
}

// serveWants connects to n as f, claims a head n lacks and answers n's
// wants on that connection with answer (attempt counts them from 0) until
// answer returns false or the connection ends.
func (f *fakePeer) serveWants(t *testing.T, n *node, answer func(s *transport.Stream, m message, attempt int) bool) *transport.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := f.tr.Dial(ctx, n.e.Addr().String(), n.e.DeviceID())
	require.NoError(t, err)
	ctrl, err := c.OpenStream(ctx)
	require.NoError(t, err)
	sendJSON(t, ctrl, message{Type: msgControl, Proto: 2, Name: "old"})
	var fakeHead gitstore.Hash
	fakeHead[0] = 0xee
	sendJSON(t, ctrl, message{Type: msgHead, Folder: "docs", Head: fakeHead})
	var wg gosync.WaitGroup
	t.Cleanup(func() { _ = c.Close(); wg.Wait() })
	wg.Go(func() {
		for attempt := 0; ; {
			s, err := c.AcceptStream(context.Background())
			if err != nil {
				return
			}
			b, err := transport.ReadFrame(s, 0)
			if err != nil {
				continue
			}
			m, err := decodeMessage(b)
			if err != nil || m.Type != msgWant {
				continue
			}
			if !answer(s, m, attempt) {
				return
			}
			attempt++
		}
	})
	return c
}
