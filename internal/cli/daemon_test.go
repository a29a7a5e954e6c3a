package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/sync"
)

// lockedBuffer is a bytes.Buffer safe for a daemon goroutine and a test.
type lockedBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemon is `run` of prog in home, in this process.
type daemon struct {
	stderr *lockedBuffer
	cancel context.CancelFunc
	done   chan error
	info   runtimeInfo
	client *httpapi.Client
}

// startDaemon runs the daemon and waits (bounded) until runtime.json names
// its API; the test's cleanup stops it and checks it stopped cleanly.
func startDaemon(t *testing.T, prog Program, home string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{stderr: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		d.done <- Run(ctx, prog, []string{"--home", home, "run", "--listen", "127.0.0.1:0", "--no-discovery",
			"--scan-interval", "1h"}, &lockedBuffer{}, d.stderr)
	}()
	t.Cleanup(func() { d.stop(t, home) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if info, ok := readRuntime(home); ok && info.API != "" && info.Listen != "" {
			d.info = info
			break
		}
		select {
		case err := <-d.done:
			d.done <- err
			require.FailNow(t, "the daemon stopped", "%v\n%s", err, d.stderr)
		case <-time.After(20 * time.Millisecond): // polling a file, bounded by the deadline
		}
		require.True(t, time.Now().Before(deadline), "no runtime.json with an API after 30 s:\n%s", d.stderr)
	}
	key, err := httpapi.LoadKey(home)
	require.NoError(t, err)
	d.client = &httpapi.Client{BaseURL: "http://" + d.info.API, Key: key}
	return d
}

func (d *daemon) stop(t *testing.T, home string) {
	d.cancel()
	select {
	case err := <-d.done:
		d.done <- err
		assert.NoError(t, err)
	case <-time.After(30 * time.Second): // a hang, not a performance bound
		t.Error("the daemon did not stop within 30 s")
	}
	_, err := os.Stat(filepath.Join(home, runtimeFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "runtime.json is removed at stop")
}

// TestCLIThroughDaemon: while the daemon runs, the commands change its
// configuration through its API and the daemon has the change at once
// (its rescan and config polling are an hour away), and status, scan,
// history and restore go through the API too.
func TestCLIThroughDaemon(t *testing.T) {
	home, folder := setupFolder(t)
	fi, err := os.Stat(filepath.Join(home, httpapi.KeyFile))
	require.NoError(t, err, "init creates the API key")
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	d := startDaemon(t, testProgram, home)
	assert.Regexp(t, `^127\.0\.0\.1:\d+$`, d.info.API, "the fallback listener is on loopback")
	ctx := context.Background()
	events := make(chan httpapi.EventJSON, 100)
	ectx, ecancel := context.WithCancel(ctx)
	evDone := make(chan error, 1)
	go func() {
		evDone <- d.client.Events(ectx, 0, func(ev httpapi.EventJSON) error { events <- ev; return nil })
	}()
	defer func() { ecancel(); <-evDone }()

	photos := t.TempDir()
	_, _, err = runCLI(t, home, "folder", "add", "--id", "photos", photos)
	require.NoError(t, err)
	st, err := d.client.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Folders, 2, "the daemon has the new folder at once")

	peer, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	_, _, err = runCLI(t, home, "peer", "add", "--name", "desk", "--folders", "docs,photos", peer.DeviceID().String())
	require.NoError(t, err)
	_, _, err = runCLI(t, home, "init", "--name", "renamed")
	require.NoError(t, err)
	st, err = d.client.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Peers, 1)
	assert.Equal(t, "desk", st.Peers[0].Name)
	assert.Equal(t, "renamed", st.Name)

	out, stderr, err := runCLI(t, home, "status")
	require.NoError(t, err)
	assert.NotContains(t, stderr, "not running")
	assert.Contains(t, out, "name    renamed")
	assert.Contains(t, out, "listen  127.0.0.1:")
	assert.Contains(t, out, "folder  photos")

	require.NoError(t, os.WriteFile(filepath.Join(folder, "a.txt"), []byte("one"), 0o644))
	out, _, err = runCLI(t, home, "scan", "--folder", "docs")
	require.NoError(t, err, "scan goes through the daemon instead of refusing")
	assert.Regexp(t, `^docs [0-9a-f]{40} add a.txt\n$`, out)
	rev := strings.Fields(out)[1]
	deadline := time.After(30 * time.Second)
	for seen := false; !seen; {
		select {
		case ev := <-events:
			seen = ev.Kind == sync.EventLocalChanges && ev.Folder == "docs"
		case <-deadline:
			require.FailNow(t, "the API's event stream did not show the scan")
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(folder, "a.txt"), []byte("two"), 0o644))
	_, _, err = runCLI(t, home, "scan")
	require.NoError(t, err)
	out, _, err = runCLI(t, home, "history", "--folder", "docs", "a.txt")
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2)
	out, _, err = runCLI(t, home, "restore", "--folder", "docs", "a.txt", rev)
	require.NoError(t, err)
	assert.Contains(t, out, "a.txt")
	b, err := os.ReadFile(filepath.Join(folder, "a.txt"))
	require.NoError(t, err)
	assert.Equal(t, "one", string(b))

	_, _, err = runCLI(t, home, "peer", "remove", peer.DeviceID().String())
	require.NoError(t, err)
	st, err = d.client.Status(ctx)
	require.NoError(t, err)
	assert.Empty(t, st.Peers)
	_, _, err = runCLI(t, home, "peer", "remove", peer.DeviceID().String())
	require.Error(t, err, "an unknown peer is an error through the API too")

	_, _, err = runCLI(t, home, "run", "--listen", "127.0.0.1:0", "--no-discovery")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already running")
}

// TestServicesMountAPI: a program that mounts the API on its own
// listener and publishes it gets the CLI's calls there, with the Host
// check and the key; the daemon's events reach the API.
func TestServicesMountAPI(t *testing.T) {
	home, folder := setupFolder(t)
	bound := make(chan string, 1)
	prog := Program{Name: "peersync-test", Summary: "test", Services: func(fs *flag.FlagSet) func(context.Context, Env) (func(), error) {
		return func(ctx context.Context, env Env) (func(), error) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			mux := http.NewServeMux()
			mux.Handle("/rest/", env.API)
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(env.APIKey)) })
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			done := make(chan struct{})
			go func() { defer close(done); _ = srv.Serve(ln) }()
			env.PublishAPI(ln.Addr())
			bound <- ln.Addr().String()
			return func() {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := srv.Shutdown(sctx); err != nil {
					t.Errorf("the services' Shutdown waited: %v", err)
				}
				<-done
			}, nil
		}
	}}
	d := startDaemon(t, prog, home)
	addr := <-bound
	assert.Equal(t, addr, d.info.API, "runtime.json names the program's listener")
	_, _, err := runCLI(t, home, "folder", "add", "--id", "more", t.TempDir())
	require.NoError(t, err)
	st, err := d.client.Status(context.Background())
	require.NoError(t, err)
	assert.Len(t, st.Folders, 2)

	// An open event stream does not hold up the stop (see stop).
	ectx, ecancel := context.WithCancel(context.Background())
	defer ecancel()
	streamErr := make(chan error, 1)
	opened := make(chan struct{})
	go func() {
		streamErr <- d.client.Events(ectx, 0, func(ev httpapi.EventJSON) error {
			select {
			case <-opened:
			default:
				close(opened)
			}
			return nil
		})
	}()
	require.NoError(t, os.WriteFile(filepath.Join(folder, "a.txt"), []byte("a"), 0o644))
	_, _, err = runCLI(t, home, "scan") // an event to know the stream is open
	require.NoError(t, err)
	<-opened
	d.stop(t, home)
	assert.ErrorIs(t, <-streamErr, io.EOF, "the stream ended with the daemon")
}
