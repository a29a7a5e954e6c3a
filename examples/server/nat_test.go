//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/natlab"
	"github.com/peersync/peersync/internal/netns"
	"github.com/peersync/peersync/internal/testutil"
)

// TestNATSync is issue 4's promise end to end: two desktops, each behind
// its own home NAT (real iptables NAT in network namespaces), given only
// each other's DeviceID, sync a folder through a server on the "internet":
// directly (ICE server-reflexive) behind cone NATs, through the server's
// TURN relay behind symmetric NATs.
func TestNATSync(t *testing.T) {
	if testing.Short() {
		t.Skip("runs server and desktop processes in NAT namespaces")
	}
	serverBin := testutil.BuildBinary(t, "./examples/server")
	desktopBin := testutil.BuildBinary(t, "./examples/desktop")
	for _, tc := range []struct {
		name      string
		symmetric bool
		path      string
	}{
		{"cone NATs: direct", false, "ice-srflx"},
		{"symmetric NATs: TURN relay", true, "ice-relay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := natlab.New(t, natlab.Config{Symmetric: tc.symmetric})
			s := newProc(t, serverBin, "hosted")
			a := newProc(t, desktopBin, "alpha")
			b := newProc(t, desktopBin, "beta")
			s.cli(t, "peer", "add", "--name", "alpha", a.id)
			s.cli(t, "peer", "add", "--name", "beta", b.id)
			a.cli(t, "peer", "add", "--name", "beta", "--folders", "docs", b.id)
			b.cli(t, "peer", "add", "--name", "alpha", "--folders", "docs", a.id)
			require.NoError(t, os.WriteFile(filepath.Join(a.folder, "across.txt"), []byte("two NATs apart\n"), 0o644))

			ip := lab.ServerIP.String()
			srv := lab.Internet.Start(t, nil, serverBin, "--home", s.home, "run", "--listen", ip+":44996",
				"--stun-listen", ip+":3478", "--turn-user", "peersync", "--turn-pass", "test-pass",
				"--turn-relay-ip", ip, "--no-discovery")
			require.True(t, srv.WaitOutput("STUN and TURN on udp", 10*time.Second), srv.Output())
			rv := fmt.Sprintf("%s@%s:44996", s.id, ip)
			turn := fmt.Sprintf("turn://peersync:test-pass@%s:3478", ip)
			start := time.Now()
			var procs []*netns.Proc
			for i, d := range []*proc{a, b} {
				procs = append(procs, lab.Hosts[i].Start(t, nil, desktopBin, "--home", d.home, "run",
					"--listen", ":44996", "--ui", "none", "--no-discovery", "--rendezvous", rv, "--turn", turn))
			}
			defer netns.StopAll(t, append(procs, srv)...)

			waitSame(t, a.folder, b.folder)
			t.Logf("%s: launch to first sync across the NATs: %v", tc.name, time.Since(start).Round(time.Millisecond))
			require.Eventually(t, func() bool {
				return strings.Contains(statusIn(t, lab.Hosts[0], a), " "+tc.path)
			}, 15*time.Second, 100*time.Millisecond, "status shows the %s path", tc.path)
			_, err := os.Stat(filepath.Join(s.folder, "across.txt"))
			assert.True(t, os.IsNotExist(err), "the server shares no folder: it relayed, it did not mirror")

			require.NoError(t, os.WriteFile(filepath.Join(b.folder, "reply.txt"), []byte("and back\n"), 0o644))
			waitSame(t, b.folder, a.folder)
		})
	}
}

// statusIn runs `status` for p inside the namespace its daemon runs in:
// while a daemon runs, status asks its API on that namespace's loopback.
func statusIn(t *testing.T, ns *netns.NS, p *proc) string {
	t.Helper()
	out, err := ns.Output(t.Context(), nil, p.bin, "--home", p.home, "status")
	require.NoError(t, err)
	return out
}

// TestUDPBlockedFallsBackToTCP: a desktop on a network that drops all UDP
// (some corporate and hotel networks) still reaches the hosted server,
// given only its address (unpinned), over TCP+TLS, registers at its
// rendezvous and has its folder mirrored there.
func TestUDPBlockedFallsBackToTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs server and desktop processes in NAT namespaces")
	}
	serverBin := testutil.BuildBinary(t, "./examples/server")
	desktopBin := testutil.BuildBinary(t, "./examples/desktop")
	lab := natlab.New(t, natlab.Config{})
	// Router A forwards no UDP at all from its LAN.
	out, err := lab.Routers[0].Output(t.Context(), nil, "iptables", "-I", "FORWARD", "-i", "lan", "-p", "udp", "-j", "DROP")
	require.NoError(t, err, out)

	s := newProc(t, serverBin, "hosted")
	a := newProc(t, desktopBin, "alpha")
	ip := lab.ServerIP.String()
	s.cli(t, "peer", "add", "--name", "alpha", "--folders", "docs", a.id)
	a.cli(t, "peer", "add", "--name", "hosted", "--addr", ip+":44996", "--folders", "docs", s.id)
	require.NoError(t, os.WriteFile(filepath.Join(a.folder, "behind-a-firewall.txt"), []byte("no UDP here\n"), 0o644))

	srv := lab.Internet.Start(t, nil, serverBin, "--home", s.home, "run", "--listen", ip+":44996",
		"--stun-listen", ip+":3478", "--no-discovery")
	require.True(t, srv.WaitOutput("STUN", 10*time.Second), srv.Output())
	desk := lab.Hosts[0].Start(t, nil, desktopBin, "--home", a.home, "run",
		"--listen", ":44996", "--ui", "none", "--no-discovery", "--rendezvous", ip+":44996")
	defer netns.StopAll(t, desk, srv)

	waitSame(t, a.folder, s.folder)
	require.Eventually(t, func() bool {
		st := statusIn(t, lab.Hosts[0], a)
		return strings.Contains(st, "connected "+ip+":44996 public tcp") &&
			strings.Contains(st, "rendezvous  "+ip+":44996  "+s.id+" (unpinned)  registered")
	}, 15*time.Second, 100*time.Millisecond, "status shows the tcp path and the learned, unpinned rendezvous")
}
