//go:build linux

package discovery_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/deviceid"
	"github.com/peersync/peersync/discovery"
	"github.com/peersync/peersync/internal/netns"
)

// The namespace tests run this test binary again inside a namespace as a
// helper process (TestHelperProcess), configured by environment variables,
// which prints every update as a JSON line prefixed by "UPDATE ".

const helperEnv = "PEERSYNC_DISCOVERY_HELPER"

func testID(b byte) deviceid.ID {
	var id deviceid.ID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// startHelper runs a Discoverer inside ns for at most life.
func startHelper(t *testing.T, ns *netns.NS, id deviceid.ID, name string, port int, announce bool, hostName string) *netns.Proc {
	t.Helper()
	return startHelperFor(t, ns, id, name, port, announce, hostName, 60*time.Second)
}

func startHelperFor(t *testing.T, ns *netns.NS, id deviceid.ID, name string, port int, announce bool, hostName string, life time.Duration) *netns.Proc {
	t.Helper()
	env := []string{
		helperEnv + "=1",
		"HELPER_ID=" + id.String(),
		"HELPER_NAME=" + name,
		"HELPER_PORT=" + strconv.Itoa(port),
		"HELPER_ANNOUNCE=" + strconv.FormatBool(announce),
		"HELPER_HOSTNAME=" + hostName,
		"HELPER_LIFE=" + life.String(),
	}
	return ns.Start(t, env, os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
}

func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process of the namespace tests, not a test")
	}
	id, err := deviceid.Parse(os.Getenv("HELPER_ID"))
	require.NoError(t, err)
	port, _ := strconv.Atoi(os.Getenv("HELPER_PORT"))
	life, err := time.ParseDuration(os.Getenv("HELPER_LIFE"))
	require.NoError(t, err)
	d, err := discovery.New(discovery.Config{
		Device:   id,
		Name:     os.Getenv("HELPER_NAME"),
		Port:     port,
		Announce: os.Getenv("HELPER_ANNOUNCE") == "true",
		HostName: os.Getenv("HELPER_HOSTNAME"),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), life)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	fmt.Println("STARTED")
	for p := range d.Updates() {
		b, err := json.Marshal(p)
		require.NoError(t, err)
		fmt.Printf("UPDATE %s\n", b)
	}
	err = <-errc
	fmt.Println("RUN RETURNED", err)
	b, err := json.Marshal(d.Peers())
	require.NoError(t, err)
	fmt.Printf("PEERS %s\n", b)
}

// updates returns the peers reported by a helper so far.
func updates(p *netns.Proc) []discovery.Peer { return parseUpdates(p.Output()) }

// parseUpdates reads the UPDATE lines of a helper's output.
func parseUpdates(out string) []discovery.Peer {
	var ups []discovery.Peer
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "UPDATE ")
		if !ok {
			continue
		}
		var peer discovery.Peer
		if json.Unmarshal([]byte(line), &peer) == nil {
			ups = append(ups, peer)
		}
	}
	return ups
}

// waitLast waits until the helper's latest update satisfies cond; each
// line the helper prints is the signal (timeout bounds a hang). It
// returns that update, or the latest one and false.
func waitLast(p *netns.Proc, timeout time.Duration, cond func(discovery.Peer) bool) (discovery.Peer, bool) {
	var last discovery.Peer
	ok := p.WaitFor(func(out string) bool {
		ups := parseUpdates(out)
		if len(ups) == 0 {
			return false
		}
		last = ups[len(ups)-1]
		return cond(last)
	}, timeout)
	return last, ok
}

// waitPeer waits until the helper reports id with address want; each line
// the helper prints is the signal (timeout bounds a hang).
func waitPeer(t *testing.T, p *netns.Proc, id deviceid.ID, want netip.AddrPort, timeout time.Duration) discovery.Peer {
	t.Helper()
	var found discovery.Peer
	ok := p.WaitFor(func(out string) bool {
		for _, peer := range parseUpdates(out) {
			if peer.Device == id && slices.Contains(peer.Addrs, want) {
				found = peer
				return true
			}
		}
		return false
	}, timeout)
	if !ok {
		t.Fatalf("no update for %s at %s within %v; output:\n%s", id.Short(), want, timeout, p.Output())
	}
	return found
}

func TestTwoNamespacesFindEachOther(t *testing.T) {
	netns.Require(t)
	lan := netns.NewBridge(t)
	nsA, nsB := netns.New(t), netns.New(t)
	addrA := lan.Attach(t, nsA, "eth0", netip.MustParsePrefix("10.88.0.1/24"))
	addrB := lan.Attach(t, nsB, "eth0", netip.MustParsePrefix("10.88.0.2/24"))
	idA, idB := testID(1), testID(100)

	start := time.Now()
	pa := startHelper(t, nsA, idA, "alpha", 44996, true, "")
	pb := startHelper(t, nsB, idB, "beta.example", 44997, true, "")
	peerB := waitPeer(t, pa, idB, netip.AddrPortFrom(addrB, 44997), 15*time.Second)
	peerA := waitPeer(t, pb, idA, netip.AddrPortFrom(addrA, 44996), 15*time.Second)
	t.Logf("found each other in %v", time.Since(start).Round(time.Millisecond))

	assert.Equal(t, "alpha", peerA.Name)
	assert.Equal(t, "beta-example", peerB.Name, "dots in names become dashes")
	assert.True(t, peerA.Expires.After(peerA.Seen))
	// Neither reports itself.
	for _, p := range updates(pa) {
		assert.NotEqual(t, idA, p.Device)
	}
	for _, p := range updates(pb) {
		assert.NotEqual(t, idB, p.Device)
	}

	t.Logf("A saw B as %v", peerB)

	// B's address changes (DHCP gave it another): A learns within the
	// interface check interval, and the cache-flush bit drops the old one.
	require.NoError(t, nsB.Sysctl("net.ipv4.conf.eth0.promote_secondaries", "1"))
	nsB.MustIP(t, "addr", "add", "10.88.0.12/24", "dev", "eth0")
	nsB.MustIP(t, "addr", "del", addrB.String()+"/24", "dev", "eth0")
	moved := netip.MustParseAddrPort("10.88.0.12:44997")
	last, _ := waitLast(pa, 15*time.Second, func(p discovery.Peer) bool {
		return p.Device == idB && slices.Contains(p.Addrs, moved)
	})
	assert.Contains(t, last.Addrs, moved, "new address not seen:\n%s", pa.Output())
	assert.NotContains(t, last.Addrs, netip.AddrPortFrom(addrB, 44997), "old address not flushed")

	// B stops: its goodbye (TTL 0) makes A report it gone, long before
	// the records' TTL would have run out.
	require.NoError(t, pb.Signal(syscall.SIGINT))
	select {
	case <-pb.Done():
	case <-time.After(10 * time.Second): // bounds a hang
		t.Fatal("helper B did not stop on SIGINT")
	}
	assert.Contains(t, pb.Output(), "RUN RETURNED discovery: context canceled")
	_, gone := waitLast(pa, 5*time.Second, func(p discovery.Peer) bool {
		return p.Device == idB && len(p.Addrs) == 0
	})
	assert.True(t, gone, "A did not report B gone:\n%s", pa.Output())
}

func TestBrowseOnlyIsSilent(t *testing.T) {
	netns.Require(t)
	lan := netns.NewBridge(t)
	nsA, nsB, nsC := netns.New(t), netns.New(t), netns.New(t)
	addrA := lan.Attach(t, nsA, "eth0", netip.MustParsePrefix("10.90.0.1/24"))
	addrB := lan.Attach(t, nsB, "eth0", netip.MustParsePrefix("10.90.0.2/24"))
	lan.Attach(t, nsC, "eth0", netip.MustParsePrefix("10.90.0.3/24"))
	idA, idB, idC := testID(1), testID(150), testID(200)

	pa := startHelper(t, nsA, idA, "alpha", 44996, true, "")
	pc := startHelper(t, nsC, idC, "quiet", 0, false, "")
	waitPeer(t, pc, idA, netip.AddrPortFrom(addrA, 44996), 15*time.Second)
	// C has queried (it sends its first query at start) and found A. The
	// marker that A has read C's query: B, started only now, announces,
	// and A reports B; A reads the link's packets in order, so C's query
	// came in before. A still has not heard of C.
	startHelper(t, nsB, idB, "beta", 44997, true, "")
	waitPeer(t, pa, idB, netip.AddrPortFrom(addrB, 44997), 15*time.Second)
	for _, p := range updates(pa) {
		assert.NotEqual(t, idC, p.Device, "a browse-only device was seen")
	}
	assert.NotContains(t, pa.Output(), idC.String())

	// A one-shot listing ("desktop peers --discovered"): another
	// browse-only Discoverer next to the first (sharing port 5353), run
	// for 3 s, then Peers.
	shot := startHelperFor(t, nsC, testID(201), "", 0, false, "", 3*time.Second)
	select {
	case <-shot.Done():
	case <-time.After(15 * time.Second): // bounds a hang
		t.Fatal("one-shot helper did not stop")
	}
	var peers []discovery.Peer
	for _, line := range strings.Split(shot.Output(), "\n") {
		if js, ok := strings.CutPrefix(line, "PEERS "); ok {
			require.NoError(t, json.Unmarshal([]byte(js), &peers))
		}
	}
	byID := map[deviceid.ID]discovery.Peer{}
	for _, p := range peers {
		byID[p.Device] = p
	}
	require.Len(t, byID, 2, "A and B, not the browse-only C:\n%s", shot.Output())
	assert.Contains(t, byID[idA].Addrs, netip.AddrPortFrom(addrA, 44996))
	assert.Contains(t, byID[idB].Addrs, netip.AddrPortFrom(addrB, 44997))
}

func TestIPv6Only(t *testing.T) {
	netns.Require(t)
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Fatalf("IPv6 disabled in this kernel: %v", err)
	}
	lan := netns.NewBridge(t)
	nsA, nsB := netns.New(t), netns.New(t)
	addrA := lan.Attach(t, nsA, "eth0", netip.MustParsePrefix("fd77::1/64"))
	addrB := lan.Attach(t, nsB, "eth0", netip.MustParsePrefix("fd77::2/64"))
	idA, idB := testID(3), testID(4)
	pa := startHelper(t, nsA, idA, "six-a", 44996, true, "")
	pb := startHelper(t, nsB, idB, "six-b", 44996, true, "")
	peer := waitPeer(t, pa, idB, netip.AddrPortFrom(addrB, 44996), 15*time.Second)
	waitPeer(t, pb, idA, netip.AddrPortFrom(addrA, 44996), 15*time.Second)
	for _, a := range peer.Addrs {
		assert.True(t, a.Addr().Is6(), "no IPv4 on this LAN: %v", a)
		if a.Addr().IsLinkLocalUnicast() {
			assert.Equal(t, "eth0", a.Addr().Zone(), "link-local addresses carry the zone")
		}
	}
}
