//go:build linux

// Package natlab builds, for tests, two home networks behind real Linux
// NATs on a shared "internet", in network namespaces (internal/netns):
//
//	host A 192.168.1.2 ── router A ──┐                ┌── router B ── host B 192.168.2.2
//	       (lan 192.168.1.1)  wan 203.0.113.11   internet   wan 203.0.113.12  (lan 192.168.2.1)
//	                                 └── server 203.0.113.1 ──┘
//
// Each router masquerades its LAN behind its WAN address (iptables
// MASQUERADE, which is endpoint-independent mapping: a cone NAT) and drops
// unsolicited packets arriving on its WAN, as home routers do (accepting
// them makes conntrack pick a new port for the inside host's next packet to
// that peer, and ICE then fails). With Symmetric, MASQUERADE gets
// --random-fully: a new random port per destination, a symmetric NAT.
//
// The hosts have a default route through their router; the server and the
// routers' WAN sides share one subnet, so no routing is needed on the
// internet. Everything is deleted at the end of the test.
//
// Code runs in a namespace either as a process (netns.NS.Start) or
// in-process: a socket opened inside NS.Do stays in its namespace, and Net
// gives pion (ICE, TURN) a network whose sockets are opened that way.
package natlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"

	"github.com/peersync/peersync/internal/netns"
)

// Config chooses the NAT behaviour of both routers.
type Config struct {
	// Symmetric makes both NATs symmetric (MASQUERADE --random-fully);
	// false: cone (plain MASQUERADE).
	Symmetric bool
}

// Lab is a running topology.
type Lab struct {
	// Internet holds the server address ServerIP.
	Internet *netns.NS
	ServerIP netip.Addr
	// Routers, Hosts, HostIPs and PublicIPs are indexed 0 (A) and 1 (B);
	// PublicIPs are the routers' WAN addresses.
	Routers   [2]*netns.NS
	Hosts     [2]*netns.NS
	HostIPs   [2]netip.Addr
	PublicIPs [2]netip.Addr
}

// New builds the topology; it calls netns.Require, which skips the test
// loudly unless namespaces can be made (root, iproute2). iptables is
// required too (skipped loudly if missing).
func New(t testing.TB, cfg Config) *Lab {
	t.Helper()
	netns.Require(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		msg := "SKIPPING " + t.Name() + ": no iptables (apt-get install iptables)"
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		t.Skip(msg)
	}
	l := &Lab{ServerIP: netip.MustParseAddr("203.0.113.1")}
	inet := netns.NewBridge(t)
	l.Internet = netns.New(t)
	inet.Attach(t, l.Internet, "eth0", netip.MustParsePrefix("203.0.113.1/24"))
	// A default route, as a server on the internet has: sending to an
	// address nobody has (such as a host candidate's private address) is
	// then silently lost instead of failing with ENETUNREACH, which coturn
	// treats as fatal for the relay socket. 203.0.113.254 does not exist.
	l.Internet.MustIP(t, "route", "add", "default", "via", "203.0.113.254")
	for i := range 2 {
		r, h := netns.New(t), netns.New(t)
		l.Routers[i], l.Hosts[i] = r, h
		l.PublicIPs[i] = netip.AddrFrom4([4]byte{203, 0, 113, byte(11 + i)})
		l.HostIPs[i] = netip.AddrFrom4([4]byte{192, 168, byte(1 + i), 2})
		gw := netip.AddrFrom4([4]byte{192, 168, byte(1 + i), 1})
		inet.Attach(t, r, "wan", netip.PrefixFrom(l.PublicIPs[i], 24))
		netns.Link(t, r, "lan", netip.PrefixFrom(gw, 24), h, "eth0", netip.PrefixFrom(l.HostIPs[i], 24))
		h.MustIP(t, "route", "add", "default", "via", gw.String())
		if err := r.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
			t.Fatalf("natlab: %v", err)
		}
		for _, rule := range RouterRules(cfg) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := r.Output(ctx, nil, "iptables", rule...)
			cancel()
			if err != nil {
				t.Fatalf("natlab: %v", err)
			}
		}
	}
	return l
}

// RouterRules returns the iptables arguments each router runs (its LAN
// is "lan", its WAN "wan"): masquerade the LAN behind the WAN address
// (with --random-fully when cfg.Symmetric), and drop unsolicited packets
// arriving on the WAN, for the router itself and for the hosts behind it.
func RouterRules(cfg Config) [][]string {
	masq := []string{"-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"}
	if cfg.Symmetric {
		masq = append(masq, "--random-fully")
	}
	return [][]string{
		masq,
		{"-A", "INPUT", "-i", "wan", "-m", "state", "--state", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-i", "wan", "-j", "DROP"},
		{"-A", "FORWARD", "-i", "wan", "-m", "state", "--state", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "wan", "-j", "DROP"},
	}
}

// Iptables returns "iptables -S" and the NAT table of router i, for logs.
func (l *Lab) Iptables(i int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, _ := l.Routers[i].Output(ctx, nil, "iptables", "-S")
	b, _ := l.Routers[i].Output(ctx, nil, "iptables", "-t", "nat", "-S")
	return strings.TrimSpace(a + b)
}

// ListenUDP opens a UDP socket at addr inside ns (with 4 MiB buffers, as
// transport does).
func ListenUDP(ns *netns.NS, addr string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := ns.Do(func() error {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp", ua)
		if err != nil {
			return err
		}
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		return nil
	})
	return c, err
}

// Net is a pion transport.Net whose sockets and interface list are those of
// a namespace: a stdnet.Net whose socket-making methods run in NS.Do.
type Net struct {
	*stdnet.Net
	ns *netns.NS
}

var _ transport.Net = (*Net)(nil)

// NewNet returns the network of ns.
func NewNet(ns *netns.NS) (*Net, error) {
	n := &Net{ns: ns}
	err := ns.Do(func() error {
		var err error
		n.Net, err = stdnet.NewNet()
		return err
	})
	return n, err
}

func (n *Net) ListenPacket(network, address string) (pc net.PacketConn, err error) {
	err = n.ns.Do(func() error { pc, err = n.Net.ListenPacket(network, address); return err })
	return pc, err
}

func (n *Net) ListenUDP(network string, laddr *net.UDPAddr) (c transport.UDPConn, err error) {
	err = n.ns.Do(func() error { c, err = n.Net.ListenUDP(network, laddr); return err })
	return c, err
}

func (n *Net) ListenTCP(network string, laddr *net.TCPAddr) (l transport.TCPListener, err error) {
	err = n.ns.Do(func() error { l, err = n.Net.ListenTCP(network, laddr); return err })
	return l, err
}

func (n *Net) Dial(network, address string) (c net.Conn, err error) {
	err = n.ns.Do(func() error { c, err = n.Net.Dial(network, address); return err })
	return c, err
}

func (n *Net) DialUDP(network string, laddr, raddr *net.UDPAddr) (c transport.UDPConn, err error) {
	err = n.ns.Do(func() error { c, err = n.Net.DialUDP(network, laddr, raddr); return err })
	return c, err
}

func (n *Net) DialTCP(network string, laddr, raddr *net.TCPAddr) (c transport.TCPConn, err error) {
	err = n.ns.Do(func() error { c, err = n.Net.DialTCP(network, laddr, raddr); return err })
	return c, err
}
