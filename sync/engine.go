package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// Errors callers may branch on.
var (
	// ErrClosed: the Engine was closed.
	ErrClosed = errors.New("sync: engine closed")
	// ErrRunning: Run was called while already running.
	ErrRunning = errors.New("sync: engine already running")
	// ErrUnknownFolder: no folder with that ID.
	ErrUnknownFolder = errors.New("sync: unknown folder")
)

// Config configures an Engine. The zero value of every optional field is a
// sensible default.
type Config struct {
	// Home is the state directory (config.json, table.json). Required.
	Home string
	// Identity is this device's key. Required.
	Identity *crypto.Identity
	// Network is where the engine listens (UDP, and TCP beside it).
	Network NetworkConfig
	// Discovery is LAN discovery (mDNS / DNS-SD); off by default.
	Discovery DiscoveryConfig
	// NAT is how peers behind NATs are reached: the rendezvous server,
	// STUN and TURN.
	NAT NATConfig
	// ScanInterval is how often every folder is rescanned as a safety net
	// beside the file watcher (which commits a saved file within about
	// 100 ms); 0 = 10 s.
	ScanInterval time.Duration
	// IdleTimeout is how long a connection to a peer that shares no folder
	// with this device (and is neither our rendezvous nor registered at
	// ours) is kept open; 0 = 2 minutes. Such peers are not dialed.
	IdleTimeout time.Duration
	// DialInterval is how often disconnected peers are dialed; 0 = 3 s.
	DialInterval time.Duration
	// AnnounceInterval is how often heads are re-sent to connected peers as a
	// safety net (they are always sent at once when they change); 0 = 30 s.
	AnnounceInterval time.Duration
	// Mailbox configures the blind mailbox at the rendezvous (on by
	// default; see the package doc, Mailbox).
	Mailbox MailboxConfig
	// MaxBundleSize caps a bundle accepted from a peer; 0 = 64 GiB.
	MaxBundleSize int64
	// Fetch bounds an incoming bundle in time (overall deadline, minimum
	// rate, idle limit); its zero value selects generous defaults.
	Fetch FetchLimits
	// DefaultFolderParent is where AcceptFolder puts a folder offered by a
	// peer when no path is given: <DefaultFolderParent>/<label>.
	// "" = PeerSync in the user's home directory.
	DefaultFolderParent string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Now is the clock (nil = time.Now).
	Now func() time.Time
	// Shared opens Home beside the Engine that owns it (a command-line tool
	// next to a running daemon): New takes no lock, and the Engine may read
	// (Status, History) and change the configuration, but Run and the
	// methods that commit return ErrShared. False (the default): New takes
	// the home's lock until Close, and fails with a *HomeInUseError while
	// another Engine holds it.
	Shared bool

	// test holds hooks for this package's tests; nil in production.
	test *testHooks
}

// NetworkConfig says where an Engine listens.
type NetworkConfig struct {
	// ListenAddr is the UDP address to listen on; "" = ":44996",
	// port 0 = any free port (see Engine.Addr).
	ListenAddr string
	// DisableTCP turns off the TCP+TLS path: no TCP listener beside the UDP
	// socket, and peers are dialed with QUIC and ICE only. By default a
	// device listens on TCP on its UDP port number too, and dials race
	// TCP+TLS, QUIC and ICE (TCP preferred: see the package doc).
	DisableTCP bool
}

// DiscoveryConfig is LAN discovery (mDNS / DNS-SD, package discovery).
type DiscoveryConfig struct {
	// Enabled turns it on: Run announces this device and browses for
	// others, and dials peers of the sync table at the addresses they
	// announce, before their configured ones. Off by default, because it
	// sends multicast on every LAN interface.
	Enabled bool
	// BrowseOnly, with Enabled, browses without announcing.
	BrowseOnly bool
	// HostName, with Enabled, also answers for NAME.local with this
	// device's addresses, so that a phone's browser can open a web view
	// served on the LAN by name. "" = no extra name.
	HostName string
}

// NATConfig is how an Engine reaches peers behind NATs, and whether it
// helps others to.
type NATConfig struct {
	// Rendezvous, if set, is the hosted server (examples/server) this device
	// keeps a connection to, so that peers with no known address, behind
	// NATs, are reached with ICE: offers and answers are relayed by the
	// server, the QUIC connection then runs directly between the devices
	// (and its TLS handshake is end to end). The server is pinned by its
	// DeviceID and may read no folder that is not shared with it.
	Rendezvous *RendezvousConfig
	// ServeRendezvous makes this engine a rendezvous for the devices in its
	// sync table (the hosted server's role).
	ServeRendezvous bool
	// STUN are "host:port" STUN servers ICE asks for our public address.
	// nil means the rendezvous host on port 3478 (the server answers STUN
	// there); an empty, non-nil slice means none.
	STUN []string
	// TURN are relays ICE may use when no direct path exists (both devices
	// behind symmetric NATs). nil means none.
	TURN []transport.TURNServer
}

// RendezvousConfig names a rendezvous server.
type RendezvousConfig struct {
	// Device is the server's DeviceID (`server id`), which pins it: a
	// server that cannot prove this key is refused. Zero leaves the server
	// unpinned: whichever device answers at Addr is used (its DeviceID is
	// logged and shown in status). That is safe for the folders (the
	// connections to peers are authenticated end to end, and the server
	// reads only folders shared with it) but lets whoever controls Addr see
	// which devices ask for whom, or refuse to relay: pin it when you can.
	Device crypto.DeviceID
	Addr   string // its "host:port" (UDP, and TCP on the same port)
}

// Engine keeps the folders of one device in step with its peers. Create it
// with New, let Run do the syncing, stop it with Close. The methods that
// change the configuration (SetName, AddFolder, RemoveFolder, PauseFolder,
// SetPeer, PausePeer, RemovePeer, and the answers to pending devices and
// folder offers) work whether or not Run is active, and persist at once.
type Engine struct {
	home   stateStore // config.json, table.json, pending.json; the home lock (persist.go)
	cfg    Config     // immutable copy, defaults applied
	log    *slog.Logger
	events *eventQueue

	mu      gosync.Mutex              // guards the fields below
	conf    *config                   // config.json as last read or written
	tab     *table                    // table.json, and whether it needs writing
	folders map[string]*folder        // by folder ID: store, stopped or paused, watcher, fetches
	peers   map[crypto.DeviceID]*peer // by device: connection, dialing and backoff state
	share   *sharing                  // pending devices and folder offers (see pending.go)
	kick    chan struct{}             // wakes the dial loop; never closed
	rvPeer  crypto.DeviceID           // the rendezvous's DeviceID: Config.NAT.Rendezvous.Device, or learned when unpinned
	run     *runState                 // what Run opened; nil while not running
	closed  bool

	// wg holds every goroutine a Run starts; Run waits for it before it
	// returns, and Close waits for Run.
	wg gosync.WaitGroup
}

// New loads the configuration and sync table from cfg.Home (creating the
// directory if needed). It opens no socket: Run does. cfg is not modified.
func New(cfg Config) (*Engine, error) {
	if cfg.Home == "" {
		return nil, errors.New("sync: Config.Home is required")
	}
	if cfg.Identity == nil {
		return nil, errors.New("sync: Config.Identity is required")
	}
	if cfg.Network.ListenAddr == "" {
		cfg.Network.ListenAddr = fmt.Sprintf(":%d", transport.DefaultPort)
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = 10 * time.Second
	}
	if cfg.DialInterval <= 0 {
		cfg.DialInterval = 3 * time.Second
	}
	if cfg.AnnounceInterval <= 0 {
		cfg.AnnounceInterval = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if r := cfg.NAT.Rendezvous; r != nil {
		if _, _, err := net.SplitHostPort(r.Addr); err != nil {
			return nil, fmt.Errorf("sync: Config.NAT.Rendezvous address %q: %w", r.Addr, err)
		}
		cp := *r
		cfg.NAT.Rendezvous = &cp
		if cfg.NAT.STUN == nil {
			host, _, _ := net.SplitHostPort(r.Addr)
			cfg.NAT.STUN = []string{net.JoinHostPort(host, "3478")}
		}
	}
	cfg.NAT.STUN = slices.Clone(cfg.NAT.STUN)
	cfg.NAT.TURN = slices.Clone(cfg.NAT.TURN)
	if cfg.MaxBundleSize <= 0 {
		cfg.MaxBundleSize = 64 << 30
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Fetch.setDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	home, err := openHome(cfg.Home, cfg.Shared)
	if err != nil {
		return nil, err
	}
	var st stateStore = home
	if h := cfg.test; h != nil && h.state != nil {
		st = h.state(home)
	}
	e, err := newEngine(cfg, log, st)
	if err != nil {
		_ = st.close()
	}
	return e, err
}

func newEngine(cfg Config, log *slog.Logger, home stateStore) (*Engine, error) {
	e := &Engine{
		home:    home,
		cfg:     cfg,
		log:     log,
		events:  &eventQueue{ch: make(chan Event, 256)},
		folders: map[string]*folder{},
		kick:    make(chan struct{}, 1),
		rvPeer:  rendezvousDevice(cfg.NAT.Rendezvous),
		peers:   map[crypto.DeviceID]*peer{},
	}
	conf, err := e.readConfig()
	if err != nil {
		return nil, err
	}
	e.conf = conf
	e.noteSavedSettings()
	tab := &table{Version: 1}
	if err := home.load(docTable, tab); err != nil {
		return nil, err
	}
	if tab.Known == nil {
		tab.Known = map[crypto.DeviceID]map[string]gitstore.Hash{}
	}
	e.tab = tab
	if e.share, err = loadSharing(home); err != nil {
		return nil, err
	}
	return e, nil
}

// readConfig reads config.json.
func (e *Engine) readConfig() (*config, error) {
	c := &config{Version: 1}
	if err := e.home.load(docConfig, c); err != nil {
		return nil, err
	}
	if err := c.validate(e.cfg.Home); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, filepath.Join(e.cfg.Home, string(docConfig)))
	}
	return c, nil
}

// Events returns the channel of events; Close closes it. It is buffered
// (256); when the reader falls that far behind, new events are dropped (and
// counted in a warning) rather than stalling syncing.
func (e *Engine) Events() <-chan Event { return e.events.ch }

func (e *Engine) emit(ev Event) {
	ev.Time = e.cfg.Now()
	e.log.Debug("event", "event", ev.String())
	e.events.send(ev, e.log)
}

// DeviceID returns this device's ID.
func (e *Engine) DeviceID() crypto.DeviceID { return e.cfg.Identity.DeviceID() }

// Name returns the device name (from SetName, else the host name).
func (e *Engine) Name() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nameLocked()
}

func (e *Engine) nameLocked() string {
	if e.conf.Name != "" {
		return e.conf.Name
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return e.DeviceID().Short()
}

// update applies change to a fresh read of config.json and saves it, so
// that edits by another process (the CLI beside a running daemon) are kept.
// Then the running engine follows the new configuration (configChanged).
func (e *Engine) update(change func(c *config) error) error {
	old, err := e.updateLocked(change)
	if err != nil {
		return err
	}
	e.configChanged(old)
	return nil
}

// updateLocked does update's read-modify-write under e.mu and returns the
// configuration it replaced.
func (e *Engine) updateLocked(change func(c *config) error) (*config, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	c, err := e.readConfig()
	if err != nil {
		return nil, err
	}
	if err := change(c); err != nil {
		return nil, err
	}
	if err := c.validate(e.cfg.Home); err != nil {
		return nil, err
	}
	if err := e.home.save(docConfig, c); err != nil {
		return nil, err
	}
	old := e.conf
	e.conf = c
	return old, nil
}

// SetName sets the device name shown to peers and used as commit author.
func (e *Engine) SetName(name string) error {
	return e.update(func(c *config) error { c.Name = name; return nil })
}

// AddFolder shares a folder under an ID. The path must be an existing
// directory; its history is created in <path>/.peersync if missing. Adding
// the same ID and path again only sets its label to f's; the same ID with
// another path is an error.
func (e *Engine) AddFolder(ctx context.Context, f FolderConfig) error {
	if err := ValidFolderID(f.ID); err != nil {
		return err
	}
	abs, err := filepath.Abs(f.Path)
	if err != nil {
		return fmt.Errorf("sync: folder path: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("sync: folder %q: %w", f.ID, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("sync: folder %q: %q is not a directory", f.ID, abs)
	}
	f.Path = abs
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sync: add folder: %w", err)
	}
	// Check the new configuration before creating anything on disk.
	e.mu.Lock()
	trial := e.conf.clone()
	e.mu.Unlock()
	if old, ok := trial.folder(f.ID); ok {
		if old.Path != f.Path {
			return fmt.Errorf("sync: folder ID %q is already shared from %q", f.ID, old.Path)
		}
		if old.Label == f.Label {
			return nil
		}
		return e.update(func(c *config) error { return c.relabel(f) })
	}
	trial.Folders = append(trial.Folders, f)
	if err := trial.validate(e.cfg.Home); err != nil {
		return err
	}
	st, err := gitstore.Open(e.storeConfig(abs, true))
	if err != nil {
		return fmt.Errorf("sync: folder %q: %w", f.ID, err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("sync: folder %q: %w", f.ID, err)
	}
	return e.update(func(c *config) error {
		if _, ok := c.folder(f.ID); ok {
			return c.relabel(f)
		}
		c.Folders = append(c.Folders, f)
		return nil
	})
}

// AddPeer adds a device to the sync table, or updates it if present (its
// whole entry is replaced by p): the same as SetPeer.
func (e *Engine) AddPeer(p PeerConfig) error { return e.SetPeer(p) }

// RemovePeer removes a device from the sync table; its connection, if any,
// is closed.
func (e *Engine) RemovePeer(d crypto.DeviceID) error {
	return e.update(func(c *config) error {
		i := slices.IndexFunc(c.Peers, func(p PeerConfig) bool { return p.Device == d })
		if i < 0 {
			return fmt.Errorf("%w %s", ErrUnknownPeer, d)
		}
		c.Peers = slices.Delete(c.Peers, i, i+1)
		return nil
	})
}

func (e *Engine) storeConfig(dir string, create bool) gitstore.Config {
	e.mu.Lock()
	name := e.nameLocked()
	e.mu.Unlock()
	return gitstore.Config{
		Dir:         dir,
		Create:      create,
		AuthorName:  name,
		AuthorEmail: e.DeviceID().String() + "@peersync",
		Logger:      e.log.With("folder", dir),
		Now:         e.cfg.Now,

		ScanProgress: e.scanProgress(dir),
	}
}

// Scan scans one folder (or all that are not paused when id is "") now and
// returns the commits made per folder. Peers are told about the new heads if Run is active.
func (e *Engine) Scan(ctx context.Context, id string) (map[string][]gitstore.Change, error) {
	if err := e.owner(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	var ids []string
	for _, f := range e.conf.Folders {
		if f.ID == id || id == "" && !f.Paused {
			ids = append(ids, f.ID)
		}
	}
	e.mu.Unlock()
	if id != "" && len(ids) == 0 {
		return nil, fmt.Errorf("%w %q", ErrUnknownFolder, id)
	}
	out := map[string][]gitstore.Change{}
	var errs []error
	for _, fid := range ids {
		changes, err := e.scanFolder(ctx, fid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[fid] = changes
	}
	return out, errors.Join(errs...)
}

func (e *Engine) scanFolder(ctx context.Context, id string) ([]gitstore.Change, error) {
	st, err := e.store(id)
	if err != nil {
		e.folderTrouble(id, err)
		return nil, err
	}
	changes, err := st.Scan(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.storeFailed(id, st, err)
		}
		return changes, fmt.Errorf("sync: scan folder %q: %w", id, err)
	}
	e.folderOK(id)
	e.localChanges(id, st, changes)
	return changes, nil
}

// localChanges reports commits made from the folder and tells the peers.
func (e *Engine) localChanges(id string, st *gitstore.Store, changes []gitstore.Change) {
	if len(changes) == 0 {
		return
	}
	head, _ := st.Head()
	e.emit(Event{Kind: EventLocalChanges, Folder: id, Changes: changes, Head: head})
	e.announce(id)
}

// storeFailed handles an error from a folder's store: a vanished folder
// marker closes the store (it is reopened once the marker is back), and
// guards that pause the folder are reported once.
func (e *Engine) storeFailed(id string, st *gitstore.Store, err error) {
	switch {
	case errors.Is(err, gitstore.ErrNotInitialized):
		e.closeStore(id, st)
		e.folderTrouble(id, err)
	case errors.Is(err, gitstore.ErrMassDelete):
		e.folderTrouble(id, err)
	default:
		e.emit(Event{Kind: EventError, Folder: id, Err: err})
	}
}

// Addr returns the address Run listens on, or nil when not running.
func (e *Engine) Addr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	tr := e.run.transport()
	if tr == nil {
		return nil
	}
	return tr.LocalAddr()
}

// Close stops Run (if active), waits for it, and closes every folder. It is
// idempotent; later calls return ErrClosed.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.closed = true
	var cancel context.CancelFunc
	var done chan struct{}
	if r := e.run; r != nil {
		cancel, done = r.cancel, r.done
	}
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	e.flushTable()
	e.flushPending()
	e.mu.Lock()
	var stores []*gitstore.Store
	for _, f := range e.folders {
		if f.store != nil {
			stores = append(stores, f.store)
			f.store = nil
		}
	}
	e.mu.Unlock()
	e.events.close()
	var errs []error
	for _, st := range stores {
		errs = append(errs, st.Close())
	}
	errs = append(errs, e.home.close())
	return errors.Join(errs...)
}

// setKnown records that peer has rev of folder. The table is written by
// flushTable (every tick, and on Close), never under the lock on the hot
// path of a peer's announcements.
func (e *Engine) setKnown(peer crypto.DeviceID, folder string, rev gitstore.Hash) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.tab.Known[peer]
	if m == nil {
		m = map[string]gitstore.Hash{}
		e.tab.Known[peer] = m
	}
	if m[folder] == rev {
		return
	}
	m[folder] = rev
	e.tab.dirty = true
}

// flushTable writes the sync table if it changed. The snapshot is taken
// and written under the table's flush lock, so an older snapshot never
// lands after a newer one; a failed write leaves the table dirty, for the
// next flush.
func (e *Engine) flushTable() {
	e.tab.flush.Lock()
	defer e.tab.flush.Unlock()
	e.mu.Lock()
	if !e.tab.dirty {
		e.mu.Unlock()
		return
	}
	snap := &table{Version: e.tab.Version, Known: map[crypto.DeviceID]map[string]gitstore.Hash{}}
	for d, m := range e.tab.Known {
		snap.Known[d] = maps.Clone(m)
	}
	e.tab.dirty = false
	e.mu.Unlock()
	if err := e.home.save(docTable, snap); err != nil {
		e.log.Warn("saving sync table", "err", err)
		e.mu.Lock()
		e.tab.dirty = true
		e.mu.Unlock()
	}
}

// cleanTemp removes bundle spool files older than an hour (left by a crash;
// younger ones may belong to a running daemon).
func cleanTemp(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range entries {
		if fi, err := ent.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			_ = os.Remove(filepath.Join(dir, ent.Name()))
		}
	}
}
