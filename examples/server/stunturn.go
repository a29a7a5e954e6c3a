package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
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
		return nil, errors.New("TURN needs both --turn-user and --turn-pass")
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
			PermissionHandler: permitPeer(cfg.AllowLocalPeers),
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

// permitPeer is the TURN permission check: relays may reach public unicast
// addresses only, unless local peers are allowed.
func permitPeer(allowLocal bool) func(net.Addr, net.IP) bool {
	return func(_ net.Addr, peer net.IP) bool {
		if peer == nil || peer.IsUnspecified() || peer.IsMulticast() {
			return false
		}
		if allowLocal {
			return true
		}
		return !(peer.IsLoopback() || peer.IsPrivate() || peer.IsLinkLocalUnicast() || peer.IsLinkLocalMulticast())
	}
}
