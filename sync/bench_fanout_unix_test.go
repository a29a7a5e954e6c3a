//go:build unix

package sync

// BenchmarkFanOut measures issue 12's fan-out target from the sender's
// side: one sender, a fresh folder (PEERSYNC_BENCH_FILES small files,
// default 2,000, and one file of PEERSYNC_BENCH_MIB MiB, default 256),
// sent to 1 and to PEERSYNC_BENCH_PEERS (default 4) fresh receivers.
//
// The sender runs alone in a child process (this test binary again, in
// TestFanOutSenderChild), so that its CPU time (getrusage of that process:
// user + system) is its own and not the receivers'; the receivers are
// engines in this process. Per run it reports:
//
//   - sent-s: from launching the sender until its first scan is over and
//     every receiver has told it that it holds its final head (with big
//     files sent last, the second bundle applied; before that change, it
//     was the last byte of the one bundle sent);
//   - cpu-s: the sender's CPU time at that moment (its first scan
//     included: the same work in both rows);
//   - identical-s: from launch until every receiver's head is the
//     sender's (the files are then compared byte for byte, untimed);
//   - recv-cpu-s: the CPU time of this process (the receivers) over that
//     time, which shows what the receivers' share of the two cores is;
//   - the bundles the sender produced and its bundle bytes out.
//
// Rounds (PEERSYNC_BENCH_ROUNDS, default 3) alternate 1 and N receivers,
// the first alternating; medians are reported with the N/1 ratios. All
// five processes' worth of work share one machine, so identical-s of N
// peers includes N receivers' writes and checkouts; sent-s and cpu-s are
// what the sender does.
//
//	nice -n 10 go test ./sync -run '^$' -bench '^BenchmarkFanOut$' -benchtime 1x
//	PEERSYNC_BENCH_MIB=64 PEERSYNC_BENCH_ROUNDS=1 nice -n 10 go test ./sync -run '^$' -bench '^BenchmarkFanOut$' -benchtime 1x

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/internal/testutil"
)

// Environment of the sender child (TestFanOutSenderChild).
const (
	fanEnvSeed  = "PEERSYNC_FANOUT_SEED"  // hex ed25519 seed of the sender's identity
	fanEnvDir   = "PEERSYNC_FANOUT_DIR"   // the folder to send
	fanEnvHome  = "PEERSYNC_FANOUT_HOME"  // the sender's home
	fanEnvPeers = "PEERSYNC_FANOUT_PEERS" // "<DeviceID>@<addr>" joined by spaces
	fanEnvProf  = "PEERSYNC_FANOUT_CPUPROFILE"
)

// fanResult is one run's figures.
type fanResult struct {
	sent, identical time.Duration
	cpu             time.Duration // the sender's, until sent
	recvCPU         time.Duration // this process's (the receivers'), launch to identical
	bundles         int
	bytesOut        int64
}

// loadAvg is the first three fields of /proc/loadavg ("" elsewhere).
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func BenchmarkFanOut(b *testing.B) {
	files := envInt("PEERSYNC_BENCH_FILES", 2000)
	mib := envInt("PEERSYNC_BENCH_MIB", 256)
	peers := envInt("PEERSYNC_BENCH_PEERS", 4)
	rounds := envInt("PEERSYNC_BENCH_ROUNDS", 3)
	data := b.TempDir()
	fanOutData(b, data, files, mib)
	for i := 0; i < b.N; i++ {
		var one, many []fanResult
		for r := 0; r < rounds; r++ {
			order := []int{1, peers}
			if r%2 == 1 {
				order = []int{peers, 1}
			}
			for _, n := range order {
				res := fanOutRun(b, data, n)
				b.Logf("round %d, %d peer(s): sent %.2f s, sender CPU %.2f s, identical %.2f s, receivers' CPU %.2f s, %d bundle(s), %d bytes out, load %s",
					r, n, res.sent.Seconds(), res.cpu.Seconds(), res.identical.Seconds(), res.recvCPU.Seconds(), res.bundles, res.bytesOut, loadAvg())
				if n == 1 {
					one = append(one, res)
				} else {
					many = append(many, res)
				}
			}
		}
		med := func(rs []fanResult, f func(fanResult) time.Duration) float64 {
			ds := make([]time.Duration, len(rs))
			for i, r := range rs {
				ds[i] = f(r)
			}
			slices.Sort(ds)
			return ds[len(ds)/2].Seconds()
		}
		for _, m := range []struct {
			name string
			f    func(fanResult) time.Duration
		}{
			{"sent", func(r fanResult) time.Duration { return r.sent }},
			{"cpu", func(r fanResult) time.Duration { return r.cpu }},
			{"identical", func(r fanResult) time.Duration { return r.identical }},
			{"recv-cpu", func(r fanResult) time.Duration { return r.recvCPU }},
		} {
			a, z := med(one, m.f), med(many, m.f)
			b.ReportMetric(a, m.name+"-1-s")
			b.ReportMetric(z, fmt.Sprintf("%s-%d-s", m.name, peers))
			b.ReportMetric(z/a, fmt.Sprintf("%s-%d/1", m.name, peers))
		}
		b.ReportMetric(float64(many[0].bundles), fmt.Sprintf("bundles-%d", peers))
		b.ReportMetric(float64(many[0].bytesOut)/float64(one[0].bytesOut), fmt.Sprintf("bytes-out-%d/1", peers))
	}
}

// fanOutData writes files small random files in 20 directories and one
// big random file under dir.
func fanOutData(b *testing.B, dir string, files, mib int) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	fill := func(p []byte) {
		for i := 0; i+8 <= len(p); i += 8 {
			v := rng.Uint64()
			for k := range 8 {
				p[i+k] = byte(v >> (8 * k))
			}
		}
	}
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%05d.txt", i))
		require.NoError(b, os.MkdirAll(filepath.Dir(p), 0o755))
		n := 1024 + rng.IntN(3*1024)
		fill(buf[:n])
		require.NoError(b, os.WriteFile(p, buf[:n], 0o644))
	}
	f, err := os.Create(filepath.Join(dir, "big.bin"))
	require.NoError(b, err)
	for range mib {
		fill(buf)
		_, err := f.Write(buf)
		require.NoError(b, err)
	}
	require.NoError(b, f.Close())
}

// fanOutRun sends a copy of data from a new sender process to n new
// receivers and returns the run's figures, after checking that every
// receiver holds the data byte for byte.
func fanOutRun(b *testing.B, data string, n int) fanResult {
	src := b.TempDir()
	out, err := exec.Command("cp", "-a", data+"/.", src).CombinedOutput()
	require.NoError(b, err, "%s", out)
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	sid, err := crypto.NewIdentity(ed25519.NewKeyFromSeed(seed))
	require.NoError(b, err)
	var receivers []*node
	var addrs []string
	for i := range n {
		r := newNodeCfg(b, fmt.Sprintf("r%d", i), func(c *Config) {})
		require.NoError(b, r.e.AddPeer(PeerConfig{Device: sid.DeviceID(), Folders: []string{"docs"}}))
		r.start(b)
		receivers = append(receivers, r)
		addrs = append(addrs, r.e.DeviceID().String()+"@"+r.e.Addr().String())
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFanOutSenderChild$", "-test.v")
	cmd.Env = append(os.Environ(),
		fanEnvSeed+"="+hex.EncodeToString(seed),
		fanEnvDir+"="+src,
		fanEnvHome+"="+b.TempDir(),
		fanEnvPeers+"="+strings.Join(addrs, " "))
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	cmd.Stderr = os.Stderr
	t0, c0 := time.Now(), testutil.ProcessCPU()
	require.NoError(b, cmd.Start())
	var exited gosync.Once
	finish := func() {
		exited.Do(func() {
			_ = stdin.Close()
			_ = cmd.Wait()
		})
	}
	b.Cleanup(finish)

	// The child prints "sent CPU_NS HEAD BUNDLES BYTES_OUT" once every
	// receiver has the sender's final head.
	var res fanResult
	var head gitstore.Hash
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "sent" {
			continue
		}
		res.sent = time.Since(t0)
		cpu, err := strconv.ParseInt(f[1], 10, 64)
		require.NoError(b, err)
		res.cpu = time.Duration(cpu)
		head, err = gitstore.ParseHash(f[2])
		require.NoError(b, err)
		res.bundles, _ = strconv.Atoi(f[3])
		res.bytesOut, _ = strconv.ParseInt(f[4], 10, 64)
		break
	}
	require.NotZero(b, res.sent, "the sender child ended without sending")
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	require.Eventually(b, func() bool {
		for _, r := range receivers {
			if st := r.e.Status(); len(st.Folders) != 1 || st.Folders[0].Head != head {
				return false
			}
		}
		return true
	}, 10*time.Minute, 20*time.Millisecond, "every receiver reaches the sender's head")
	res.identical, res.recvCPU = time.Since(t0), testutil.ProcessCPU()-c0
	finish()
	want, err := testutil.Snapshot(src)
	require.NoError(b, err)
	for _, r := range receivers {
		got, err := testutil.Snapshot(r.dir)
		require.NoError(b, err)
		require.Equal(b, want, got, "receiver %s holds the sender's files", r.e.cfg.Home)
	}
	for _, r := range receivers {
		require.NoError(b, r.e.Close())
	}
	return res
}

// TestFanOutSenderChild is BenchmarkFanOut's sender process; it does
// nothing unless BenchmarkFanOut started it.
func TestFanOutSenderChild(t *testing.T) {
	if os.Getenv(fanEnvSeed) == "" {
		t.Skip("the sender process of BenchmarkFanOut")
	}
	if p := os.Getenv(fanEnvProf); p != "" {
		f, err := os.Create(p)
		require.NoError(t, err)
		require.NoError(t, pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	seed, err := hex.DecodeString(os.Getenv(fanEnvSeed))
	require.NoError(t, err)
	id, err := crypto.NewIdentity(ed25519.NewKeyFromSeed(seed))
	require.NoError(t, err)
	peers := strings.Fields(os.Getenv(fanEnvPeers))
	var mu gosync.Mutex
	done := map[crypto.DeviceID]bool{}
	bundles := 0
	all := make(chan struct{})
	hooks := &testHooks{
		produce: func(since []gitstore.Hash, w io.Writer) io.Writer {
			mu.Lock()
			bundles++
			mu.Unlock()
			return w
		},
		transferred: func(p Progress, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if p.Direction == dirSend && p.Total > 0 && p.Bytes == p.Total && !done[p.Peer] {
				done[p.Peer] = true
				if len(done) == len(peers) {
					close(all)
				}
			}
		},
	}
	e, err := New(Config{Home: os.Getenv(fanEnvHome), Identity: id,
		Network: NetworkConfig{ListenAddr: "127.0.0.1:0"}, DialInterval: 100 * time.Millisecond, test: hooks})
	require.NoError(t, err)
	require.NoError(t, e.AddFolder(context.Background(), FolderConfig{ID: "docs", Path: os.Getenv(fanEnvDir)}))
	for _, p := range peers {
		dev, addr, ok := strings.Cut(p, "@")
		require.True(t, ok)
		d, err := crypto.ParseDeviceID(dev)
		require.NoError(t, err)
		require.NoError(t, e.AddPeer(PeerConfig{Device: d, Addrs: []string{addr}, Folders: []string{"docs"}}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx) }()
	select {
	case <-all:
	case err := <-ran:
		t.Fatalf("Run ended: %v", err)
	}
	// A first scan that found big files beside small ones sends them in a
	// second bundle (gitstore's "Big files last"): "sent" is when the scan
	// is over and every peer has our final head (it applied the last
	// bundle and told us).
	require.Eventually(t, func() bool {
		st := e.Status()
		if st.Folders[0].Scan != nil {
			return false
		}
		for _, p := range st.Peers {
			if p.Known["docs"] != st.Folders[0].Head {
				return false
			}
		}
		return true
	}, 10*time.Minute, 5*time.Millisecond, "every peer has the sender's final head")
	cpu := testutil.ProcessCPU()
	mu.Lock()
	n := bundles
	mu.Unlock()
	st := e.Status()
	for _, p := range st.Peers {
		fmt.Fprintf(os.Stderr, "fan-out sender: peer %s over %q\n", p.Device.Short(), p.Path)
	}
	fmt.Printf("sent %d %s %d %d\n", cpu, st.Folders[0].Head, n, e.Traffic().BundleBytesOut)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark is done with us
	require.NoError(t, e.Close())
	cancel()
	require.NoError(t, <-ran)
}
