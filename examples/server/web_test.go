//go:build unix

package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// daemon is a `server run` process whose stdout lines arrive on a channel,
// so the test waits for what it announces instead of sleeping.
type daemon struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *testutil.SyncBuffer
	done   chan error
	exited bool // terminate received from done
}

func startDaemon(t *testing.T, p *proc, extra ...string) *daemon {
	t.Helper()
	args := append([]string{"--home", p.home, "run", "--listen", fmt.Sprintf("127.0.0.1:%d", p.port),
		"--scan-interval", "200ms", "--no-discovery"}, extra...)
	d := &daemon{cmd: exec.Command(p.bin, args...), lines: make(chan string, 100), stderr: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	out, err := d.cmd.StdoutPipe()
	require.NoError(t, err)
	d.cmd.Stderr = d.stderr
	require.NoError(t, d.cmd.Start())
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
	}()
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if !d.exited {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// expect returns the submatches of the next stdout line matching re (the
// lines before it are skipped: expect in the order they are printed).
func (d *daemon) expect(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(30 * time.Second) // bounds a hang
	for {
		select {
		case line, ok := <-d.lines:
			require.True(t, ok, "stdout ended before %q; stderr:\n%s", re, d.stderr.String())
			if m := rx.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no line matching %q; stderr:\n%s", re, d.stderr.String())
		}
	}
}

// terminate sends SIGTERM and requires a clean exit (status 0).
func (d *daemon) terminate(t *testing.T) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.done:
		d.exited = true
		require.NoError(t, err, "exit status 0 on SIGTERM; stderr:\n%s", d.stderr.String())
	case <-time.After(30 * time.Second): // bounds a hang
		t.Fatal("no exit within 30 s of SIGTERM")
	}
}

func scrape(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(b)
}

// TestServerWebViewMetricsJSONLogsAndSIGTERM runs the real server: users
// added from the command line (password on stdin), the web view over HTTPS
// with a self-signed certificate whose printed fingerprint is the one
// served, a download, metrics scraped as the server commits, JSON logs, and
// a clean stop on SIGTERM with the history intact.
func TestServerWebViewMetricsJSONLogsAndSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := testutil.BuildBinary(t, "./examples/server")
	p := newProc(t, bin, "hosted")
	require.NoError(t, os.WriteFile(filepath.Join(p.folder, "hello.txt"), []byte("hello, phone\n"), 0o644))
	p.cli(t, "scan")

	add := exec.Command(bin, "--home", p.home, "user", "add", "ann", "--folders", "docs")
	add.Stdin = strings.NewReader("correct horse\n")
	out, err := add.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "user ann added: folders=docs\n", string(out))
	assert.Regexp(t, `^ann\tfolders=docs\tset \d{4}-\d\d-\d\d\n$`, p.cli(t, "users"))
	bad := exec.Command(bin, "--home", p.home, "user", "add", "bob")
	bad.Stdin = strings.NewReader("short\n")
	out, err = bad.CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "too short")

	d := startDaemon(t, p, "--stun-listen", "none", "--web", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--log-json")
	m := d.expect(t, `^metrics on (http://\S+/metrics)$`)
	metricsURL := m[1]
	d.expect(t, `^web: generated a self-signed certificate`)
	w := d.expect(t, `^web view on https://(\S+) \(certificate SHA-256 ([0-9A-F:]{95})\)$`)
	webAddr, printed := w[1], w[2]

	// The certificate served is the one in the home, and its fingerprint
	// is the one printed.
	pemBytes, err := os.ReadFile(filepath.Join(p.home, "web-cert.pem"))
	require.NoError(t, err)
	blk, _ := pem.Decode(pemBytes)
	require.NotNil(t, blk)
	sum := sha256.Sum256(blk.Bytes)
	assert.Equal(t, strings.ToUpper(strings.ReplaceAll(fmt.Sprintf("% x", sum[:]), " ", ":")), printed)
	fi, err := os.Stat(filepath.Join(p.home, "web-key.pem"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	cert, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}}
	defer client.CloseIdleConnections()
	base := "https://" + webAddr
	resp, err := client.PostForm(base+"/login", url.Values{"user": {"ann"}, "password": {"correct horse"}})
	require.NoError(t, err, "TLS verified against the generated certificate")
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = client.Get(base + "/f/docs/raw/hello.txt")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "hello, phone\n", string(b))

	// Metrics: status gauges now, counters as the daemon commits a change.
	body := scrape(t, metricsURL)
	for _, want := range []string{"peersync_connected_devices 0", `peersync_folders{state="syncing"} 1`, `peersync_folders{state="stopped"} 0`,
		"peersync_peers 0", `peersync_transfers{direction="receive"} 0`, `peersync_pending{kind="device"} 0`, "process_resident_memory_bytes", "go_goroutines"} {
		assert.Contains(t, body, want)
	}
	require.NoError(t, os.WriteFile(filepath.Join(p.folder, "new.txt"), []byte("committed by the daemon"), 0o644))
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, metricsURL), `peersync_local_commits_total{folder="docs"} 1`)
	}, 30*time.Second, 50*time.Millisecond, "the daemon's scan is counted")

	// SIGTERM: a clean stop.
	d.terminate(t)
	// Every log record was a JSON object.
	records := 0
	for _, line := range strings.Split(strings.TrimSpace(d.stderr.String()), "\n") {
		if line == "stopped" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "log line %q", line)
		assert.Contains(t, rec, "level")
		assert.Contains(t, rec, "msg")
		records++
	}
	assert.NotZero(t, records)
	assert.Contains(t, d.stderr.String(), "stopped")
	testutil.CheckOneFilePerCommit(t, p.folder)
}

// TestSIGTERMDuringTransfer stops the server with SIGTERM while a large
// bundle from a device is being received (as soon as the metrics show bytes
// arriving): it exits 0, its history passes git fsck, the file is there
// whole or not at all, and after a restart the server catches up.
func TestSIGTERMDuringTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs server and desktop processes")
	}
	serverBin := testutil.BuildBinary(t, "./examples/server")
	desktopBin := testutil.BuildBinary(t, "./examples/desktop")
	s := newProc(t, serverBin, "hosted")
	a := newProc(t, desktopBin, "alpha")
	s.cli(t, "peer", "add", "--name", "alpha", "--folders", "docs", a.id)
	a.cli(t, "peer", "add", "--name", "server", "--addr", fmt.Sprintf("127.0.0.1:%d", s.port), "--folders", "docs", s.id)
	big := make([]byte, 48<<20)
	_, err := rand.Read(big)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.folder, "big.bin"), big, 0o644))

	d := startDaemon(t, s, "--stun-listen", "none", "--metrics", "127.0.0.1:0")
	metricsURL := d.expect(t, `^metrics on (http://\S+/metrics)$`)[1]
	a.start(t, "--ui", "none")
	receiving := regexp.MustCompile(`(?m)^peersync_bundle_bytes_receiving ([1-9][0-9.e+]*)$`)
	mid := false
	require.Eventually(t, func() bool {
		if receiving.MatchString(scrape(t, metricsURL)) {
			mid = true
			return true
		}
		_, err := os.Stat(filepath.Join(s.folder, "big.bin"))
		return err == nil // already done: the stop still has to be clean
	}, 60*time.Second, 5*time.Millisecond)
	t.Logf("SIGTERM while a bundle was being received: %v", mid)
	d.terminate(t)
	testutil.Git(t, s.folder, "fsck", "--strict", "--no-dangling")
	if got, err := os.ReadFile(filepath.Join(s.folder, "big.bin")); err == nil {
		assert.True(t, bytes.Equal(big, got), "the file is whole")
	} else {
		assert.True(t, os.IsNotExist(err), "%v", err)
	}

	// Restarted, it catches up.
	startDaemon(t, s, "--stun-listen", "none")
	waitSame(t, a.folder, s.folder)
	testutil.CheckOneFilePerCommit(t, s.folder)
}
