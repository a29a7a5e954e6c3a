package discovery

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/peersync/peersync/deviceid"
)

const (
	// pendingTTL is how long an instance we only know by name (from a PTR)
	// waits for its SRV and TXT records before it is forgotten.
	pendingTTL = 10 * time.Second
	// maxInstances and maxHosts bound the cache, so a flood of made-up
	// services cannot grow memory without limit.
	maxInstances = 256
	maxHosts     = 256
)

// instance is one DNS-SD service instance of type _peersync._udp seen on
// the LAN.
type instance struct {
	label string // instance label, as announced

	haveTXT bool
	device  deviceid.ID
	txtPort uint16
	txtExp  time.Time

	haveSRV bool
	target  string // SRV target host, lower case, fully qualified
	port    uint16
	srvExp  time.Time
	src     netip.Addr // sender of the last SRV record (with zone), fallback address

	pendingExp time.Time // for an instance without SRV or TXT yet
	seen       time.Time
}

func (in *instance) complete() bool { return in.haveSRV && in.haveTXT }

// expires is when the instance stops being valid.
func (in *instance) expires() time.Time {
	if !in.complete() {
		return in.pendingExp
	}
	if in.srvExp.Before(in.txtExp) {
		return in.srvExp
	}
	return in.txtExp
}

// cache holds what the LAN told us: service instances and host addresses.
// It is not safe for concurrent use; Discoverer.mu guards it.
type cache struct {
	self      deviceid.ID
	instances map[string]*instance                // by lower-case full instance name
	hosts     map[string]map[netip.Addr]time.Time // host name → address → expiry
	sent      map[deviceid.ID]string              // fingerprint of the last update per peer
	names     map[deviceid.ID]string              // last name per peer, for removals
}

func newCache(self deviceid.ID) *cache {
	return &cache{
		self:      self,
		instances: map[string]*instance{},
		hosts:     map[string]map[netip.Addr]time.Time{},
		sent:      map[deviceid.ID]string{},
		names:     map[deviceid.ID]string{},
	}
}

// instanceLabelOf returns the instance label of a full instance name of our
// service type, or "" if name is not one.
func instanceLabelOf(name string) string {
	if len(name) <= len(serviceName)+1 {
		return ""
	}
	l := name[:len(name)-len(serviceName)-1]
	if !strings.EqualFold(name[len(l):], "."+serviceName) {
		return ""
	}
	return l
}

// apply records the resource records of a response received from src on the
// interface named ifName at now. It returns the names that need a query
// (an instance without SRV or TXT, a target host without addresses).
func (c *cache) apply(pk packet, src netip.Addr, ifName string, now time.Time) (resolve []string) {
	c.sweep(now)
	touched := map[string]bool{}
	flushed := map[string]bool{} // name|type whose older addresses were dropped
	for _, r := range pk.Records {
		switch r.Type {
		case dnsmessage.TypePTR:
			if r.Name != serviceName {
				continue
			}
			key := strings.ToLower(r.Ptr)
			label := instanceLabelOf(r.Ptr)
			if label == "" {
				continue
			}
			if r.TTL == 0 {
				delete(c.instances, key)
				continue
			}
			if c.instance(key, label, now) != nil {
				touched[key] = true
			}
		case dnsmessage.TypeSRV, dnsmessage.TypeTXT:
			label := instanceLabelOf(r.Raw)
			if label == "" {
				continue
			}
			if r.TTL == 0 {
				delete(c.instances, r.Name)
				continue
			}
			in := c.instance(r.Name, label, now)
			if in == nil {
				continue
			}
			exp := now.Add(time.Duration(r.TTL) * time.Second)
			in.seen = now
			if r.Type == dnsmessage.TypeSRV {
				in.haveSRV, in.target, in.port, in.srvExp = true, r.Target, r.Port, exp
				in.src = src
				if src.Is6() && src.IsLinkLocalUnicast() {
					in.src = src.WithZone(ifName)
				}
			} else {
				info, err := parseTXT(r.TXT)
				if err != nil {
					// Not a peersync peer we can talk to: forget it.
					delete(c.instances, r.Name)
					continue
				}
				in.haveTXT, in.device, in.txtPort, in.txtExp = true, info.Device, info.Port, exp
			}
			touched[r.Name] = true
		case dnsmessage.TypeA, dnsmessage.TypeAAAA:
			a := r.Addr
			if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() {
				continue
			}
			if a.Is6() && a.IsLinkLocalUnicast() {
				a = a.WithZone(ifName)
			}
			addrs := c.hosts[r.Name]
			if addrs == nil {
				if r.TTL == 0 || len(c.hosts) >= maxHosts {
					continue
				}
				addrs = map[netip.Addr]time.Time{}
				c.hosts[r.Name] = addrs
			}
			fk := r.Name + "|" + r.Type.String()
			if r.Flush && !flushed[fk] {
				flushed[fk] = true
				for old := range addrs {
					if old.Is4() == a.Is4() {
						delete(addrs, old)
					}
				}
			}
			if r.TTL == 0 {
				delete(addrs, a)
			} else if len(addrs) < 32 {
				addrs[a] = now.Add(time.Duration(r.TTL) * time.Second)
			}
			if len(addrs) == 0 {
				delete(c.hosts, r.Name)
			}
		}
	}
	for key := range touched {
		in := c.instances[key]
		if in == nil {
			continue
		}
		if !in.complete() {
			resolve = append(resolve, key)
		} else if len(c.hosts[in.target]) == 0 {
			resolve = append(resolve, in.target)
		}
	}
	slices.Sort(resolve)
	return resolve
}

// instance returns the instance named key, creating it if there is room.
func (c *cache) instance(key, label string, now time.Time) *instance {
	if in := c.instances[key]; in != nil {
		in.label = label
		return in
	}
	if len(c.instances) >= maxInstances {
		return nil
	}
	in := &instance{label: label, pendingExp: now.Add(pendingTTL), seen: now}
	c.instances[key] = in
	return in
}

// sweep forgets expired instances and addresses.
func (c *cache) sweep(now time.Time) {
	for k, in := range c.instances {
		if !in.expires().After(now) {
			delete(c.instances, k)
		}
	}
	for h, addrs := range c.hosts {
		for a, exp := range addrs {
			if !exp.After(now) {
				delete(addrs, a)
			}
		}
		if len(addrs) == 0 {
			delete(c.hosts, h)
		}
	}
}

// peers returns the unexpired peers other than ourselves, by DeviceID.
func (c *cache) peers(now time.Time) map[deviceid.ID]*Peer {
	out := map[deviceid.ID]*Peer{}
	for _, in := range c.instances {
		if !in.complete() || in.device == c.self || !in.expires().After(now) {
			continue
		}
		port := in.port
		if port == 0 {
			port = in.txtPort
		}
		if port == 0 {
			continue
		}
		var addrs []netip.AddrPort
		for a, exp := range c.hosts[in.target] {
			if exp.After(now) {
				addrs = append(addrs, netip.AddrPortFrom(a, port))
			}
		}
		if len(addrs) == 0 && in.src.IsValid() {
			addrs = append(addrs, netip.AddrPortFrom(in.src, port))
		}
		p := out[in.device]
		if p == nil {
			p = &Peer{Device: in.device}
			out[in.device] = p
		}
		if !in.seen.Before(p.Seen) {
			p.Seen = in.seen
			p.Name = deviceName(in.label, in.device.Short())
		}
		if exp := in.expires(); exp.After(p.Expires) {
			p.Expires = exp
		}
		for _, a := range addrs {
			if !slices.Contains(p.Addrs, a) {
				p.Addrs = append(p.Addrs, a)
			}
		}
	}
	for _, p := range out {
		sortAddrs(p.Addrs)
	}
	return out
}

// sortAddrs orders addresses IPv4 first, then by address and port.
func sortAddrs(as []netip.AddrPort) {
	slices.SortFunc(as, func(a, b netip.AddrPort) int {
		if a.Addr().Is4() != b.Addr().Is4() {
			if a.Addr().Is4() {
				return -1
			}
			return 1
		}
		return a.Compare(b)
	})
}

// updates returns the peers that appeared or changed name or addresses since
// the last call, and those that disappeared (with no Addrs).
func (c *cache) updates(now time.Time) []Peer {
	c.sweep(now)
	cur := c.peers(now)
	var out []Peer
	for id, p := range cur {
		fp := p.Name + "|" + addrsString(p.Addrs)
		if c.sent[id] != fp {
			c.sent[id] = fp
			c.names[id] = p.Name
			out = append(out, clonePeer(*p))
		}
	}
	for id := range c.sent {
		if cur[id] == nil {
			out = append(out, Peer{Device: id, Name: c.names[id], Seen: now, Expires: now})
			delete(c.sent, id)
			delete(c.names, id)
		}
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Device.String(), b.Device.String()) })
	return out
}

func addrsString(as []netip.AddrPort) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.String())
	}
	return b.String()
}

func clonePeer(p Peer) Peer {
	p.Addrs = slices.Clone(p.Addrs)
	return p
}
