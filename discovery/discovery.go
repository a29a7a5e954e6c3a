package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peersync/peersync/deviceid"
)

// ServiceType is the DNS-SD service type peersync announces and browses,
// in the domain "local.".
const ServiceType = "_peersync._udp"

// TTL is the time to live of the records we announce. We announce again
// every TTL/2, so peers that missed one announcement keep us.
const TTL = 120 * time.Second

// ErrClosed is returned by Run and Close after Close, and by Run once Run
// has already been called.
var ErrClosed = errors.New("discovery: closed")

// Config configures a Discoverer. The zero value of every field but Device
// (and Port, when announcing) is usable.
type Config struct {
	// Device is our DeviceID, announced in the TXT record and used to
	// leave ourselves out of Peers. Required.
	Device deviceid.ID
	// Name is the instance name shown by DNS-SD browsers (the device
	// name). "" means the host name. We append the short DeviceID, e.g.
	// "laptop (MFZWI3D)", so that two devices with the same name do not
	// collide.
	Name string
	// Port is the port our transport listens on, announced in SRV and TXT.
	// Required (1–65535) when Announce is true; ignored otherwise.
	Port int
	// Announce makes us announce ourselves and answer queries. False means
	// browse only: we send queries and never say who we are.
	Announce bool
	// Interfaces to use. Nil means every interface that is up,
	// multicast-capable and not loopback, re-read every 5 s.
	Interfaces []net.Interface
	// HostName, if not "", is announced and answered as HostName.local
	// with the A and AAAA records of each interface (for the web view),
	// even when Announce is false. It is also the SRV target then.
	// "" announces no extra host name.
	HostName string
	// Logger receives debug and warning messages. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for record expiry and rate limits. Nil means
	// time.Now.
	Now func() time.Time
}

// Peer is a peersync device seen on the LAN.
type Peer struct {
	Device deviceid.ID
	// Name is the device name it announced (its instance name without our
	// " (SHORTID)" suffix).
	Name string
	// Addrs are its transport addresses, IPv4 first. IPv6 link-local
	// addresses carry the zone of the interface they were seen on. On
	// Updates, a Peer with no Addrs has left (said goodbye or expired).
	Addrs []netip.AddrPort
	// Seen is when we last heard a record of it.
	Seen time.Time
	// Expires is when its records run out unless renewed.
	Expires time.Time
}

// String formats p for logs and listings: name, short ID and addresses.
func (p Peer) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)", p.Name, p.Device.Short())
	if len(p.Addrs) == 0 {
		b.WriteString(" gone")
	}
	for _, a := range p.Addrs {
		b.WriteByte(' ')
		b.WriteString(a.String())
	}
	return b.String()
}

// Discoverer announces this device and browses for others on the LAN.
type Discoverer struct {
	// Set by New and read-only afterwards (internal tests replace the
	// seams before Run).
	log       *slog.Logger
	now       func() time.Time
	device    deviceid.ID
	ann       ownAnnouncement
	ifaces    []net.Interface // nil: all suitable, re-read
	updates   chan Peer
	seams     seams
	queryEach time.Duration // cap of the browse interval

	mu   sync.Mutex // guards the fields below
	life lifecycle
	// ifPrefixes caches the addresses of the joined interfaces, by index,
	// refreshed every ifCheckEvery, so a packet costs no system call.
	ifPrefixes map[int][]netip.Prefix
	cache      *cache
	rate       responseBudget
}

// ownAnnouncement is what a Discoverer says about its device; fixed by New.
type ownAnnouncement struct {
	announce bool
	port     int
	instance string // full instance name, as announced
	target   string // SRV target host, fully qualified, lower case
	hostName string // HostName + ".local.", or ""
	txt      []string
}

// seams are the system calls and the port a Discoverer uses; internal tests
// replace them before Run.
type seams struct {
	listIfs  func() ([]net.Interface, error)
	ifAddrs  func(net.Interface) ([]netip.Prefix, error)
	mdnsPort int
}

// lifecycle is a Discoverer's Run/Close state, guarded by its mu.
type lifecycle struct {
	// ran is set by the first Run; closed by the first Close.
	ran, closed bool
	cancel      context.CancelFunc // cancels Run, nil until Run
	done        chan struct{}      // closed when Run returns
	closeErr    error              // from closing Run's sockets
}

// responseBudget rate-limits multicast answers; guarded by the
// Discoverer's mu.
type responseBudget struct {
	lastSent map[string]time.Time // key → last multicast
	tokens   float64              // global response budget
	tokensAt time.Time
}

// New checks cfg and returns a Discoverer; nothing is sent until Run. The
// error says which field is wrong.
func New(cfg Config) (*Discoverer, error) {
	if cfg.Device.IsZero() {
		return nil, errors.New("discovery: Config.Device is required")
	}
	if cfg.Announce && (cfg.Port < 1 || cfg.Port > 65535) {
		return nil, fmt.Errorf("discovery: Config.Port %d out of range 1–65535 (required when announcing)", cfg.Port)
	}
	name := cfg.Name
	if name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "peersync"
		}
		name, _, _ = strings.Cut(h, ".")
	}
	d := &Discoverer{
		log:       cfg.Logger,
		now:       cfg.Now,
		device:    cfg.Device,
		ann:       ownAnnouncement{announce: cfg.Announce, port: cfg.Port},
		updates:   make(chan Peer, 64),
		seams:     seams{listIfs: net.Interfaces, ifAddrs: interfacePrefixes, mdnsPort: mdnsPort},
		queryEach: TTL / 2,
		cache:     newCache(cfg.Device),
		rate:      responseBudget{lastSent: map[string]time.Time{}, tokens: burst},
	}
	if cfg.Interfaces != nil { // an empty, non-nil list means none
		d.ifaces = append([]net.Interface{}, cfg.Interfaces...)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.ann.instance = instanceLabel(name, cfg.Device.Short()) + "." + serviceName
	d.ann.target = "peersync-" + strings.ToLower(cfg.Device.Short()) + "." + domain
	if cfg.HostName != "" {
		h := hostLabel(cfg.HostName)
		if h == "" {
			return nil, fmt.Errorf("discovery: Config.HostName %q has no usable characters", cfg.HostName)
		}
		d.ann.hostName = h + "." + domain
		d.ann.target = d.ann.hostName
	}
	if cfg.Announce {
		d.ann.txt = encodeTXT(cfg.Device, cfg.Port)
	}
	return d, nil
}

// Run announces (if Config.Announce) and browses until ctx is done, then
// says goodbye (records with TTL 0) and returns an error wrapping ctx.Err().
// It returns early with an error if no multicast socket could be opened,
// and ErrClosed after Close or on a second call. Updates is closed when Run
// returns.
func (d *Discoverer) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.life.closed || d.life.ran {
		d.mu.Unlock()
		return ErrClosed
	}
	d.life.ran = true
	ctx, cancel := context.WithCancel(ctx)
	d.life.cancel = cancel
	d.life.done = make(chan struct{})
	d.mu.Unlock()
	defer close(d.life.done)
	defer close(d.updates)
	defer cancel()

	s, err := d.openSockets()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, c := range s.conns() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.readLoop(s, c)
		}()
	}
	d.loop(ctx, s)
	if d.ann.announce || d.ann.hostName != "" {
		d.sendAnnouncements(s, s.joinedInterfaces(), 0)
	}
	cerr := s.close()
	wg.Wait()
	if cerr != nil {
		d.mu.Lock()
		d.life.closeErr = cerr
		d.mu.Unlock()
	}
	return errors.Join(fmt.Errorf("discovery: %w", ctx.Err()), cerr)
}

// loop sends announcements and queries on schedule, expires peers and
// re-reads interfaces until ctx is done.
func (d *Discoverer) loop(ctx context.Context, s *sockets) {
	start := time.Now()
	// Announce three times at start (RFC 6762 section 8.3 asks for at
	// least two, one second apart), then every TTL/2.
	announceAt := []time.Duration{0, time.Second, 3 * time.Second}
	// Query with exponential backoff from 1 s, capped at queryEach.
	nextQuery, queryGap := time.Duration(0), time.Second
	nextAnnounce := time.Duration(0)
	nextIfs := ifCheckEvery
	addrs := d.addrSnapshot(s)
	d.setPrefixes(addrs)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		el := time.Since(start)
		if el >= nextIfs {
			nextIfs = el + ifCheckEvery
			if fresh := d.refreshInterfaces(s); len(fresh) > 0 {
				d.sendAnnouncements(s, fresh, uint32(TTL/time.Second))
				d.sendQueries(s, fresh)
			}
			// An address changed (DHCP, Wi-Fi roaming): tell peers
			// now. Our A/AAAA records flush their old ones of the same
			// type, and a goodbye removes the addresses that went.
			if cur := d.addrSnapshot(s); !maps.EqualFunc(cur, addrs, slices.Equal) {
				if d.ann.announce || d.ann.hostName != "" {
					d.sendAddressGoodbyes(s, addrs, cur)
					d.sendAnnouncements(s, s.joinedInterfaces(), uint32(TTL/time.Second))
				}
				addrs = cur
			}
			d.setPrefixes(addrs)
		}
		if (d.ann.announce || d.ann.hostName != "") && el >= nextAnnounce {
			d.sendAnnouncements(s, s.joinedInterfaces(), uint32(TTL/time.Second))
			if len(announceAt) > 1 {
				announceAt = announceAt[1:]
				nextAnnounce = announceAt[0]
			} else {
				nextAnnounce = el + TTL/2
			}
		}
		if el >= nextQuery {
			d.sendQueries(s, s.joinedInterfaces())
			nextQuery = el + queryGap
			queryGap = min(queryGap*2, d.queryEach)
		}
		d.mu.Lock()
		d.emitLocked(d.cache.updates(d.now()))
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ifCheckEvery is how often Run looks for new interfaces and addresses.
const ifCheckEvery = 5 * time.Second

func (d *Discoverer) setPrefixes(m map[int][]netip.Prefix) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ifPrefixes = m
}

// addrSnapshot returns the addresses of the joined interfaces, by index.
func (d *Discoverer) addrSnapshot(s *sockets) map[int][]netip.Prefix {
	out := map[int][]netip.Prefix{}
	for _, ifi := range s.joinedInterfaces() {
		ps, _ := d.seams.ifAddrs(ifi)
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		out[ifi.Index] = ps
	}
	return out
}

// emitLocked sends updates without blocking (a full channel drops them).
// It runs under d.mu so that updates computed in order are sent in order;
// it never blocks, and calls no user code.
func (d *Discoverer) emitLocked(ups []Peer) {
	for _, p := range ups {
		select {
		case d.updates <- p:
		default:
			d.log.Debug("discovery: update dropped, channel full", "device", p.Device)
		}
	}
}

// Peers returns the peers currently seen on the LAN, unexpired, without
// ourselves, sorted by DeviceID. The slices are the caller's.
func (d *Discoverer) Peers() []Peer {
	d.mu.Lock()
	now := d.now()
	d.cache.sweep(now)
	m := d.cache.peers(now)
	d.mu.Unlock()
	out := make([]Peer, 0, len(m))
	for _, p := range m {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Device.String(), b.Device.String()) })
	return out
}

// Lookup returns the current addresses of device id, or nil if it is not
// seen on the LAN (or is ourselves).
func (d *Discoverer) Lookup(id deviceid.ID) []netip.AddrPort {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.cache.sweep(now)
	if p := d.cache.peers(now)[id]; p != nil {
		return p.Addrs
	}
	return nil
}

// Updates delivers a Peer whenever one appears, changes name or addresses,
// or leaves (then with no Addrs). Sends never block: if the reader falls
// behind, updates are dropped, so treat them as hints and call Peers for
// the full picture. The channel is closed when Run returns (or by Close if
// Run never ran).
func (d *Discoverer) Updates() <-chan Peer { return d.updates }

// Close stops Run (which says goodbye) and waits for it to return. It
// returns the error of closing Run's sockets, if any, and ErrClosed if
// called again.
func (d *Discoverer) Close() error {
	d.mu.Lock()
	if d.life.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.life.closed = true
	cancel, done, ran := d.life.cancel, d.life.done, d.life.ran
	d.mu.Unlock()
	if !ran {
		close(d.updates)
		return nil
	}
	cancel()
	<-done
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.life.closeErr
}
