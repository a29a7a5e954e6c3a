package discovery

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

func TestExpiryWithInjectedClock(t *testing.T) {
	d, clock := newTest(t, true, "")
	t0 := clock.Now()
	_, ups := d.handle(announcement(t, "laptop ("+peerID.Short()+")", encodeTXT(peerID, 45000), 45000, "laptop.local.", "10.0.0.2", 120), peerSrc, eth0)
	want := Peer{
		Device:  peerID,
		Name:    "laptop",
		Addrs:   []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:45000")},
		Seen:    t0,
		Expires: t0.Add(120 * time.Second),
	}
	assert.Equal(t, []Peer{want}, ups, "a new peer is an update")
	assert.Equal(t, []Peer{want}, d.Peers())
	assert.Equal(t, want.Addrs, d.Lookup(peerID))

	clock.Advance(119 * time.Second)
	assert.Len(t, d.Peers(), 1, "still valid just before the TTL")

	// Renewed by a fresh announcement: Seen and Expires move on.
	_, ups = d.handle(announcement(t, "laptop ("+peerID.Short()+")", encodeTXT(peerID, 45000), 45000, "laptop.local.", "10.0.0.2", 120), peerSrc, eth0)
	assert.Empty(t, ups, "same name and addresses: no update")
	require.Len(t, d.Peers(), 1)
	assert.Equal(t, clock.Now().Add(120*time.Second), d.Peers()[0].Expires)

	clock.Advance(120 * time.Second)
	assert.Empty(t, d.Peers(), "expired")
	assert.Nil(t, d.Lookup(peerID))
	d.mu.Lock()
	gone := d.cache.updates(clock.Now())
	d.mu.Unlock()
	require.Len(t, gone, 1)
	assert.Equal(t, peerID, gone[0].Device)
	assert.Empty(t, gone[0].Addrs, "a departure has no addresses")
	assert.Equal(t, "laptop", gone[0].Name)
}

func TestAddressesExpireSeparately(t *testing.T) {
	d, clock := newTest(t, false, "")
	// Avahi: SRV/TXT with a long TTL, A with 120 s.
	d.handle(announcement(t, "svc", encodeTXT(peerID, 1), 1, "host.local.", "", 4500), peerSrc, eth0)
	b, err := message{Response: true, Answers: []answer{{Name: "host.local.", Type: dnsmessage.TypeA, TTL: 120, Addr: netip.MustParseAddr("10.0.0.9")}}}.pack()
	require.NoError(t, err)
	d.handle(b, peerSrc, eth0)
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.9:1")}, d.Lookup(peerID))
	clock.Advance(121 * time.Second)
	// The host's address expired: fall back to the sender of the SRV.
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:1")}, d.Lookup(peerID))
}

func TestOurselvesExcluded(t *testing.T) {
	d, _ := newTest(t, true, "")
	// Our own announcement, looped back by the kernel.
	_, ups := d.handle(announcement(t, "me ("+self.Short()+")", encodeTXT(self, 44996), 44996, "me.local.", "10.0.0.1", 120), peerSrc, eth0)
	assert.Empty(t, ups)
	assert.Empty(t, d.Peers())
	assert.Nil(t, d.Lookup(self))
}

func TestGoodbyeRemovesAtOnce(t *testing.T) {
	d, _ := newTest(t, false, "")
	d.handle(announcement(t, "x", encodeTXT(peerID, 9), 9, "x.local.", "10.0.0.2", 120), peerSrc, eth0)
	require.Len(t, d.Peers(), 1)
	_, ups := d.handle(announcement(t, "x", encodeTXT(peerID, 9), 9, "x.local.", "10.0.0.2", 0), peerSrc, eth0)
	require.Len(t, ups, 1)
	assert.Empty(t, ups[0].Addrs)
	assert.Empty(t, d.Peers())
}

func TestCacheFlushReplacesAddresses(t *testing.T) {
	d, _ := newTest(t, false, "")
	d.handle(announcement(t, "x", encodeTXT(peerID, 9), 9, "x.local.", "10.0.0.2", 120), peerSrc, eth0)
	// The host moved to another address; the A record has the cache-flush bit.
	_, ups := d.handle(announcement(t, "x", encodeTXT(peerID, 9), 9, "x.local.", "10.0.0.3", 120), peerSrc, eth0)
	require.Len(t, ups, 1, "an address change is an update")
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.3:9")}
	assert.Equal(t, want, ups[0].Addrs)
	assert.Equal(t, want, d.Lookup(peerID))
}

func TestLinkLocalIPv6GetsZone(t *testing.T) {
	d, _ := newTest(t, false, "")
	d.handle(announcement(t, "x", encodeTXT(peerID, 9), 9, "x.local.", "fe80::2", 120), netip.MustParseAddrPort("[fe80::2]:5353"), eth0)
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("[fe80::2%eth0]:9")}, d.Lookup(peerID))
}

func TestTwoInstancesOfOneDevice(t *testing.T) {
	d, _ := newTest(t, false, "")
	d.handle(announcement(t, "a", encodeTXT(peerID, 9), 9, "a.local.", "10.0.0.2", 120), peerSrc, eth0)
	d.handle(announcement(t, "b", encodeTXT(peerID, 9), 9, "b.local.", "10.0.0.3", 120), peerSrc, eth0)
	peers := d.Peers()
	require.Len(t, peers, 1, "merged by DeviceID")
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:9"), netip.MustParseAddrPort("10.0.0.3:9")}, peers[0].Addrs)
}

func TestMalformedIgnored(t *testing.T) {
	good := announcement(t, "x", encodeTXT(peerID, 9), 9, "x.local.", "10.0.0.2", 120)
	for _, tc := range []struct {
		name string
		pkt  []byte
		src  netip.AddrPort
	}{
		{"empty", nil, peerSrc},
		{"garbage", []byte("this is not DNS at all"), peerSrc},
		{"truncated", good[:len(good)-5], peerSrc},
		{"header only, counts lie", []byte{0, 0, 0x84, 0, 0, 0, 0, 9, 0, 0, 0, 0}, peerSrc},
		{"bad TXT", announcement(t, "x", []string{"id=nonsense", "v=1"}, 9, "x.local.", "10.0.0.2", 120), peerSrc},
		{"other protocol version", announcement(t, "x", []string{"id=" + peerID.String(), "v=2"}, 9, "x.local.", "10.0.0.2", 120), peerSrc},
		{"from off the link", good, netip.MustParseAddrPort("192.0.2.1:5353")},
		{"response not from port 5353", good, netip.MustParseAddrPort("10.0.0.2:4000")},
		{"pointer loop", []byte{0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1}, peerSrc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newTest(t, true, "")
			outs, ups := d.handle(tc.pkt, tc.src, eth0)
			assert.Empty(t, outs)
			assert.Empty(t, ups)
			assert.Empty(t, d.Peers())
		})
	}
}

func TestIncompleteInstanceIsResolved(t *testing.T) {
	d, clock := newTest(t, false, "")
	inst := "x." + serviceName
	b, err := message{Response: true, Answers: []answer{{Name: serviceName, Type: dnsmessage.TypePTR, TTL: 120, Shared: true, Ptr: inst}}}.pack()
	require.NoError(t, err)
	outs, _ := d.handle(b, peerSrc, eth0)
	require.Len(t, outs, 1, "a PTR alone makes us ask for SRV and TXT")
	pk, err := parsePacket(outs[0].data)
	require.NoError(t, err)
	assert.False(t, pk.Response)
	assert.Equal(t, []question{{Name: inst, Type: dnsmessage.TypeSRV}, {Name: inst, Type: dnsmessage.TypeTXT}}, pk.Questions)
	assert.Equal(t, netip.MustParseAddrPort("224.0.0.251:5353"), outs[0].to)

	outs, _ = d.handle(b, peerSrc, eth0)
	assert.Empty(t, outs, "not asked again within a second")
	clock.Advance(pendingTTL)
	assert.Empty(t, d.Peers())
	d.mu.Lock()
	assert.Empty(t, d.cache.instances, "an instance that never completes is forgotten")
	d.mu.Unlock()
}

func TestCacheIsBounded(t *testing.T) {
	d, _ := newTest(t, false, "")
	for i := range maxInstances + 50 {
		label := "flood" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		d.handle(announcement(t, label, encodeTXT(peerID, 9), 9, label+".local.", "10.0.0.2", 120), peerSrc, eth0)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	assert.LessOrEqual(t, len(d.cache.instances), maxInstances)
	assert.LessOrEqual(t, len(d.cache.hosts), maxHosts)
}
