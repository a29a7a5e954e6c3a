package main

import (
	"flag"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/internal/testutil"
	"github.com/peersync/peersync/mailbox"
	"github.com/peersync/peersync/sync"
)

// TestMailboxBetweenDesktopsNeverOnlineTogether: two desktops that share a
// folder the server does not have, and are never running at the same
// time, sync through the server's blind mailbox: alpha's change waits
// there sealed to beta (the server's disk holds no plaintext of it), and
// beta, started after alpha stopped, applies it and empties its box.
func TestMailboxBetweenDesktopsNeverOnlineTogether(t *testing.T) {
	s, a, b := newHostedPair(t)
	s.cli(t, "peer", "add", "--name", "alpha", a.id)
	s.cli(t, "peer", "add", "--name", "beta", b.id)
	a.cli(t, "peer", "add", "--name", "beta", "--folders", "docs", b.id)
	b.cli(t, "peer", "add", "--name", "alpha", "--folders", "docs", a.id)

	stun := "127.0.0.1:" + strconv.Itoa(testutil.FreeUDPPort(t))
	s.start(t, "--stun-listen", stun, "--mailbox-quota", "64M", "--mailbox-expiry", "48h")
	rv := s.id + "@127.0.0.1:" + strconv.Itoa(s.port)
	const marker = "PLAINTEXT-MARKER-d41c"
	require.NoError(t, os.WriteFile(filepath.Join(a.folder, "note.txt"), []byte(marker+"\n"), 0o644))

	box := filepath.Join(s.home, "mailbox", b.id)
	stopA := a.start(t, "--ui", "none", "--rendezvous", rv, "--stun", stun)
	waitFiles(t, box, 1)
	stopA()

	var held int
	var deposit string
	require.NoError(t, filepath.WalkDir(s.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.NotContains(t, string(data), marker, "plaintext on the server's disk: %s", p)
		if filepath.Dir(p) == box {
			held++
			deposit = p
			assert.True(t, crypto.IsSealed(data), "a deposit is a sealed stream: %s", p)
		}
		return nil
	}))
	assert.Equal(t, 1, held)
	// Sealed to beta: the age CLI opens it with beta's identity file, and
	// with no other (the server's own, say).
	if age, err := exec.LookPath("age"); err == nil {
		out, err := exec.Command(age, "-d", "-i", filepath.Join(b.home, "identity"), deposit).Output()
		require.NoError(t, err)
		assert.Contains(t, string(out), "peersync-mailbox/1\nfolder docs\n\n")
		assert.Contains(t, string(out), marker, "beta reads it")
		_, err = exec.Command(age, "-d", "-i", filepath.Join(s.home, "identity"), deposit).Output()
		assert.Error(t, err, "the server cannot open it")
	} else {
		t.Log("LOUD SKIP of the age CLI check: `age` is not installed (apt-get install age)")
	}

	b.start(t, "--ui", "none", "--rendezvous", rv, "--stun", stun)
	waitSame(t, a.folder, b.folder)
	waitFiles(t, box, 0)
}

// waitFiles waits until dir holds n files.
func waitFiles(t *testing.T, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ents, _ := os.ReadDir(dir)
		if len(ents) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d files, want %d", dir, len(ents), n)
		}
		// Another process's directory: no signal reaches the test, so
		// poll; the deadline bounds a hang, it is not a measurement.
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMailboxFlags: `server run`'s mailbox flags become the engine's
// mailbox configuration; wrong values are refused with the flag named.
func TestMailboxFlags(t *testing.T) {
	parse := func(args ...string) (sync.MailboxConfig, error) {
		var f mailboxFlags
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f.declare(fs)
		if err := fs.Parse(args); err != nil {
			return sync.MailboxConfig{}, err
		}
		return f.config()
	}
	c, err := parse()
	require.NoError(t, err)
	assert.Equal(t, sync.MailboxConfig{Limits: mailbox.Limits{Quota: mailbox.DefaultQuota, MaxItems: mailbox.DefaultMaxItems, Expiry: mailbox.DefaultExpiry}}, c)
	c, err = parse("--mailbox-quota", "64M", "--mailbox-max", "3", "--mailbox-expiry", "36h")
	require.NoError(t, err)
	assert.Equal(t, mailbox.Limits{Quota: 64 << 20, MaxItems: 3, Expiry: 36 * time.Hour}, c.Limits)
	for in, want := range map[string]int64{"1G": 1 << 30, "512KiB": 512 << 10, "100": 100, "2mb": 2_000_000} {
		c, err = parse("--mailbox-quota", in)
		require.NoError(t, err, in)
		assert.Equal(t, want, c.Limits.Quota, in)
	}
	c, err = parse("--no-mailbox")
	require.NoError(t, err)
	assert.True(t, c.Off)
	_, err = parse("--mailbox-quota", "lots")
	assert.ErrorContains(t, err, "mailbox-quota")
	_, err = parse("--mailbox-max", "0")
	assert.ErrorContains(t, err, "must be positive")
}
