package discovery

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

var ptrQuestion = []question{{Name: serviceName, Type: dnsmessage.TypePTR}}

func TestAnswerPTRQuery(t *testing.T) {
	d, _ := newTest(t, true, "")
	outs, _ := d.handle(query(t, 0, ptrQuestion), peerSrc, eth0)
	require.Len(t, outs, 1)
	assert.Equal(t, netip.MustParseAddrPort("224.0.0.251:5353"), outs[0].to, "multicast reply")
	pk, err := parsePacket(outs[0].data)
	require.NoError(t, err)
	assert.True(t, pk.Response)
	assert.Empty(t, pk.Questions)

	inst := "me (" + self.Short() + ")." + serviceName
	target := "peersync-" + lower(self.Short()) + ".local."
	var got []string
	for _, r := range pk.Records {
		got = append(got, r.key())
		if r.Type == dnsmessage.TypePTR {
			assert.False(t, r.Flush, "PTR is shared: no cache-flush bit")
			assert.Equal(t, inst, r.Ptr, "instance name keeps its case")
		} else {
			assert.True(t, r.Flush, "unique records carry the cache-flush bit")
		}
		assert.Equal(t, uint32(120), r.TTL)
	}
	want := []string{
		answer{Name: serviceName, Type: dnsmessage.TypePTR, Ptr: inst}.key(),
		answer{Name: inst, Type: dnsmessage.TypeSRV, Target: target, Port: 44996}.key(),
		answer{Name: inst, Type: dnsmessage.TypeTXT, TXT: encodeTXT(self, 44996)}.key(),
		answer{Name: target, Type: dnsmessage.TypeA, Addr: netip.MustParseAddr("10.0.0.1")}.key(),
		answer{Name: target, Type: dnsmessage.TypeAAAA, Addr: netip.MustParseAddr("fe80::1")}.key(),
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 0, pk.Records[0].Section, "PTR in the answer section")
	assert.Equal(t, 2, pk.Records[1].Section, "the rest as additional records")
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func TestAnswerRateLimitedPerInterface(t *testing.T) {
	d, clock := newTest(t, true, "")
	q := query(t, 0, ptrQuestion)
	outs, _ := d.handle(q, peerSrc, eth0)
	require.Len(t, outs, 1)
	outs, _ = d.handle(q, peerSrc, eth0)
	assert.Empty(t, outs, "the same record is not multicast twice within a second")
	clock.Advance(999 * time.Millisecond)
	outs, _ = d.handle(q, peerSrc, eth0)
	assert.Empty(t, outs)
	clock.Advance(time.Millisecond)
	outs, _ = d.handle(q, peerSrc, eth0)
	assert.Len(t, outs, 1, "after a second, answered again")
}

func TestGlobalResponseBudget(t *testing.T) {
	d, clock := newTest(t, true, "")
	legacySrc := netip.MustParseAddrPort("10.0.0.2:40000")
	answered := 0
	for i := range 100 {
		outs, _ := d.handle(query(t, uint16(i), ptrQuestion), legacySrc, eth0)
		answered += len(outs)
	}
	assert.Equal(t, burst, answered, "a flood gets at most the burst")
	clock.Advance(time.Second)
	answered = 0
	for i := range 100 {
		outs, _ := d.handle(query(t, uint16(i), ptrQuestion), legacySrc, eth0)
		answered += len(outs)
	}
	assert.Equal(t, rate, answered, "then the sustained rate")
}

func TestKnownAnswerSuppression(t *testing.T) {
	d, _ := newTest(t, true, "")
	inst := "me (" + self.Short() + ")." + serviceName
	known := answer{Name: serviceName, Type: dnsmessage.TypePTR, TTL: 100, Shared: true, Ptr: inst}
	outs, _ := d.handle(query(t, 0, ptrQuestion, known), peerSrc, eth0)
	assert.Empty(t, outs, "the querier knows our PTR with more than half its TTL left")

	known.TTL = 30
	outs, _ = d.handle(query(t, 0, ptrQuestion, known), peerSrc, eth0)
	assert.Len(t, outs, 1, "less than half the TTL left: answer")
}

func TestLegacyUnicastReply(t *testing.T) {
	d, _ := newTest(t, true, "")
	src := netip.MustParseAddrPort("10.0.0.2:40000")
	outs, _ := d.handle(query(t, 0x1234, ptrQuestion), src, eth0)
	require.Len(t, outs, 1)
	assert.Equal(t, src, outs[0].to, "unicast back to a legacy querier")
	pk, err := parsePacket(outs[0].data)
	require.NoError(t, err)
	assert.Equal(t, uint16(0x1234), pk.ID, "the query's ID is echoed")
	assert.Equal(t, ptrQuestion, pk.Questions, "and its question")
	for _, r := range pk.Records {
		assert.LessOrEqual(t, r.TTL, uint32(legacyTTL))
		assert.False(t, r.Flush)
	}
}

func TestBrowseOnlyNeverAnswers(t *testing.T) {
	d, _ := newTest(t, false, "")
	inst := "me (" + self.Short() + ")." + serviceName
	for _, q := range [][]question{
		ptrQuestion,
		{{Name: inst, Type: dnsmessage.TypeTXT}},
		{{Name: servicesEnumDNS, Type: dnsmessage.TypePTR}},
		{{Name: "peersync-" + lower(self.Short()) + ".local.", Type: dnsmessage.TypeA}},
	} {
		outs, _ := d.handle(query(t, 0, q), peerSrc, eth0)
		assert.Empty(t, outs, "%v", q)
	}
}

func TestHostNameAnsweredWithoutAnnouncing(t *testing.T) {
	d, _ := newTest(t, false, "Web View")
	outs, _ := d.handle(query(t, 0, []question{{Name: "web-view.local.", Type: dnsmessage.TypeA}}), peerSrc, eth0)
	require.Len(t, outs, 1)
	pk, err := parsePacket(outs[0].data)
	require.NoError(t, err)
	require.Len(t, pk.Records, 2)
	assert.Equal(t, dnsmessage.TypeA, pk.Records[0].Type)
	assert.Equal(t, netip.MustParseAddr("10.0.0.1"), pk.Records[0].Addr)
	assert.Equal(t, dnsmessage.TypeAAAA, pk.Records[1].Type, "AAAA as additional record (RFC 6762 section 6.2)")
	assert.Equal(t, 2, pk.Records[1].Section)

	outs, _ = d.handle(query(t, 0, ptrQuestion), peerSrc, eth0)
	assert.Empty(t, outs, "no service without Announce")
}

func TestAnswerInstanceAndEnumeration(t *testing.T) {
	d, _ := newTest(t, true, "")
	inst := "ME (" + self.Short() + ")." + "_PEERSYNC._udp.local."
	outs, _ := d.handle(query(t, 0, []question{{Name: lower(inst), Type: dnsmessage.TypeTXT}}), peerSrc, eth0)
	require.Len(t, outs, 1, "names match case-insensitively")
	pk, err := parsePacket(outs[0].data)
	require.NoError(t, err)
	require.Len(t, pk.Records, 1)
	info, err := parseTXT(pk.Records[0].TXT)
	require.NoError(t, err)
	assert.Equal(t, self, info.Device)

	outs, _ = d.handle(query(t, 0, []question{{Name: servicesEnumDNS, Type: dnsmessage.TypePTR}}), peerSrc, eth0)
	require.Len(t, outs, 1)
	pk, err = parsePacket(outs[0].data)
	require.NoError(t, err)
	require.Len(t, pk.Records, 1)
	assert.Equal(t, serviceName, pk.Records[0].Ptr)

	outs, _ = d.handle(query(t, 0, []question{{Name: "someone-else.local.", Type: dnsmessage.TypeA}}), peerSrc, eth0)
	assert.Empty(t, outs)
}

func TestInstanceLabel(t *testing.T) {
	assert.Equal(t, "laptop (ABCDEFG)", instanceLabel("laptop", "ABCDEFG"))
	assert.Equal(t, "my-host-lan (ABCDEFG)", instanceLabel("my.host.lan", "ABCDEFG"))
	long := instanceLabel("ääääääääääääääääääääääääääääääääääääääääääää", "ABCDEFG")
	assert.LessOrEqual(t, len(long), 63)
	assert.Contains(t, long, "ä (ABCDEFG)", "cut on a rune boundary")
	assert.Equal(t, "laptop", deviceName("laptop (ABCDEFG)", "ABCDEFG"))
	assert.Equal(t, "avahi thing", deviceName("avahi thing", "ABCDEFG"))
	assert.Equal(t, "web-view", hostLabel("Web View.local"))
}
