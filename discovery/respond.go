package discovery

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

const (
	// rate is the sustained number of responses per second we send in
	// all; burst is how many may go at once. Together with the per-record
	// one-second rule this bounds what a flood of queries can make us send.
	rate  = 10
	burst = 20
	// legacyTTL caps TTLs in unicast replies to legacy queriers (RFC 6762
	// section 6.7).
	legacyTTL = 10
)

// outgoing is a packet to send on the interface a query arrived on.
type outgoing struct {
	data []byte
	to   netip.AddrPort
}

// handle processes one received packet: a response feeds the cache, a
// query may be answered. It returns packets to send on ifi, and the peer
// updates it sent to the Updates channel. Malformed packets and packets from
// off the link are ignored.
func (d *Discoverer) handle(b []byte, src netip.AddrPort, ifi net.Interface) ([]outgoing, []Peer) {
	pk, err := parsePacket(b)
	if err != nil {
		d.log.Debug("discovery: ignoring packet", "from", src, "interface", ifi.Name, "err", err)
		return nil, nil
	}
	d.mu.Lock()
	prefixes, ok := d.ifPrefixes[ifi.Index]
	d.mu.Unlock()
	if !ok {
		prefixes, err = d.seams.ifAddrs(ifi)
	}
	if err != nil || !onLink(src.Addr(), prefixes) {
		d.log.Debug("discovery: ignoring packet from off the link", "from", src, "interface", ifi.Name)
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if pk.Response {
		if src.Port() != mdnsPort && src.Port() != uint16(d.seams.mdnsPort) {
			return nil, nil // RFC 6762 section 11: responses come from port 5353
		}
		resolve := d.cache.apply(pk, src.Addr(), ifi.Name, now)
		ups := d.cache.updates(now)
		d.emitLocked(ups)
		var outs []outgoing
		if q := d.resolveQueryLocked(resolve, ifi, src.Addr().Is6(), now); q != nil {
			outs = append(outs, *q)
		}
		return outs, ups
	}
	return d.answerLocked(pk, src, ifi, prefixes, now), nil
}

// onLink reports whether a packet from a can come from the link of an
// interface with these prefixes (RFC 6762 section 11): link-local, or
// inside one of the prefixes.
func onLink(a netip.Addr, prefixes []netip.Prefix) bool {
	if a.IsLinkLocalUnicast() { // fe80::/10 or 169.254/16
		return true
	}
	a = a.WithZone("")
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// records are the records we own on one interface.
type records struct {
	svcPTR, enumPTR, srv, txt *answer
	hosts                     []answer // A and AAAA of the SRV target / HostName
	hostName                  string   // lower case name of hosts
}

// recordsLocked builds our records for an interface with the given prefixes
// and TTL (seconds).
func (d *Discoverer) recordsLocked(prefixes []netip.Prefix, ttl uint32) records {
	var r records
	if d.ann.announce {
		r.svcPTR = &answer{Name: serviceName, Type: dnsmessage.TypePTR, TTL: ttl, Shared: true, Ptr: d.ann.instance}
		r.enumPTR = &answer{Name: servicesEnumDNS, Type: dnsmessage.TypePTR, TTL: ttl, Shared: true, Ptr: serviceName}
		r.srv = &answer{Name: d.ann.instance, Type: dnsmessage.TypeSRV, TTL: ttl, Target: d.ann.target, Port: uint16(d.ann.port)}
		r.txt = &answer{Name: d.ann.instance, Type: dnsmessage.TypeTXT, TTL: ttl, TXT: d.ann.txt}
	}
	if d.ann.announce || d.ann.hostName != "" {
		r.hostName = d.ann.target
		for _, p := range prefixes {
			a := p.Addr()
			if a.IsLoopback() || a.IsMulticast() || a.IsUnspecified() {
				continue
			}
			t := dnsmessage.TypeA
			if a.Is6() && !a.Is4In6() {
				t = dnsmessage.TypeAAAA
			}
			r.hosts = append(r.hosts, answer{Name: d.ann.target, Type: t, TTL: ttl, Addr: a.Unmap()})
		}
	}
	return r
}

func (r records) all() []answer {
	var out []answer
	for _, a := range []*answer{r.svcPTR, r.srv, r.txt} {
		if a != nil {
			out = append(out, *a)
		}
	}
	return append(out, r.hosts...)
}

func (r records) hostsOf(t dnsmessage.Type) []answer {
	var out []answer
	for _, h := range r.hosts {
		if t == dnsmessage.TypeALL || h.Type == t {
			out = append(out, h)
		}
	}
	return out
}

// answerLocked answers a query received from src on ifi, following RFC 6762
// sections 6 and 7: known-answer suppression, no record multicast twice
// within a second on one interface, unicast replies with the query's ID to
// legacy queriers (source port not 5353), and a global budget of responses.
func (d *Discoverer) answerLocked(pk packet, src netip.AddrPort, ifi net.Interface, prefixes []netip.Prefix, now time.Time) []outgoing {
	if !d.ann.announce && d.ann.hostName == "" {
		return nil
	}
	legacy := src.Port() != uint16(d.seams.mdnsPort)
	ttl := uint32(TTL / time.Second)
	if legacy {
		ttl = legacyTTL
	}
	r := d.recordsLocked(prefixes, ttl)
	var ans, add []answer
	for _, q := range pk.Questions {
		switch {
		case q.Name == serviceName && (q.Type == dnsmessage.TypePTR || q.Type == dnsmessage.TypeALL) && r.svcPTR != nil:
			ans = append(ans, *r.svcPTR)
			add = append(add, *r.srv, *r.txt)
			add = append(add, r.hosts...)
		case q.Name == servicesEnumDNS && (q.Type == dnsmessage.TypePTR || q.Type == dnsmessage.TypeALL) && r.enumPTR != nil:
			ans = append(ans, *r.enumPTR)
		case r.srv != nil && q.Name == strings.ToLower(d.ann.instance):
			if q.Type == dnsmessage.TypeSRV || q.Type == dnsmessage.TypeALL {
				ans = append(ans, *r.srv)
				add = append(add, r.hosts...)
			}
			if q.Type == dnsmessage.TypeTXT || q.Type == dnsmessage.TypeALL {
				ans = append(ans, *r.txt)
			}
		case r.hostName != "" && q.Name == r.hostName:
			switch q.Type {
			case dnsmessage.TypeA:
				ans = append(ans, r.hostsOf(dnsmessage.TypeA)...)
				add = append(add, r.hostsOf(dnsmessage.TypeAAAA)...)
			case dnsmessage.TypeAAAA:
				ans = append(ans, r.hostsOf(dnsmessage.TypeAAAA)...)
				add = append(add, r.hostsOf(dnsmessage.TypeA)...)
			case dnsmessage.TypeALL:
				ans = append(ans, r.hosts...)
			}
		}
	}
	// Known-answer suppression (RFC 6762 section 7.1): the querier already
	// has these with at least half their TTL left.
	known := map[string]bool{}
	for _, rr := range pk.Records {
		if rr.Section == 0 && rr.TTL >= uint32(TTL/time.Second)/2 {
			known[rr.key()] = true
		}
	}
	ans = dedupe(ans, known, nil)
	if !legacy {
		fam := "4"
		if src.Addr().Is6() {
			fam = "6"
		}
		ans = slices.DeleteFunc(ans, func(a answer) bool {
			last, ok := d.rate.lastSent[ifi.Name+"|"+fam+"|"+a.key()]
			return ok && now.Sub(last) < time.Second
		})
	}
	if len(ans) == 0 || !d.takeTokenLocked(now) {
		return nil
	}
	add = dedupe(add, known, ans)
	m := message{Response: true, Answers: ans, Additional: add}
	to := netip.AddrPortFrom(group4, uint16(d.seams.mdnsPort))
	if src.Addr().Is6() {
		to = netip.AddrPortFrom(group6, uint16(d.seams.mdnsPort))
	}
	if legacy {
		m.ID, m.Questions, m.Legacy, to = pk.ID, pk.Questions, true, src
	} else {
		d.markSentLocked(ifi, src.Addr().Is6(), append(slices.Clone(ans), add...), now)
	}
	b, err := m.pack()
	if err != nil {
		d.log.Warn("discovery: packing response", "err", err)
		return nil
	}
	return []outgoing{{data: b, to: to}}
}

// dedupe drops answers that repeat, are known, or are in also.
func dedupe(as []answer, known map[string]bool, also []answer) []answer {
	seen := map[string]bool{}
	for _, a := range also {
		seen[a.key()] = true
	}
	var out []answer
	for _, a := range as {
		k := a.key()
		if seen[k] || known[k] {
			continue
		}
		seen[k] = true
		out = append(out, a)
	}
	return out
}

func (d *Discoverer) markSentLocked(ifi net.Interface, v6 bool, as []answer, now time.Time) {
	fam := "4"
	if v6 {
		fam = "6"
	}
	for _, a := range as {
		d.rate.lastSent[ifi.Name+"|"+fam+"|"+a.key()] = now
	}
	if len(d.rate.lastSent) > 4096 { // interfaces come and go; keep it bounded
		for k, t := range d.rate.lastSent {
			if now.Sub(t) > time.Second {
				delete(d.rate.lastSent, k)
			}
		}
	}
}

// takeTokenLocked spends one unit of the global response budget.
func (d *Discoverer) takeTokenLocked(now time.Time) bool {
	if !d.rate.tokensAt.IsZero() {
		d.rate.tokens = min(burst, d.rate.tokens+now.Sub(d.rate.tokensAt).Seconds()*rate)
	}
	d.rate.tokensAt = now
	if d.rate.tokens < 1 {
		return false
	}
	d.rate.tokens--
	return true
}

// resolveQueryLocked builds a query for the SRV/TXT of instances and the
// addresses of hosts that a response left incomplete; each name is asked
// at most once a second per interface.
func (d *Discoverer) resolveQueryLocked(names []string, ifi net.Interface, v6 bool, now time.Time) *outgoing {
	var qs []question
	for _, n := range names {
		k := ifi.Name + "|q|" + n
		if last, ok := d.rate.lastSent[k]; ok && now.Sub(last) < time.Second {
			continue
		}
		d.rate.lastSent[k] = now
		if instanceLabelOf(n) != "" {
			qs = append(qs, question{Name: n, Type: dnsmessage.TypeSRV}, question{Name: n, Type: dnsmessage.TypeTXT})
		} else {
			qs = append(qs, question{Name: n, Type: dnsmessage.TypeA}, question{Name: n, Type: dnsmessage.TypeAAAA})
		}
	}
	if len(qs) == 0 {
		return nil
	}
	b, err := message{Questions: qs}.pack()
	if err != nil {
		d.log.Debug("discovery: packing query", "err", err)
		return nil
	}
	to := netip.AddrPortFrom(group4, uint16(d.seams.mdnsPort))
	if v6 {
		to = netip.AddrPortFrom(group6, uint16(d.seams.mdnsPort))
	}
	return &outgoing{data: b, to: to}
}

// sendAnnouncements multicasts all our records on each interface, with the
// given TTL in seconds (0 says goodbye).
func (d *Discoverer) sendAnnouncements(s *sockets, ifs []net.Interface, ttl uint32) {
	for _, ifi := range ifs {
		prefixes, err := d.seams.ifAddrs(ifi)
		if err != nil {
			d.log.Debug("discovery: interface addresses", "interface", ifi.Name, "err", err)
			continue
		}
		d.mu.Lock()
		r := d.recordsLocked(prefixes, ttl)
		now := d.now()
		all := r.all()
		if len(all) > 0 {
			d.markSentLocked(ifi, false, all, now)
			d.markSentLocked(ifi, true, all, now)
		}
		d.mu.Unlock()
		if len(all) == 0 {
			continue
		}
		b, err := message{Response: true, Answers: all}.pack()
		if err != nil {
			d.log.Warn("discovery: packing announcement", "err", err)
			continue
		}
		d.sendBoth(s, ifi, prefixes, b)
	}
}

// sendQueries multicasts a PTR query for our service type on each interface.
func (d *Discoverer) sendQueries(s *sockets, ifs []net.Interface) {
	b, err := message{Questions: []question{{Name: serviceName, Type: dnsmessage.TypePTR}}}.pack()
	if err != nil {
		d.log.Warn("discovery: packing query", "err", err)
		return
	}
	for _, ifi := range ifs {
		prefixes, err := d.seams.ifAddrs(ifi)
		if err != nil {
			continue
		}
		d.sendBoth(s, ifi, prefixes, b)
	}
}

// sendBoth multicasts b on ifi over each family the interface has an
// address of.
func (d *Discoverer) sendBoth(s *sockets, ifi net.Interface, prefixes []netip.Prefix, b []byte) {
	has4 := slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Addr().Is4() })
	has6 := slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Addr().Is6() })
	if has4 {
		if err := s.send(b, ifi, netip.AddrPortFrom(group4, uint16(s.port))); err != nil {
			d.log.Debug("discovery: send", "interface", ifi.Name, "family", 4, "err", err)
		}
	}
	if has6 {
		if err := s.send(b, ifi, netip.AddrPortFrom(group6, uint16(s.port))); err != nil {
			d.log.Debug("discovery: send", "interface", ifi.Name, "family", 6, "err", err)
		}
	}
}

// sendAddressGoodbyes multicasts, on each interface still joined, our
// A/AAAA records with TTL 0 for the addresses in old that are not in cur.
func (d *Discoverer) sendAddressGoodbyes(s *sockets, old, cur map[int][]netip.Prefix) {
	for _, ifi := range s.joinedInterfaces() {
		var gone []netip.Prefix
		for _, p := range old[ifi.Index] {
			if !slices.ContainsFunc(cur[ifi.Index], func(c netip.Prefix) bool { return c.Addr() == p.Addr() }) {
				gone = append(gone, p)
			}
		}
		d.mu.Lock()
		hosts := d.recordsLocked(gone, 0).hosts
		d.mu.Unlock()
		if len(hosts) == 0 {
			continue
		}
		for i := range hosts {
			hosts[i].Shared = true // a goodbye for some addresses must not flush the others
		}
		b, err := message{Response: true, Answers: hosts}.pack()
		if err != nil {
			d.log.Warn("discovery: packing goodbye", "err", err)
			continue
		}
		d.sendBoth(s, ifi, cur[ifi.Index], b)
	}
}
