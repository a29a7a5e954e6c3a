package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

type proc struct {
	bin, home, folder string
	port              int
	id                string
}

func (p *proc) cli(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(p.bin, append([]string{"--home", p.home}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "%v: %s", args, errb.String())
	return out.String()
}

// newHostedPair builds the server and desktop programs and initialises
// the homes of a server "hosted" and two desktops "alpha" and "beta", each
// with a folder "docs" (no process runs yet); it skips under -short.
func newHostedPair(t *testing.T) (s, a, b *proc) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs server and desktop processes")
	}
	serverBin := testutil.BuildBinary(t, "./examples/server")
	desktopBin := testutil.BuildBinary(t, "./examples/desktop")
	return newProc(t, serverBin, "hosted"), newProc(t, desktopBin, "alpha"), newProc(t, desktopBin, "beta")
}

func newProc(t *testing.T, bin, name string) *proc {
	p := &proc{bin: bin, home: filepath.Join(t.TempDir(), "home"), folder: t.TempDir(), port: testutil.FreeUDPPort(t)}
	p.id = strings.TrimSpace(p.cli(t, "init", "--name", name))
	p.cli(t, "folder", "add", "--id", "docs", p.folder)
	return p
}

// start runs `run`; the returned function stops it with SIGINT and checks a
// clean exit.
func (p *proc) start(t *testing.T, extra ...string) (stop func()) {
	args := append([]string{"--home", p.home, "run", "--listen", fmt.Sprintf("127.0.0.1:%d", p.port),
		"--scan-interval", "200ms", "--no-discovery"}, extra...)
	cmd := exec.Command(p.bin, args...)
	logs := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				assert.NoError(t, err, "clean exit on SIGINT")
			case <-time.After(15 * time.Second): // bounds a hang
				_ = cmd.Process.Kill()
				t.Error("did not stop within 15 s of SIGINT")
			}
			if t.Failed() {
				t.Logf("logs of %s:\n%s", p.home, logs.String())
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitSame(t *testing.T, a, b string) {
	t.Helper()
	var why string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var same bool
		if same, why = testutil.SameTree(a, b); same {
			return
		}
		// Trees of two other processes: no signal reaches the test, so
		// poll; the deadline bounds a hang, it is not a measurement.
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("folders differ: %s", why)
}

// TestServerMirrorsBetweenDevicesNeverOnlineTogether: A syncs to the server
// and goes away; B, which never meets A, gets A's files from the server.
// The server also answers STUN on --stun-listen.
func TestServerMirrorsBetweenDevicesNeverOnlineTogether(t *testing.T) {
	s, a, b := newHostedPair(t)
	serverAddr := fmt.Sprintf("127.0.0.1:%d", s.port)
	s.cli(t, "peer", "add", "--name", "alpha", "--folders", "docs", a.id)
	s.cli(t, "peer", "add", "--name", "beta", "--folders", "docs", b.id)
	a.cli(t, "peer", "add", "--name", "server", "--addr", serverAddr, "--folders", "docs", s.id)
	b.cli(t, "peer", "add", "--name", "server", "--addr", serverAddr, "--folders", "docs", s.id)

	stunPort := testutil.FreeUDPPort(t)
	stopServer := s.start(t, "--stun-listen", fmt.Sprintf("127.0.0.1:%d", stunPort))
	require.NoError(t, os.MkdirAll(filepath.Join(a.folder, "photos"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(a.folder, "photos", "cat.jpg"), bytes.Repeat([]byte{0xca, 0xfe}, 100_000), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(a.folder, "todo.txt"), []byte("buy milk\n"), 0o644))

	stopA := a.start(t, "--ui", "none")
	waitSame(t, a.folder, s.folder)
	stopA()

	stopB := b.start(t, "--ui", "none")
	waitSame(t, s.folder, b.folder)
	same, why := testutil.SameTree(a.folder, b.folder)
	assert.True(t, same, why)
	stopB()

	// STUN answers on the server's --stun-listen.
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: fmt.Sprintf("127.0.0.1:%d", stunPort), Conn: conn, RTO: 200 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, c.Listen())
	defer c.Close()
	mapped, err := c.SendBindingRequest()
	require.NoError(t, err)
	assert.Equal(t, conn.LocalAddr().String(), mapped.String())
	stopServer()

	testutil.CheckOneFilePerCommit(t, s.folder)
}

// TestRendezvousBetweenDesktops: two desktops that were given only each
// other's DeviceID (no --addr) meet through the server's rendezvous, connect
// directly with ICE and sync; status shows the ICE path.
func TestRendezvousBetweenDesktops(t *testing.T) {
	s, a, b := newHostedPair(t)
	s.cli(t, "peer", "add", "--name", "alpha", a.id)
	s.cli(t, "peer", "add", "--name", "beta", b.id)
	a.cli(t, "peer", "add", "--name", "beta", "--folders", "docs", b.id)
	b.cli(t, "peer", "add", "--name", "alpha", "--folders", "docs", a.id)

	stunPort := testutil.FreeUDPPort(t)
	stun := fmt.Sprintf("127.0.0.1:%d", stunPort)
	s.start(t, "--stun-listen", stun)
	rv := fmt.Sprintf("%s@127.0.0.1:%d", s.id, s.port)
	require.NoError(t, os.WriteFile(filepath.Join(a.folder, "hello.txt"), []byte("no address typed\n"), 0o644))
	a.start(t, "--ui", "none", "--rendezvous", rv, "--stun", stun)
	b.start(t, "--ui", "none", "--rendezvous", rv, "--stun", stun)
	waitSame(t, a.folder, b.folder)

	require.Eventually(t, func() bool {
		st := a.cli(t, "status")
		return strings.Contains(st, "peer    beta") && strings.Contains(st, " ice-")
	}, 10*time.Second, 100*time.Millisecond, "status shows the ICE path to beta")
	_, err := os.Stat(filepath.Join(s.folder, "hello.txt"))
	assert.True(t, os.IsNotExist(err), "the server relays signaling only; it got no folder data")
}
