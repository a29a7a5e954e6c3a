//go:build linux

package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

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
	pa := nsA.Start(t, nil, bin, "--home", a.home, "run", "--listen", ":44996", "--ui", "none", "--lan-name", "alpha-web")
	pb := nsB.Start(t, nil, bin, "--home", b.home, "run", "--listen", ":44996", "--ui", "none")
	defer netns.StopAll(t, pa, pb)

	waitSame(t, a.folder, b.folder, 60*time.Second)
	t.Logf("LAN: from launch to first sync, no addresses typed: %v", time.Since(start).Round(time.Millisecond))
	assert.True(t, strings.Contains(pb.Output(), "10.77.0.1") || strings.Contains(pa.Output(), "10.77.0.2"),
		"the connection used the LAN address found by discovery")

	// --lan-name: alpha-web.local resolves to alpha's LAN address.
	var got []netip.Addr
	require.NoError(t, nsB.Do(func() error {
		var err error
		got, err = mdnsLookupA("alpha-web.local.", 3*time.Second)
		return err
	}))
	assert.Contains(t, got, netip.MustParseAddr("10.77.0.1"))

	writeFile(t, b.folder, "notes/reply.txt", []byte("and back\n"))
	waitSame(t, b.folder, a.folder, 60*time.Second)
	_, err := os.Stat(filepath.Join(a.folder, "notes", "reply.txt"))
	require.NoError(t, err)
}

// mdnsLookupA asks the LAN for name's A records with a one-shot (legacy
// unicast) mDNS query, as simple resolvers do.
func mdnsLookupA(name string, wait time.Duration) ([]netip.Addr, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	q := dnsmessage.Message{Questions: []dnsmessage.Question{{
		Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET,
	}}}
	pkt, err := q.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := conn.WriteToUDP(pkt, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}); err != nil {
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 9000)
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			return nil, fmt.Errorf("no mDNS answer for %s: %w", name, err)
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil {
			continue
		}
		var out []netip.Addr
		for _, a := range m.Answers {
			if r, ok := a.Body.(*dnsmessage.AResource); ok && strings.EqualFold(a.Header.Name.String(), name) {
				out = append(out, netip.AddrFrom4(r.A))
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
}
