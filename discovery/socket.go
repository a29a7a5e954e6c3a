package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const mdnsPort = 5353

var (
	group4 = netip.MustParseAddr("224.0.0.251")
	group6 = netip.MustParseAddr("ff02::fb")
)

// conn is one multicast socket, IPv4 or IPv6.
type conn struct {
	v6  bool
	pc  net.PacketConn
	p4  *ipv4.PacketConn
	p6  *ipv6.PacketConn
	grp netip.Addr
}

// sockets are the two multicast sockets and the interfaces they joined.
type sockets struct {
	c4, c6 *conn
	port   int
	sendMu sync.Mutex // serialises choosing the outgoing interface and sending

	mu     sync.Mutex // guards joined
	joined map[int]net.Interface
}

func (s *sockets) conns() []*conn {
	var cs []*conn
	for _, c := range []*conn{s.c4, s.c6} {
		if c != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// openSockets binds 0.0.0.0:5353 and [::]:5353 with address reuse (so that
// Avahi or another responder can share the port) and joins the groups on the
// configured interfaces. Either family may fail (IPv6 disabled); both
// failing is an error.
func (d *Discoverer) openSockets() (*sockets, error) {
	s := &sockets{port: d.seams.mdnsPort, joined: map[int]net.Interface{}}
	lc := net.ListenConfig{Control: reuseControl}
	var errs []error
	if pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", d.seams.mdnsPort)); err == nil {
		c := &conn{pc: pc, p4: ipv4.NewPacketConn(pc), grp: group4}
		_ = c.p4.SetControlMessage(ipv4.FlagInterface, true)
		_ = c.p4.SetMulticastTTL(255)
		_ = c.p4.SetTTL(255)
		_ = c.p4.SetMulticastLoopback(true)
		s.c4 = c
	} else {
		errs = append(errs, fmt.Errorf("udp4: %w", err))
	}
	if pc, err := lc.ListenPacket(context.Background(), "udp6", fmt.Sprintf("[::]:%d", d.seams.mdnsPort)); err == nil {
		c := &conn{v6: true, pc: pc, p6: ipv6.NewPacketConn(pc), grp: group6}
		_ = c.p6.SetControlMessage(ipv6.FlagInterface, true)
		_ = c.p6.SetMulticastHopLimit(255)
		_ = c.p6.SetHopLimit(255)
		_ = c.p6.SetMulticastLoopback(true)
		s.c6 = c
	} else {
		errs = append(errs, fmt.Errorf("udp6: %w", err))
	}
	if s.c4 == nil && s.c6 == nil {
		return nil, fmt.Errorf("discovery: no multicast socket: %w", errors.Join(errs...))
	}
	for _, err := range errs {
		d.log.Warn("discovery: socket unavailable, continuing without it", "err", err)
	}
	d.refreshInterfaces(s)
	if len(s.joinedInterfaces()) == 0 {
		d.log.Warn("discovery: no usable interface yet (up, multicast, not loopback)")
	}
	return s, nil
}

// refreshInterfaces joins the groups on interfaces that appeared and leaves
// those that went away; it returns the newly joined ones.
func (d *Discoverer) refreshInterfaces(s *sockets) []net.Interface {
	want := d.ifaces
	if want == nil {
		all, err := d.seams.listIfs()
		if err != nil {
			d.log.Warn("discovery: listing interfaces", "err", err)
			return nil
		}
		for _, ifi := range all {
			if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagLoopback == 0 {
				want = append(want, ifi)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var fresh []net.Interface
	seen := map[int]bool{}
	for _, ifi := range want {
		seen[ifi.Index] = true
		if _, ok := s.joined[ifi.Index]; ok {
			s.joined[ifi.Index] = ifi
			continue
		}
		ok := false
		for _, c := range s.conns() {
			var err error
			ga := &net.UDPAddr{IP: c.grp.AsSlice()}
			if c.v6 {
				err = c.p6.JoinGroup(&ifi, ga)
			} else {
				err = c.p4.JoinGroup(&ifi, ga)
			}
			if err != nil {
				d.log.Debug("discovery: join group", "interface", ifi.Name, "group", c.grp, "err", err)
				continue
			}
			ok = true
		}
		if ok {
			s.joined[ifi.Index] = ifi
			fresh = append(fresh, ifi)
			d.log.Debug("discovery: listening", "interface", ifi.Name)
		}
	}
	for idx, ifi := range s.joined {
		if seen[idx] {
			continue
		}
		for _, c := range s.conns() {
			ga := &net.UDPAddr{IP: c.grp.AsSlice()}
			if c.v6 {
				_ = c.p6.LeaveGroup(&ifi, ga)
			} else {
				_ = c.p4.LeaveGroup(&ifi, ga)
			}
		}
		delete(s.joined, idx)
	}
	return fresh
}

func (s *sockets) joinedInterfaces() []net.Interface {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Interface, 0, len(s.joined))
	for _, ifi := range s.joined {
		out = append(out, ifi)
	}
	return out
}

func (s *sockets) iface(index int) (net.Interface, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ifi, ok := s.joined[index]
	return ifi, ok
}

// read reads one packet and the index of the interface it arrived on.
func (c *conn) read(b []byte) (int, int, netip.AddrPort, error) {
	var (
		n   int
		idx int
		src net.Addr
		err error
	)
	if c.v6 {
		var cm *ipv6.ControlMessage
		n, cm, src, err = c.p6.ReadFrom(b)
		if cm != nil {
			idx = cm.IfIndex
		}
	} else {
		var cm *ipv4.ControlMessage
		n, cm, src, err = c.p4.ReadFrom(b)
		if cm != nil {
			idx = cm.IfIndex
		}
	}
	if err != nil {
		return 0, 0, netip.AddrPort{}, err
	}
	ua, _ := src.(*net.UDPAddr)
	if ua == nil {
		return 0, 0, netip.AddrPort{}, errors.New("not a UDP address")
	}
	ap := ua.AddrPort()
	return n, idx, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// send writes b to dst (a group or a unicast querier) out of ifi.
func (s *sockets) send(b []byte, ifi net.Interface, dst netip.AddrPort) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	ua := net.UDPAddrFromAddrPort(dst)
	if dst.Addr().Is6() {
		if s.c6 == nil {
			return nil
		}
		if dst.Addr().IsMulticast() {
			if err := s.c6.p6.SetMulticastInterface(&ifi); err != nil {
				return err
			}
		}
		_, err := s.c6.p6.WriteTo(b, &ipv6.ControlMessage{IfIndex: ifi.Index, HopLimit: 255}, ua)
		return err
	}
	if s.c4 == nil {
		return nil
	}
	if dst.Addr().IsMulticast() {
		if err := s.c4.p4.SetMulticastInterface(&ifi); err != nil {
			return err
		}
	}
	_, err := s.c4.p4.WriteTo(b, &ipv4.ControlMessage{IfIndex: ifi.Index}, ua)
	return err
}

func (s *sockets) close() error {
	var errs []error
	for _, c := range s.conns() {
		errs = append(errs, c.pc.Close())
	}
	return errors.Join(errs...)
}

// readLoop handles packets from c until the socket is closed.
func (d *Discoverer) readLoop(s *sockets, c *conn) {
	buf := make([]byte, maxPacket)
	for {
		n, idx, src, err := c.read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			d.log.Debug("discovery: read", "err", err)
			time.Sleep(10 * time.Millisecond) // bound a loop of persistent errors
			continue
		}
		ifi, ok := s.iface(idx)
		if !ok {
			continue
		}
		outs, _ := d.handle(buf[:n], src, ifi)
		for _, o := range outs {
			if err := s.send(o.data, ifi, o.to); err != nil {
				d.log.Debug("discovery: send", "interface", ifi.Name, "to", o.to, "err", err)
			}
		}
	}
}

// interfacePrefixes returns the addresses of ifi with their prefix lengths.
func interfacePrefixes(ifi net.Interface) ([]netip.Prefix, error) {
	as, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range as {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}
