package impair

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/peersync/peersync/internal/netns"
)

// Config describes the impairment of a Wire.
type Config struct {
	// Delay is the one-way delay, in each direction: the round trip is
	// at least 2×Delay.
	Delay time.Duration
	// Loss is the probability (0 to 1) that a frame is dropped, in each
	// direction independently: 0.01 loses 1% of the packets each way.
	Loss float64
	// Reverse, if not nil, is the impairment from B to A instead of
	// Delay and Loss, for asymmetric paths.
	Reverse *Link
	// QueueLimit bounds the bytes in flight in each direction; frames
	// arriving beyond it are dropped. Zero means DefaultQueueLimit (16 MiB,
	// 6.7 s at 20 Mbit/s, 0.16 s at 100 MiB/s).
	QueueLimit int
	// Seed makes the random drops repeatable; zero picks one at random
	// (logged by New, to repeat a run).
	Seed uint64
}

var (
	// AddrA is the address of A's eth0 (in 10.99.0.0/24).
	AddrA = netip.MustParseAddr("10.99.0.1")
	// AddrB is the address of B's eth0 (in 10.99.0.0/24).
	AddrB = netip.MustParseAddr("10.99.0.2")

	macA = "02:99:00:00:00:01"
	macB = "02:99:00:00:00:02"
)

// Wire is two network namespaces, A and B, joined by an impaired Ethernet
// cable: A's eth0 (AddrA/24) and B's eth0 (AddrB/24) are veth links into a
// third namespace, where a forwarder in this process carries each frame
// across after the configured delay, unless it drops it.
type Wire struct {
	// A and B are the two ends; each has eth0 and loopback only.
	A, B *netns.NS
	// Middle holds the forwarder's legs, la (to A) and lb (to B).
	Middle *netns.NS

	ab, ba *direction
	socks  []*packetSock
}

// New builds a Wire impaired as cfg says; t.Cleanup stops the forwarder and
// deletes the namespaces. It needs root and the ip command, and skips the
// test loudly otherwise (netns.Require).
func New(t testing.TB, cfg Config) *Wire {
	t.Helper()
	requireRoot(t)
	if cfg.Loss < 0 || cfg.Loss > 1 || cfg.Delay < 0 ||
		cfg.Reverse != nil && (cfg.Reverse.Loss < 0 || cfg.Reverse.Loss > 1 || cfg.Reverse.Delay < 0) {
		t.Fatalf("impair: bad config %+v", cfg)
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:]) | 1
		t.Logf("impair: loss seed %d (set Config.Seed to repeat)", seed)
	}
	ab := Link{Delay: cfg.Delay, Loss: cfg.Loss}
	ba := ab
	if cfg.Reverse != nil {
		ba = *cfg.Reverse
	}

	w := &Wire{Middle: netns.New(t), A: netns.New(t), B: netns.New(t)}
	// The middle is not a host: no IPv6 addresses, so its kernel ignores
	// the frames passing by.
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		_ = w.Middle.Sysctl(k, "1")
	}
	for _, end := range []struct {
		ns         *netns.NS
		leg, mac   string
		addr, peer netip.Addr
		peerMAC    string
	}{
		{w.A, "la", macA, AddrA, AddrB, macB},
		{w.B, "lb", macB, AddrB, AddrA, macA},
	} {
		end.ns.MustIP(t, "link", "add", "eth0", "address", end.mac, "type", "veth", "peer", "name", end.leg, "netns", w.Middle.Name)
		end.ns.MustIP(t, "addr", "add", netip.PrefixFrom(end.addr, 24).String(), "dev", "eth0")
		// No ARP round trip (delayed, perhaps lost) before the first packet.
		end.ns.MustIP(t, "neigh", "replace", end.peer.String(), "lladdr", end.peerMAC, "dev", "eth0", "nud", "permanent")
		if err := end.ns.Do(func() error { return disableOffloads("eth0") }); err != nil {
			t.Fatal(err)
		}
		if err := w.Middle.Do(func() error { return disableOffloads(end.leg) }); err != nil {
			t.Fatal(err)
		}
		w.Middle.MustIP(t, "link", "set", end.leg, "up")
		end.ns.MustIP(t, "link", "set", "eth0", "up")
	}

	var la, lb *packetSock
	err := w.Middle.Do(func() error {
		var err error
		if la, err = openPacketSock("la"); err != nil {
			return err
		}
		if lb, err = openPacketSock("lb"); err != nil {
			la.f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w.socks = []*packetSock{la, lb}
	w.ab = newDirection(la, lb, NewLine(ab, cfg.QueueLimit, seed))
	w.ba = newDirection(lb, la, NewLine(ba, cfg.QueueLimit, seed^0x9e3779b97f4a7c15))
	w.ab.start()
	w.ba.start()
	t.Cleanup(func() {
		if err := w.close(); err != nil {
			t.Errorf("impair: %v", err)
		}
	})
	return w
}

// requireRoot skips the test, loudly (on stderr too, so it shows without
// -v), unless this process can build a Wire: root, and network namespaces
// (netns.Require).
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := fmt.Sprintf("SKIPPING %s: impair needs root (network namespaces, packet sockets); CI runs it as root", t.Name())
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		t.Skip(msg)
	}
	netns.Require(t)
}

// close stops the forwarder and waits for its goroutines; it returns the
// first unexpected error either direction met.
func (w *Wire) close() error {
	w.ab.close()
	w.ba.close()
	for _, s := range w.socks {
		s.f.Close()
	}
	w.ab.wg.Wait()
	w.ba.wg.Wait()
	var errs []error
	for _, d := range []*direction{w.ab, w.ba} {
		if p := d.err.Load(); p != nil {
			errs = append(errs, *p)
		}
	}
	return errors.Join(errs...)
}

// Stats returns what each direction did so far: ab is A to B, ba B to A.
func (w *Wire) Stats() (ab, ba Stats) {
	return w.ab.snapshot(), w.ba.snapshot()
}

// Set changes the impairment of each direction from now on (frames already
// queued keep their times).
func (w *Wire) Set(ab, ba Link) {
	w.ab.setLink(ab)
	w.ba.setLink(ba)
}
