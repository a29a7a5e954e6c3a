package discovery

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/peersync/peersync/deviceid"
)

func devID(b byte) deviceid.ID {
	var id deviceid.ID
	for i := range id {
		id[i] = b ^ byte(i*7)
	}
	return id
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

var (
	eth0   = net.Interface{Index: 2, Name: "eth0", Flags: net.FlagUp | net.FlagMulticast}
	self   = devID(1)
	peerID = devID(2)
	// A querier or responder on eth0's link.
	peerSrc = netip.MustParseAddrPort("10.0.0.2:5353")
)

// newTest returns a Discoverer on a fake eth0 (10.0.0.1/24, fe80::1/64) and
// a fake clock; it opens no socket.
func newTest(t *testing.T, announce bool, hostName string) (*Discoverer, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	d, err := New(Config{Device: self, Name: "me", Port: 44996, Announce: announce, HostName: hostName, Now: clock.Now})
	require.NoError(t, err)
	d.seams.ifAddrs = func(net.Interface) ([]netip.Prefix, error) {
		return []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fe80::1/64")}, nil
	}
	return d, clock
}

// announcement builds what a peersync device (or Avahi) sends: PTR, SRV,
// TXT and A records.
func announcement(t testing.TB, label string, txt []string, port uint16, host string, addr string, ttl uint32) []byte {
	t.Helper()
	inst := label + "." + serviceName
	as := []answer{
		{Name: serviceName, Type: dnsmessage.TypePTR, TTL: ttl, Shared: true, Ptr: inst},
		{Name: inst, Type: dnsmessage.TypeSRV, TTL: ttl, Target: host, Port: port},
		{Name: inst, Type: dnsmessage.TypeTXT, TTL: ttl, TXT: txt},
	}
	if addr != "" {
		a := netip.MustParseAddr(addr)
		typ := dnsmessage.TypeA
		if a.Is6() {
			typ = dnsmessage.TypeAAAA
		}
		as = append(as, answer{Name: host, Type: typ, TTL: ttl, Addr: a})
	}
	b, err := message{Response: true, Answers: as[:1], Additional: as[1:]}.pack()
	require.NoError(t, err)
	return b
}

func query(t testing.TB, id uint16, qs []question, known ...answer) []byte {
	t.Helper()
	b, err := message{ID: id, Questions: qs, Answers: known}.pack()
	require.NoError(t, err)
	return b
}
