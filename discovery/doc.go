// Package discovery finds peersync devices on the local network with
// multicast DNS and DNS-SD (RFC 6762, RFC 6763): it announces this device as
// a service of type _peersync._udp and browses for the others, yielding
// DeviceID → addresses with expiry.
//
// Discovery is a hint, never a proof: anyone on the LAN can announce any
// DeviceID. Use discovered addresses only for devices already in the sync
// table, and let the transport's TLS handshake prove who answers. The
// package knows about a device only its deviceid.ID; it knows nothing of
// keys, folders, git or the transport.
//
// Discovery imports no other peersync layer (not crypto, transport, gitstore
// or sync): devices are named by deviceid.ID, a leaf package every layer may
// import. We chose the leaf over an opaque ID of discovery's own (say the
// TXT "id=" string) because the printed form has check characters that
// must be verified where the input arrives, and one type means no
// conversions at each layer's boundary; crypto.DeviceID is an alias of
// deviceid.ID, so the engine passes its IDs straight through. The rule is
// checked by TestLayers in the module root (docs/design.md, "Layers").
//
// The common path, as the engine uses it:
//
//	d, err := discovery.New(discovery.Config{
//		Device:   id,    // our deviceid.ID
//		Name:     "laptop",
//		Port:     44996, // where our transport listens
//		Announce: true,  // false: browse only
//	})
//	go func() {
//		for p := range d.Updates() { // closed when Run returns
//			if len(p.Addrs) > 0 && table.Has(p.Device) {
//				engine.Dial(p.Device, p.Addrs) // prefer these over public/ICE paths
//			}
//		}
//	}()
//	err = d.Run(ctx) // until ctx is done; wraps ctx.Err()
//
//	addrs := d.Lookup(peer) // or ask when about to dial
//	for _, p := range d.Peers() { fmt.Println(p, time.Since(p.Seen)) } // "peers --discovered"
//
// Peers and Lookup keep answering after Run returns, from what was last
// heard, so a one-shot listing is a browse-only Discoverer run for two or
// three seconds (queries go out at 0, 1 and 3 s); it can share port 5353
// with a running engine on the same host.
//
// Run works on every interface that is up, multicast-capable and not
// loopback (or those in Config.Interfaces), over IPv4 and IPv6; interfaces
// that come and go, and address changes, are noticed within 5 s. Close stops Run and waits for it.
//
// # Wire format
//
// Plain mDNS on UDP port 5353, groups 224.0.0.251 and ff02::fb, TTL/hop
// limit 255. With Config{Name: "laptop", Port: 44996}, DeviceID
// MFZWI3D-…, and HostName unset, we announce (TTL 120 s each):
//
//	_peersync._udp.local.              PTR  laptop (MFZWI3D)._peersync._udp.local.   shared (no cache-flush bit)
//	laptop (MFZWI3D)._peersync._udp.local.  SRV  0 0 44996 peersync-mfzwi3d.local.  cache-flush
//	laptop (MFZWI3D)._peersync._udp.local.  TXT  "id=MFZWI3D-…" "v=1" "port=44996" cache-flush
//	peersync-mfzwi3d.local.            A    each IPv4 address of the interface     cache-flush
//	peersync-mfzwi3d.local.            AAAA each IPv6 address of the interface     cache-flush
//
// The instance label is the device name (dots and control characters
// replaced by "-", cut to fit 63 bytes) followed by " (SHORTID)", so two
// devices called "laptop" do not collide; Peer.Name strips the suffix again.
// We do not probe for uniqueness (RFC 6762 section 8.1): the DeviceID suffix
// makes a clash as unlikely as a DeviceID collision. With Config.HostName
// "web", the SRV target is web.local. instead, and web.local. is what a
// phone's browser can open.
//
// TXT keys (RFC 6763 section 6; keys case-insensitive, first occurrence
// wins, unknown keys ignored so later versions can add some):
//
//	id=<DeviceID>  required; the printed form, check characters verified
//	v=1            required; the protocol version; other values are ignored
//	port=<port>    the transport port, 1–65535; the SRV port wins if both exist
//
// Announcements: three at start (0, 1 and 3 s), then every 60 s (TTL/2),
// each carrying all records above as answers; when Run ends, the same
// records once more with TTL 0 ("goodbye"), so peers forget us at once.
// Queries: a PTR question for _peersync._udp.local. at start, then after 1,
// 2, 4, … s up to every 60 s; and, when a response leaves an instance
// without SRV/TXT or its host without addresses, a query for those (at most
// once a second per name and interface).
//
// Answers (only with Announce, or for HostName's A/AAAA): to PTR
// _peersync._udp.local. (answer PTR; SRV, TXT, A, AAAA as additional), to
// SRV/TXT/ANY of our instance, to A/AAAA/ANY of our host name, and to the
// service enumeration PTR _services._dns-sd._udp.local. (so "avahi-browse
// -a" lists us). Addresses are those of the interface the query came in on.
// Answers are multicast, except to a legacy querier (source port not 5353),
// which gets a unicast reply echoing its ID and question, TTL 10 and no
// cache-flush bits (RFC 6762 section 6.7). A query asking for a unicast
// reply (QU bit) still gets a multicast one, which RFC 6762 allows.
//
// Rate limits: no record is multicast twice within one second on one
// interface (RFC 6762 section 6), records the querier lists as known with
// at least half their TTL left are left out (known-answer suppression,
// section 7.1), and all answers together are held to 10 a second with bursts
// of 20, so a flood of queries cannot turn us into an amplifier.
//
// Packets we ignore: anything the DNS parser rejects, a non-zero opcode or
// rcode, more than 64 questions or records, records of classes other than
// IN, responses from a port other than 5353, packets whose source is not on
// the link of the interface they arrived on (RFC 6762 section 11), TXT
// records that fail the rules above (the instance is dropped), and our own
// DeviceID. The parsers (parsePacket, parseTXT) are fuzzed (FuzzParsePacket
// runs the whole receive path, cache and responder included).
//
// Simplifications, each allowed or harmless on a LAN: no probing or
// conflict resolution (the DeviceID suffix makes names unique); answers go
// out at once, without the 20–120 ms random delay RFC 6762 section 6 asks
// for shared records; our queries carry no known-answer list, so responders
// repeat their records every 60 s; a query that arrives within a second of
// our last multicast of the same records gets no answer (the one-second
// rule), so two devices started within a second of each other may take
// until our next start-up announcement (1 s, 3 s) to meet.
//
// # Privacy
//
// An announcement tells everyone on the LAN the device name and the
// DeviceID, which is the device's public key: not a secret, but a stable
// identifier, so a device announcing on café and office networks can be
// recognised on each. Nothing else is announced: no folder names, no peer
// list, no user name. Set Announce to false on networks you do not trust: we
// then only send queries (which reveal that some peersync runs here) and
// answer nothing. Cache sizes are bounded (256 instances, 256 host names),
// so a hostile LAN cannot exhaust memory.
//
// # Expiry
//
// Every record lives for its TTL from when we received it, measured with
// Config.Now (tests inject a clock). A peer exists while it has a valid SRV
// and TXT; Peer.Expires is the earlier of the two (the latest over several
// instances of one DeviceID, which are merged). Its addresses are the
// unexpired A/AAAA records of the SRV target; if there are none, the
// address the SRV came from. A record with TTL 0 (a goodbye) removes at once.
// An instance known only from a PTR is forgotten after 10 s without SRV and
// TXT. Expired entries are swept every 250 ms while Run runs, and on every
// Peers or Lookup call; Updates then reports the peer with no Addrs.
//
// # Avahi interop
//
// Tested in CI in network namespaces with Debian's avahi-daemon, on a
// separate "host" across a bridge and in the same namespace as us:
// "avahi-browse -rpt _peersync._udp" resolves our service with its TXT, and
//
//	avahi-publish -s NAME _peersync._udp PORT id=<DeviceID> v=1 port=PORT
//
// is found by our browser (and its goodbye removes it). Avahi prints our
// label with decimal escapes: "laptop\032\040MFZWI3D\041". We share port
// 5353 with Avahi, mDNSResponder or another peersync on the same host
// (SO_REUSEADDR and SO_REUSEPORT; the kernel gives each socket a copy of
// every multicast packet).
//
// Do not set HostName to the machine's own host name when Avahi or
// mDNSResponder runs: that name already resolves, and our goodbye would make
// peers drop addresses that the system responder still owns.
//
// A network namespace without a default route (as in our tests) needs
// "ip route add 224.0.0.0/4 dev eth0" before IPv4 multicast can be sent.
//
// # Why our own mDNS on golang.org/x/net
//
// We build on golang.org/x/net's dns/dnsmessage (DNS message parsing and
// building, allocation-light and fuzzed upstream), ipv4 and ipv6 (group
// membership and per-packet interface control). github.com/hashicorp/mdns
// v1.0.7 was the other candidate and does work between two namespaces on a
// bridge, but its server only answers queries (no unsolicited
// announcements, no goodbyes, no rate limiting or known-answer suppression),
// its client is a one-shot Lookup with a timeout whose results carry no
// TTL (so expiry would be guesswork), it pulls in github.com/miekg/dns, and
// the packet handling we must harden and fuzz would not be ours. What we
// need of mDNS is about 1,000 lines, all covered by unit, fuzz and
// namespace tests; golang.org/x/net was already in the module graph.
package discovery
