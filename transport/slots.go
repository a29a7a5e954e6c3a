package transport

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// handshakeSlots bounds the incoming TCP connections in their TLS
// handshake: at most maxTCPHandshakes at once, and at most
// maxTCPHandshakesPerSource from one source (an IPv4 address, or an IPv6
// /64, which one host usually has whole). When all slots are taken, a new
// connection takes the slot of the oldest one that has not sent a byte
// yet (a real dialer sends its ClientHello at once), so that idle sockets
// cannot keep real dialers out; if every slot has heard from its peer, the
// new connection is dropped. An idle socket also loses its slot after
// firstByteTimeout.
type handshakeSlots struct {
	mu    sync.Mutex         // guards the fields below
	open  []*handshakeSlot   // in order of arrival
	perIP map[netip.Addr]int // open slots per source
}

// handshakeSlot is an incoming TCP connection in its handshake: the
// connection, noting its first byte.
type handshakeSlot struct {
	net.Conn
	source netip.Addr
	heard  atomic.Bool // a byte has arrived
}

// Read reads from the connection; the first byte clears the first-byte
// deadline (the handshake's context bounds the rest).
func (s *handshakeSlot) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if n > 0 && s.heard.CompareAndSwap(false, true) {
		s.Conn.SetReadDeadline(time.Time{}) //nolint:errcheck // fails only once closed, which the next Read reports
	}
	return n, err
}

// sourceOf is the source a connection's slot counts against.
func sourceOf(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip
}

// take gives nc a slot, or returns nil and why not.
func (h *handshakeSlots) take(nc net.Conn) (*handshakeSlot, string) {
	src := sourceOf(nc.RemoteAddr())
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perIP == nil {
		h.perIP = make(map[netip.Addr]int)
	}
	if h.perIP[src] >= maxTCPHandshakesPerSource {
		return nil, "too many TCP handshakes from this address"
	}
	if len(h.open) >= maxTCPHandshakes {
		evicted := false
		for i, s := range h.open {
			if !s.heard.Load() {
				h.removeLocked(i)
				s.Conn.Close() //nolint:errcheck // its handshake fails and gives the slot back (a no-op now)
				evicted = true
				break
			}
		}
		if !evicted {
			return nil, "too many TCP handshakes in progress"
		}
	}
	s := &handshakeSlot{Conn: nc, source: src}
	h.open = append(h.open, s)
	h.perIP[src]++
	return s, ""
}

// give returns s's slot, unless it was taken from it already.
func (h *handshakeSlots) give(s *handshakeSlot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, o := range h.open {
		if o == s {
			h.removeLocked(i)
			return
		}
	}
}

func (h *handshakeSlots) removeLocked(i int) {
	s := h.open[i]
	h.open = append(h.open[:i], h.open[i+1:]...)
	if h.perIP[s.source]--; h.perIP[s.source] <= 0 {
		delete(h.perIP, s.source)
	}
}

// inUse returns how many slots are taken.
func (h *handshakeSlots) inUse() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.open)
}
