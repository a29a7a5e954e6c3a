//go:build linux

package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/netns"
	"github.com/peersync/peersync/internal/testutil"
)

// TestLANDiscoverySync: two devices on one LAN (two network namespaces on a
// bridge, no NAT, no rendezvous) that were given only each other's DeviceID,
// no address, find each other with mDNS and sync a folder.
func TestLANDiscoverySync(t *testing.T) {
	if testing.Short() {
		t.Skip("runs desktop processes in network namespaces")
	}
	netns.Require(t)
	bin := testutil.BuildBinary(t, "./examples/desktop")
	a, b := newDevice(t, bin, "alpha"), newDevice(t, bin, "beta")
	a.cli(t, "peer", "add", "--name", "beta", "--folders", "docs", b.id)
	b.cli(t, "peer", "add", "--name", "alpha", "--folders", "docs", a.pubkey)

	lan := netns.NewBridge(t)
	nsA, nsB := netns.New(t), netns.New(t)
	lan.Attach(t, nsA, "eth0", netip.MustParsePrefix("10.77.0.1/24"))
	lan.Attach(t, nsB, "eth0", netip.MustParsePrefix("10.77.0.2/24"))

	writeFile(t, a.folder, "notes/lan.txt", []byte("found you on the LAN\n"))
	start := time.Now()
	pa := nsA.Start(t, nil, bin, "--home", a.home, "run", "--listen", ":44996", "--ui", "none")
	pb := nsB.Start(t, nil, bin, "--home", b.home, "run", "--listen", ":44996", "--ui", "none")
	defer func() {
		for _, p := range []*netns.Proc{pa, pb} {
			_ = p.Signal(syscall.SIGINT)
			select {
			case <-p.Done():
				assert.NoError(t, p.Err(), "clean exit on SIGINT")
			case <-time.After(15 * time.Second):
				t.Error("desktop did not stop on SIGINT")
			}
			if t.Failed() {
				t.Logf("output:\n%s", p.Output())
			}
		}
	}()

	waitSame(t, a.folder, b.folder, 60*time.Second)
	t.Logf("LAN: from launch to first sync, no addresses typed: %v", time.Since(start).Round(time.Millisecond))
	assert.True(t, strings.Contains(pb.Output(), "10.77.0.1") || strings.Contains(pa.Output(), "10.77.0.2"),
		"the connection used the LAN address found by discovery")

	writeFile(t, b.folder, "notes/reply.txt", []byte("and back\n"))
	waitSame(t, b.folder, a.folder, 60*time.Second)
	_, err := os.Stat(filepath.Join(a.folder, "notes", "reply.txt"))
	require.NoError(t, err)
}
