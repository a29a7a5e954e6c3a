//go:build linux

package transport

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/internal/natlab"
)

// Real kernel NAT: the topology of internal/natlab (two hosts, each behind
// a Linux router doing iptables MASQUERADE and dropping unsolicited WAN
// packets, and a STUN/TURN server on the "internet" between them). The
// hosts' Transports run in this process, on sockets opened inside their
// namespaces; pion's TURN sockets too (natlab.Net); signaling is in memory.
// Root only: skipped loudly otherwise, and in -short mode.
//
// PEERSYNC_NAT_RUNS=n repeats each connection n times (fresh sockets, same
// topology) and logs every time to first authenticated byte.

// natRuns is how many connections each test makes.
func natRuns(t *testing.T) int {
	n, err := strconv.Atoi(os.Getenv("PEERSYNC_NAT_RUNS"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func natLab(t *testing.T, symmetric bool) *natlab.Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("real-NAT test: network namespaces and iptables, several seconds")
	}
	return natlab.New(t, natlab.Config{Symmetric: symmetric})
}

// startPionTURN runs a pion/turn STUN/TURN server on the lab's server
// address, port 3478, in-process.
func startPionTURN(t *testing.T, lab *natlab.Lab) string {
	t.Helper()
	addr := net.JoinHostPort(lab.ServerIP.String(), "3478")
	pc, err := natlab.ListenUDP(lab.Internet, addr)
	require.NoError(t, err)
	n, err := natlab.NewNet(lab.Internet)
	require.NoError(t, err)
	startTURNServer(t, pc, net.IP(lab.ServerIP.AsSlice()), n)
	return addr
}

// startCoturn runs Debian's coturn on the lab's server address, port 3478:
// long-term credentials, UDP only, listening and relaying on that address
// only.
func startCoturn(t *testing.T, lab *natlab.Lab) string {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		msg := "SKIPPING " + t.Name() + ": no turnserver (apt-get install coturn)"
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		t.Skip(msg)
	}
	dir := t.TempDir()
	ip := lab.ServerIP.String()
	p := lab.Internet.Start(t, nil, bin, "-n",
		"--listening-ip="+ip, "--relay-ip="+ip, "--listening-port=3478",
		"--lt-cred-mech", "--user="+testTURNUser+":"+testTURNPass, "--realm=peersync",
		"--no-tls", "--no-dtls", "--no-tcp", "--no-tcp-relay", "--no-cli",
		"--pidfile="+filepath.Join(dir, "turnserver.pid"),
		"--userdb="+filepath.Join(dir, "turndb"),
		"--log-file=stdout", "--simple-log", "--no-rfc5780")
	addr := net.JoinHostPort(ip, "3478")
	if !stunAnswers(t, lab, addr, 10*time.Second) {
		t.Fatalf("coturn does not answer STUN on %s:\n%s", addr, p.Output())
	}
	return addr
}

// stunAnswers reports whether a STUN server answers a binding request at
// addr, asked from the lab's internet namespace, within timeout.
func stunAnswers(t *testing.T, lab *natlab.Lab, addr string, timeout time.Duration) bool {
	t.Helper()
	pc, err := natlab.ListenUDP(lab.Internet, net.JoinHostPort(lab.ServerIP.String(), "0"))
	require.NoError(t, err)
	defer pc.Close()
	ua, err := net.ResolveUDPAddr("udp", addr)
	require.NoError(t, err)
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		_, err := pc.WriteTo(req.Raw, ua)
		require.NoError(t, err)
		require.NoError(t, pc.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		n, _, err := pc.ReadFrom(buf)
		if err == nil {
			m := &stun.Message{Raw: buf[:n]}
			if m.Decode() == nil && m.TransactionID == req.TransactionID {
				return true
			}
		}
	}
	return false
}

// natHost is one side: its Transport and ICE configuration.
type natHost struct {
	tr  *Transport
	cfg ICEConfig
}

func newNATHost(t *testing.T, lab *natlab.Lab, i int, id, peer *crypto.Identity, server string, turnOn bool) *natHost {
	t.Helper()
	pc, err := natlab.ListenUDP(lab.Hosts[i], net.JoinHostPort(lab.HostIPs[i].String(), "0"))
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	var log *slog.Logger
	if os.Getenv("PEERSYNC_NAT_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", i)
	}
	tr, err := New(Config{Identity: id, PacketConn: pc, Authorize: allow(peer), HandshakeTimeout: 5 * time.Second, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	n, err := natlab.NewNet(lab.Hosts[i])
	require.NoError(t, err)
	cfg := ICEConfig{STUNServers: []string{server}, Net: n}
	if turnOn {
		cfg.TURNServers = []TURNServer{{Addr: server, User: testTURNUser, Pass: testTURNPass}}
	}
	return &natHost{tr: tr, cfg: cfg}
}

// natConnect connects host A to host B across the lab, sends a byte and
// returns the time from the start of DialICE to B reading that byte, with
// both Conns.
func natConnect(t *testing.T, ctx context.Context, a, b *natHost, aID, bID *crypto.Identity) (time.Duration, *Conn, *Conn) {
	t.Helper()
	sig := newMemSignal(aID, bID)
	start := time.Now()
	accepted := answerOne(ctx, b.tr, sig.endpoint(bID, bID), b.cfg)
	out, err := a.tr.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), a.cfg)
	require.NoError(t, err)
	s, err := out.OpenStream(ctx)
	require.NoError(t, err)
	_, err = s.Write([]byte{42})
	require.NoError(t, err)
	r := <-accepted
	require.NoError(t, r.err)
	rs, err := r.c.AcceptStream(ctx)
	require.NoError(t, err)
	var one [1]byte
	_, err = io.ReadFull(rs, one[:])
	require.NoError(t, err)
	took := time.Since(start)
	assert.EqualValues(t, 42, one[0])
	require.NoError(t, s.Close())
	return took, out, r.c
}

// natScenario connects A and B natRuns times across lab and checks the
// path; it returns the times to first authenticated byte.
func natScenario(t *testing.T, lab *natlab.Lab, server string, turnOn bool, wantPath Path) []time.Duration {
	t.Helper()
	aID, bID := newIdentity(t), newIdentity(t)
	var times []time.Duration
	for run := range natRuns(t) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		a := newNATHost(t, lab, 0, aID, bID, server, turnOn)
		b := newNATHost(t, lab, 1, bID, aID, server, turnOn)
		took, out, in := natConnect(t, ctx, a, b, aID, bID)
		t.Logf("run %d: first authenticated byte after %v, path %s, %s -> %s", run, took, out.Path(), out.LocalAddr(), out.RemoteAddr())
		times = append(times, took)
		assert.Equal(t, wantPath, out.Path())
		assert.Equal(t, wantPath, in.Path())
		if run == 0 {
			exchange(t, ctx, out, in, 1<<20)
			exchange(t, ctx, in, out, 256<<10)
			if mib, _ := strconv.Atoi(os.Getenv("PEERSYNC_NAT_BULK_MIB")); mib > 0 {
				bulk(t, out, in, mib)
			}
		}
		if wantPath == PathICESrflx {
			// QUIC crossed both NATs: each side sees the other's public address.
			assert.Equal(t, lab.PublicIPs[1].String(), out.RemoteAddr().(*net.UDPAddr).IP.String())
			assert.Equal(t, lab.PublicIPs[0].String(), in.RemoteAddr().(*net.UDPAddr).IP.String())
		}
		require.NoError(t, out.Close())
		select {
		case <-in.Done():
		case <-ctx.Done():
			t.Fatal("the acceptor's connection outlived the dialer's")
		}
		require.NoError(t, a.tr.Close())
		require.NoError(t, b.tr.Close())
		cancel()
	}
	slices.Sort(times)
	t.Logf("time to first authenticated byte over %d runs: min %v, median %v, max %v",
		len(times), times[0], times[len(times)/2], times[len(times)-1])
	return times
}

func TestNATCone(t *testing.T) {
	// Test A: two cone NATs (plain MASQUERADE): a direct pair through both,
	// punched by ICE; QUIC on it.
	lab := natLab(t, false)
	server := startPionTURN(t, lab)
	times := natScenario(t, lab, server, false, PathICESrflx)
	for _, d := range times {
		assert.Less(t, d, time.Second, "target: < 1 s direct (docs/design.md section 9)")
	}
}

func TestNATConeWithTURN(t *testing.T) {
	// A TURN server offered, but the direct pair works: no relay.
	lab := natLab(t, false)
	server := startPionTURN(t, lab)
	natScenario(t, lab, server, true, PathICESrflx)
}

func TestNATSymmetricPionTURN(t *testing.T) {
	// Test B: two symmetric NATs (MASQUERADE --random-fully): only the
	// relay works, through pion/turn.
	lab := natLab(t, true)
	server := startPionTURN(t, lab)
	times := natScenario(t, lab, server, true, PathICERelay)
	for _, d := range times {
		assert.Less(t, d, 3*time.Second, "target: < 3 s relay (docs/design.md section 9)")
	}
}

func TestNATSymmetricCoturn(t *testing.T) {
	// Test C: as B, with Debian's coturn as the TURN server.
	lab := natLab(t, true)
	server := startCoturn(t, lab)
	times := natScenario(t, lab, server, true, PathICERelay)
	for _, d := range times {
		assert.Less(t, d, 3*time.Second, "target: < 3 s relay (docs/design.md section 9)")
	}

	t.Run("wrong credentials", func(t *testing.T) {
		aID, bID := newIdentity(t), newIdentity(t)
		a := newNATHost(t, lab, 0, aID, bID, server, true)
		a.cfg.TURNServers[0].Pass = "wrong"
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := a.tr.DialICE(ctx, bID.DeviceID(), newMemSignal(aID, bID).endpoint(aID, aID), a.cfg)
		t.Logf("after %v: %v", time.Since(start), err)
		assert.ErrorIs(t, err, ErrTURN)
		assert.ErrorContains(t, err, "401")
		assert.Less(t, time.Since(start), 3*time.Second)
	})
}

func TestNATSymmetricWithoutTURNFails(t *testing.T) {
	// Symmetric NATs and no relay: ICE finds nothing, and says so within
	// the caller's deadline.
	lab := natLab(t, true)
	server := startPionTURN(t, lab)
	aID, bID := newIdentity(t), newIdentity(t)
	a := newNATHost(t, lab, 0, aID, bID, server, false)
	b := newNATHost(t, lab, 1, bID, aID, server, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	sig := newMemSignal(aID, bID)
	accepted := answerOne(ctx, b.tr, sig.endpoint(bID, bID), b.cfg)
	_, err := a.tr.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), a.cfg)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	r := <-accepted
	assert.Error(t, r.err)
}

// bulk sends mib MiB from out to in and logs the rate (PEERSYNC_NAT_BULK_MIB).
func bulk(t *testing.T, out, in *Conn, mib int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	s, err := out.OpenStream(ctx)
	require.NoError(t, err)
	start := time.Now()
	go func() {
		buf := make([]byte, 1<<20)
		for range mib {
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
		s.Close()
	}()
	rs, err := in.AcceptStream(ctx)
	require.NoError(t, err)
	n, err := io.Copy(io.Discard, rs)
	require.NoError(t, err)
	d := time.Since(start)
	t.Logf("bulk over %s: %d MiB in %v = %.1f MiB/s", out.Path(), n>>20, d.Round(time.Millisecond), float64(n)/(1<<20)/d.Seconds())
}
