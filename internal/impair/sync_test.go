//go:build linux

package impair

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/netns"
	"github.com/peersync/peersync/internal/testutil"
)

// desktop is one examples/desktop installation: its home and shared folder.
type desktop struct {
	bin, home, folder, id string
}

func (d *desktop) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(d.bin, append([]string{"--home", d.home}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("desktop %v: %v: %s", args, err, errb.String())
	}
	return out.String()
}

// statusIn runs `status` inside ns, the daemon's namespace: the command
// asks the daemon's HTTP API, which listens on that namespace's loopback.
func (d *desktop) statusIn(t *testing.T, ns *netns.NS) string {
	t.Helper()
	out, err := ns.Output(t.Context(), nil, d.bin, "--home", d.home, "status")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newDesktop(t *testing.T, bin, name string) *desktop {
	t.Helper()
	d := &desktop{bin: bin, home: filepath.Join(t.TempDir(), "home"), folder: t.TempDir()}
	d.id = strings.TrimSpace(d.cli(t, "init", "--name", name))
	d.cli(t, "folder", "add", "--id", "docs", d.folder)
	return d
}

// syncLimit returns how long TestLossySync waits for the folders to
// match: PEERSYNC_IMPAIR_SYNC_LIMIT (a Go duration), default 5 minutes.
func syncLimit() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PEERSYNC_IMPAIR_SYNC_LIMIT")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Minute
}

// TestLossySync: two real desktop processes, one in A and one in B, across
// a wire that loses 5% of the packets each way and delays each by 100 ms
// each way (200 ms round trip), sync a 20 MiB folder (one 16 MiB file and
// 100 files of 40 KiB, all random) from A to B byte for byte. It logs the
// time taken and the paths status showed, and checks that the connection
// ends on TCP. Root only (skipped loudly otherwise):
//
//	go test -count=1 -v -run LossySync ./internal/impair
//
// "A dials": only A knows B's address, so only A dials (a race, TCP+TLS
// first, QUIC 150 ms later). "both dial": each knows the other's address
// and both dial at once. At a 200 ms round trip QUIC's shorter handshake
// often overtakes TCP's head start, or a simultaneous dial keeps a QUIC
// connection; the engine then moves the connection to TCP (sync's
// upgrade), because over QUIC (NewReno) this path moves about 50 KB/s: 7.5
// minutes for the folder, against 10–30 s over TCP with BBR.
func TestLossySync(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two desktop processes across a lossy wire for up to " + syncLimit().String())
	}
	requireRoot(t)
	bin := testutil.BuildBinary(t, "./examples/desktop")
	t.Run("A dials", func(t *testing.T) { lossySync(t, bin, false) })
	t.Run("both dial", func(t *testing.T) { lossySync(t, bin, true) })
}

func lossySync(t *testing.T, bin string, bothDial bool) {
	limit := syncLimit()
	w := New(t, Config{Delay: 100 * time.Millisecond, Loss: 0.05})
	a, b := newDesktop(t, bin, "alpha"), newDesktop(t, bin, "beta")
	addrA, addrB := AddrA.String()+":44996", AddrB.String()+":44996"
	a.cli(t, "peer", "add", "--name", "beta", "--addr", addrB, "--folders", "docs", b.id)
	if bothDial {
		b.cli(t, "peer", "add", "--name", "alpha", "--addr", addrA, "--folders", "docs", a.id)
	} else {
		b.cli(t, "peer", "add", "--name", "alpha", "--folders", "docs", a.id)
	}

	write := func(rel string, size int) {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		p := filepath.Join(a.folder, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("media/big.bin", 16<<20)
	for i := range 100 {
		write(fmt.Sprintf("docs%d/file%03d.dat", i%10, i), 40<<10)
	}

	start := time.Now()
	var procs []*netns.Proc
	for _, run := range []struct {
		ns     *netns.NS
		d      *desktop
		listen string
	}{{w.A, a, addrA}, {w.B, b, addrB}} {
		procs = append(procs, run.ns.Start(t, nil, bin, "--home", run.d.home, "run",
			"--listen", run.listen, "--ui", "none", "--no-discovery", "--scan-interval", "2s"))
	}
	defer netns.StopAll(t, procs...)

	// Poll for the path while waiting: status shows it only while the
	// peers are connected.
	paths := map[string]bool{}
	var why string
	for same := false; !same; {
		if time.Since(start) > limit {
			ab, ba := w.Stats()
			t.Fatalf("folders still differ after %v: %s; paths seen %v; A→B %+v; B→A %+v", limit, why, paths, ab, ba)
		}
		for _, line := range strings.Split(a.statusIn(t, w.A), "\n") {
			if strings.Contains(line, "connected") {
				paths[strings.TrimSpace(line)] = true
			}
		}
		same, why = testutil.SameTree(a.folder, b.folder)
		if !same {
			// Two processes' trees: no signal crosses to the test, so poll;
			// once a second because each pass also runs `desktop status`.
			time.Sleep(time.Second)
		}
	}
	took := time.Since(start)
	require.Eventually(t, func() bool {
		return strings.Contains(a.statusIn(t, w.A), " tcp")
	}, 30*time.Second, time.Second, "the connection ends on TCP")
	ab, ba := w.Stats()
	t.Logf("20 MiB (16 MiB + 100 × 40 KiB) A→B across 5%% loss, 100 ms each way: identical %v after launch", took.Round(100*time.Millisecond))
	t.Logf("status on A while syncing: %v", paths)
	t.Logf("wire A→B %+v; B→A %+v", ab, ba)
}
