package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/pion/turn/v5"
)

// relayConfig configures the STUN/TURN service of the server.
type relayConfig struct {
	// Listen is the UDP address for STUN (and TURN); "" = ":3478".
	Listen string
	// User and Pass enable TURN with these long-term credentials (RFC 8489).
	// Without them only STUN is answered and every allocation is refused.
	User, Pass string
	// RelayIP is the address TURN relays are announced at: the server's
	// public IP. "" = the host of Listen if that is a specific IP.
	RelayIP string
	// Realm of the credentials; "" = "peersync".
	Realm string
	// AllowLocalPeers lets relays reach loopback, private and link-local
	// addresses. Off by default: a TURN relay that forwards there lets any
	// credential holder reach the server's own services and LAN (SSRF).
	// Tests on one machine turn it on.
	AllowLocalPeers bool
	Log             *slog.Logger
}

// relay is a running STUN/TURN server (pion/turn, which answers STUN
// Binding requests on the same socket without authentication).
type relay struct {
	conn net.PacketConn
	srv  *turn.Server
}

// startRelay listens and serves until Close.
func startRelay(cfg relayConfig) (*relay, error) {
	if cfg.Listen == "" {
		cfg.Listen = ":3478"
	}
	if cfg.Realm == "" {
		cfg.Realm = "peersync"
	}
	if (cfg.User == "") != (cfg.Pass == "") {
		return nil, errors.New("TURN needs both --turn-user and a password (--turn-pass-file FILE or $PEERSYNC_TURN_PASS)")
	}
	if strings.ContainsAny(cfg.User, ":") {
		return nil, errors.New("--turn-user may not contain ':'")
	}
	turnOn := cfg.User != ""
	var relayIP net.IP
	if turnOn {
		ipText := cfg.RelayIP
		if ipText == "" {
			host, _, err := net.SplitHostPort(cfg.Listen)
			if err != nil {
				return nil, fmt.Errorf("--stun-listen %q: %w", cfg.Listen, err)
			}
			ipText = host
		}
		relayIP = net.ParseIP(ipText)
		if relayIP == nil || relayIP.IsUnspecified() {
			return nil, errors.New("TURN needs --turn-relay-ip: the public IP address clients reach this server at")
		}
	} else {
		relayIP = net.IPv4(127, 0, 0, 1) // unused: no allocation is ever authorized
	}
	conn, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("STUN/TURN listen on %s: %w", cfg.Listen, err)
	}
	key := turn.GenerateAuthKey(cfg.User, cfg.Realm, cfg.Pass)
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: cfg.Realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if turnOn && ra.Username == cfg.User && ra.Realm == cfg.Realm {
				return cfg.User, key, true
			}
			log.Debug("TURN request refused: unknown credentials", "user", ra.Username, "from", fmt.Sprint(ra.SrcAddr))
			return "", nil, false
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:        conn,
			PermissionHandler: permitPeer(cfg.AllowLocalPeers, ownAddrs(relayIP, conn.LocalAddr())),
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: relayIP,
				Address:      relayBindHost(relayIP),
			},
		}},
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("TURN server: %w", err)
	}
	return &relay{conn: conn, srv: srv}, nil
}

// relayBindHost is where relay sockets are opened: the relay IP itself when
// it is loopback (tests), else every interface (behind a 1:1 NAT the public
// IP is not a local address).
func relayBindHost(ip net.IP) string {
	if ip.IsLoopback() {
		return ip.String()
	}
	return "0.0.0.0"
}

// Addr is the STUN/TURN socket's address.
func (r *relay) Addr() net.Addr { return r.conn.LocalAddr() }

// Close stops the server and closes its socket.
func (r *relay) Close() error { return r.srv.Close() }

// refusedRanges are never relayed to, on top of loopback, private,
// link-local, multicast and unspecified addresses: "this network"
// (0.0.0.0/8), carrier-grade NAT (100.64.0.0/10, often the provider's own
// network), benchmarking (198.18.0.0/15) and reserved space (240.0.0.0/4,
// which holds the limited broadcast 255.255.255.255).
var refusedRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// ownAddrs returns the server's own addresses, which relays must not
// reach (its other services, or the relay itself in a loop): the relay IP,
// the listening address, every interface address, and each IPv4
// interface network's directed broadcast address.
func ownAddrs(relayIP net.IP, listen net.Addr) map[netip.Addr]bool {
	own := make(map[netip.Addr]bool)
	add := func(ip net.IP) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			own[a.Unmap()] = true
		}
	}
	add(relayIP)
	if ua, ok := listen.(*net.UDPAddr); ok {
		add(ua.IP)
	}
	addrs, _ := net.InterfaceAddrs() // on error, the relay and listen addresses still count
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		add(ipn.IP)
		if ip4 := ipn.IP.To4(); ip4 != nil && len(ipn.Mask) == net.IPv4len {
			bcast := make(net.IP, net.IPv4len)
			for i := range bcast {
				bcast[i] = ip4[i] | ^ipn.Mask[i]
			}
			add(bcast)
		}
	}
	return own
}

// permitPeer is the TURN permission check: relays may reach public unicast
// addresses only, never the server's own (own) nor a refused range. With
// allowLocal (tests on one machine), loopback, private and own addresses
// are allowed too.
func permitPeer(allowLocal bool, own map[netip.Addr]bool) func(net.Addr, net.IP) bool {
	return func(_ net.Addr, peer net.IP) bool {
		a, ok := netip.AddrFromSlice(peer)
		if !ok {
			return false
		}
		a = a.Unmap()
		if a.IsUnspecified() || a.IsMulticast() {
			return false
		}
		for _, p := range refusedRanges {
			if p.Contains(a) {
				return false
			}
		}
		if allowLocal {
			return true
		}
		return !own[a] && !(a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast())
	}
}
