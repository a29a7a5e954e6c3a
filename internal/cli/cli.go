// Package cli implements the command line shared by the example programs
// (examples/desktop, examples/server): identity, folders, peers, scanning,
// history, bundles, status and the `run` daemon. Each program describes
// itself with a Program (its name, its own `run` services such as a web UI
// or a STUN/TURN server) and calls Main.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/sync"
)

// Program describes one example program to the shared command line.
type Program struct {
	// Name is the command's name, used in messages ("desktop").
	Name string
	// Summary is one line printed above the usage.
	Summary string
	// RunUsage is the usage of the program's own `run` flags, e.g.
	// "[--ui ADDR|none]".
	RunUsage string
	// ServeRendezvous makes `run` relay ICE signaling for the devices in
	// the sync table (the hosted server's role).
	ServeRendezvous bool
	// Services, if set, declares the program's own flags on `run`'s flag
	// set and returns the function that starts its services beside the
	// engine once it exists; the stop function it returns is called on
	// shutdown, before the engine closes.
	Services func(fs *flag.FlagSet) func(ctx context.Context, env Env) (stop func(), err error)
}

// Env is what a program's services get to work with.
type Env struct {
	Engine *sync.Engine
	Home   string
	Log    *slog.Logger
	Stdout io.Writer
	// TURNPass is the TURN password from --turn-pass-file or the
	// PEERSYNC_TURN_PASS environment variable; "" if neither is given.
	TURNPass string
	// LANName is run's --lan-name without ".local"; "" if not given.
	LANName string
	// Observe registers f to see every engine event (f must not block).
	// Call it while the services start.
	Observe func(f func(sync.Event))
	// API is the daemon's HTTP API (package httpapi) over Engine, which
	// reads the Engine's events (read them from API, never from
	// Engine.Events). A program with a web listener mounts it there
	// (mux.Handle("/rest/", env.API)) and calls PublishAPI with the
	// listener's address; otherwise `run` serves it on a loopback port of
	// its own. Either way runtime.json tells the CLI where it is. `run`
	// closes it (ending its event streams) before calling the services'
	// stop function.
	API *httpapi.Server
	// APIKey is the key the API requires (<home>/apikey), e.g. to hand
	// to the program's own web pages.
	APIKey string
	// PublishAPI records that the API answers on the listener bound to
	// addr (call it before the services function returns).
	PublishAPI func(addr net.Addr)
}

// Main runs the program with os.Args and exits: status 2 for a wrong command
// line, 1 for other errors. SIGINT and SIGTERM stop `run` cleanly.
func Main(p Program) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, p, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
		var ue UsageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// UsageError marks mistakes in the command line (exit status 2).
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg + " (see `help`)" }

func usageText(p Program) string {
	return fmt.Sprintf(`%s

usage: %[2]s [--home DIR] [COMMAND] [ARGS]

Commands:
  init [--name NAME]                 create identity and state; print the DeviceID
  id                                 line 1: DeviceID; line 2: ssh-ed25519 public key line
  folder add --id ID PATH            share PATH under folder ID
  peer add --name NAME [--addr HOST:PORT]... [--folders ID,ID] DEVICEID|PUBKEYLINE
                                     add (or update) a peer in the sync table
  peer remove DEVICEID|PUBKEYLINE    remove a peer
  scan [--folder ID [--allow-mass-delete]]
                                     scan now, commit each change, print the commits
  peers [--discovered [--wait D]]    the sync table, or the devices the LAN announces (mDNS)
  run [--listen HOST:PORT] [--rendezvous [DEVICEID@]HOST:PORT] [--stun HOST:PORT]...
      [--turn turn://USER@HOST:PORT]... [--turn-pass-file FILE]
      [--no-discovery | --lan-name NAME] [--scan-interval D] [-v] %[3]s
                                     the daemon (the default command); Ctrl-C stops it.
                                     It announces itself and finds peers on the LAN with
                                     mDNS unless --no-discovery
  status                             folders, heads, peers, last known revisions
  history --folder ID [-n N] [PATH]  commits touching PATH (or all), newest first:
                                     REV DATE DEVICE ACTION PATH
  restore --folder ID PATH REV       PATH back to its content at REV, as a new commit
  bundle export --folder ID [--since REV]... [--to DEVICEID|PUBKEYLINE]... FILE
                                     write a git bundle of our head (sneakernet); --to seals
                                     it so only those devices can open it (age; signed by us)
  bundle import --folder ID FILE     validate, apply, merge and check out a bundle
  folder mirror add --folder ID [--password-file F] [--key-file F] URL
                                     keep a plain copy of the folder on an ftp://, ftps:// or
                                     sftp:// target (the daemon syncs it after each change)
  folder mirror list | remove MIRRORID
                                     the mirrors and their state; stop one
  user add NAME [--folders ID,ID|*]  a web view account (password twice on a tty, or one line on stdin)
  user remove NAME | users           remove one; list them

Global flags:
  --home DIR   state directory (default $PEERSYNC_HOME, else <user config dir>/peersync)
`, p.Summary, p.Name, p.RunUsage)
}

// Run runs one command line (without the program name).
func Run(ctx context.Context, p Program, args []string, stdout, stderr io.Writer) error {
	global := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	global.SetOutput(io.Discard)
	home := global.String("home", "", "state directory")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText(p))
			return nil
		}
		return UsageError{err.Error()}
	}
	dir, err := homeDir(*home)
	if err != nil {
		return err
	}
	a := &app{prog: p, home: dir, stdout: stdout, stderr: stderr}
	rest := global.Args()
	if len(rest) == 0 {
		return a.run(ctx, nil)
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText(p))
		return nil
	case "init":
		return a.init(rest)
	case "id":
		return a.id(rest)
	case "folder":
		return a.folder(ctx, rest)
	case "peer":
		return a.peer(rest)
	case "peers":
		return a.peers(ctx, rest)
	case "scan":
		return a.scan(ctx, rest)
	case "run":
		return a.run(ctx, rest)
	case "status":
		return a.status(rest)
	case "bundle":
		return a.bundle(ctx, rest)
	case "history":
		return a.history(ctx, rest)
	case "restore":
		return a.restore(ctx, rest)
	case "user", "users":
		return a.users(cmd, rest)
	}
	return UsageError{fmt.Sprintf("unknown command %q", cmd)}
}

func homeDir(flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	if env := os.Getenv("PEERSYNC_HOME"); env != "" {
		return filepath.Abs(env)
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no home directory: pass --home DIR or set PEERSYNC_HOME (%w)", err)
	}
	return filepath.Join(cfg, "peersync"), nil
}

type app struct {
	prog           Program
	home           string
	stdout, stderr io.Writer
}

func (a *app) identityPath() string { return filepath.Join(a.home, "identity") }

// engine opens the identity (creating it on first use) and the engine.
func (a *app) engine(cfg sync.Config) (*sync.Engine, bool, error) {
	id, created, err := crypto.LoadOrCreateIdentity(a.identityPath())
	if err != nil {
		return nil, false, err
	}
	cfg.Home, cfg.Identity = a.home, id
	e, err := sync.New(cfg)
	return e, created, err
}

// parse parses flags that may come before or after positional arguments
// and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, UsageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (a *app) init(args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	name := fs.String("name", "", "device name (default: host name)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return UsageError{"init takes no arguments"}
	}
	id, created, err := crypto.LoadOrCreateIdentity(a.identityPath())
	if err != nil {
		return err
	}
	if _, err := httpapi.LoadOrCreateKey(a.home); err != nil {
		return err
	}
	if *name != "" {
		t, err := a.configTarget(context.Background())
		if err != nil {
			return err
		}
		defer t.close()
		if t.api != nil {
			err = t.api.SetName(context.Background(), *name)
		} else {
			err = t.e.SetName(*name)
		}
		if err != nil {
			return err
		}
	}
	if !created {
		fmt.Fprintf(a.stderr, "identity already exists in %s (kept)\n", a.identityPath())
	}
	fmt.Fprintln(a.stdout, id.DeviceID())
	return nil
}

func (a *app) id(args []string) error {
	if len(args) > 0 {
		return UsageError{"id takes no arguments"}
	}
	id, err := crypto.LoadIdentity(a.identityPath())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no identity in %s yet: run `%s init` first", a.home, a.prog.Name)
		}
		return err
	}
	fmt.Fprintln(a.stdout, id.DeviceID())
	fmt.Fprintln(a.stdout, id.AuthorizedKey())
	return nil
}

func (a *app) folder(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "mirror" {
		return a.mirror(args[1:])
	}
	if len(args) == 0 || args[0] != "add" {
		return UsageError{"usage: folder add --id ID PATH"}
	}
	fs := flag.NewFlagSet("folder add", flag.ContinueOnError)
	id := fs.String("id", "", "folder ID shared between devices")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if *id == "" || len(pos) != 1 {
		return UsageError{"usage: folder add --id ID PATH"}
	}
	abs, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	t, err := a.configTarget(ctx)
	if err != nil {
		return err
	}
	defer t.close()
	if t.api != nil {
		_, err = t.api.AddFolder(ctx, httpapi.NewFolder{ID: *id, Path: abs})
	} else {
		err = t.e.AddFolder(ctx, sync.FolderConfig{ID: *id, Path: abs})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "folder %s shared from %s\n", *id, abs)
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (a *app) peer(args []string) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "remove") {
		return UsageError{"usage: peer add|remove ..."}
	}
	if args[0] == "remove" {
		if len(args) != 2 {
			return UsageError{"usage: peer remove DEVICEID|PUBKEYLINE"}
		}
		d, err := crypto.ParsePeer(args[1])
		if err != nil {
			return err
		}
		t, err := a.configTarget(context.Background())
		if err != nil {
			return err
		}
		defer t.close()
		if t.api != nil {
			return t.api.RemovePeer(context.Background(), d)
		}
		return t.e.RemovePeer(d)
	}
	fs := flag.NewFlagSet("peer add", flag.ContinueOnError)
	name := fs.String("name", "", "a label for the peer")
	var addrs multiFlag
	fs.Var(&addrs, "addr", "HOST:PORT to dial (repeatable)")
	folders := fs.String("folders", "", "comma-separated folder IDs to share with the peer")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return UsageError{"usage: peer add --name NAME [--addr HOST:PORT]... [--folders ID,ID] DEVICEID|PUBKEYLINE"}
	}
	// An unquoted "ssh-ed25519 AAAA… comment" arrives as several words.
	d, err := crypto.ParsePeer(strings.Join(pos, " "))
	if err != nil {
		return fmt.Errorf("%w; give the peer's DeviceID (line 1 of `%s id` on that device) or its ssh-ed25519 line (line 2)", err, a.prog.Name)
	}
	p := sync.PeerConfig{Device: d, Name: *name, Addrs: addrs}
	for _, f := range strings.Split(*folders, ",") {
		if f = strings.TrimSpace(f); f != "" {
			p.Folders = append(p.Folders, f)
		}
	}
	t, err := a.configTarget(context.Background())
	if err != nil {
		return err
	}
	defer t.close()
	if t.api != nil {
		_, err = t.api.SetPeer(context.Background(), p)
	} else {
		err = t.e.AddPeer(p)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "peer %s added\n", d)
	return nil
}

func (a *app) scan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	folder := fs.String("folder", "", "only this folder ID")
	confirm := fs.Bool("allow-mass-delete", false, "confirm a deletion the mass-delete guard refused (needs --folder)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 || (*confirm && *folder == "") {
		return UsageError{"usage: scan [--folder ID [--allow-mass-delete]]"}
	}
	t, err := a.ownTarget("scan")
	if err != nil {
		return err
	}
	defer t.close()
	if t.api != nil {
		return a.scanAPI(ctx, t.api, *folder, *confirm)
	}
	return a.scanLocked(ctx, t.e, *folder, *confirm)
}

// scanAPI is scan through the daemon's API.
func (a *app) scanAPI(ctx context.Context, c *httpapi.Client, folder string, confirm bool) error {
	ids := []string{folder}
	if folder == "" {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, f := range st.Folders {
			ids = append(ids, f.ID)
		}
	}
	var errs []error
	for _, id := range ids {
		changes, err := c.Scan(ctx, id, confirm)
		for _, ch := range changes {
			fmt.Fprintf(a.stdout, "%s %s %s %s\n", id, ch.Commit, ch.Action, ch.Path)
		}
		var se *httpapi.StatusError
		if errors.As(err, &se) && se.Code == http.StatusConflict {
			err = fmt.Errorf("%w\nif the deletion is intended: scan --folder %s --allow-mass-delete", err, id)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *app) scanLocked(ctx context.Context, e *sync.Engine, folder string, confirm bool) error {
	var res map[string][]gitstore.Change
	var err error
	if confirm {
		var changes []gitstore.Change
		changes, err = e.AllowMassDelete(ctx, folder)
		res = map[string][]gitstore.Change{folder: changes}
	} else {
		res, err = e.Scan(ctx, folder)
	}
	if errors.Is(err, gitstore.ErrMassDelete) {
		err = fmt.Errorf("%w\nif the deletion is intended: scan --folder FOLDER --allow-mass-delete", err)
	}
	for id, changes := range res {
		for _, c := range changes {
			fmt.Fprintf(a.stdout, "%s %s %s %s\n", id, c.Commit, c.Action, c.Path)
		}
	}
	return err
}

func (a *app) status(args []string) error {
	if len(args) > 0 {
		return UsageError{"status takes no arguments"}
	}
	t, err := a.readTarget()
	if err != nil {
		return err
	}
	defer t.close()
	var st sync.Status
	if t.api != nil {
		if st, err = t.api.Status(context.Background()); err != nil {
			return err
		}
	} else {
		st = t.e.Status()
		fmt.Fprintf(a.stderr, "(the daemon is not running: `%s run` starts it)\n", a.prog.Name)
	}
	writeStatus(a.stdout, st)
	return nil
}

func writeStatus(w io.Writer, st sync.Status) {
	fmt.Fprintf(w, "device  %s\nname    %s\n", st.Device, st.Name)
	if st.Addr != "" {
		fmt.Fprintf(w, "listen  %s\n", st.Addr)
	}
	if r := st.Rendezvous; r != nil {
		dev, state := "-", "not registered"
		if !r.Device.IsZero() {
			dev = r.Device.String()
		}
		if !r.Pinned {
			dev += " (unpinned)"
		}
		if r.Registered {
			state = "registered, seen as " + r.Observed
		}
		fmt.Fprintf(w, "rendezvous  %s  %s  %s\n", r.Addr, dev, state)
	}
	for _, f := range st.Folders {
		head := "-"
		if !f.Head.IsZero() {
			head = f.Head.String()
		}
		fmt.Fprintf(w, "folder  %s  %s  head %s", f.ID, f.Path, head)
		if f.Stopped != "" {
			fmt.Fprintf(w, "  STOPPED: %s", f.Stopped)
		}
		fmt.Fprintln(w)
	}
	for _, p := range st.Peers {
		state := "offline"
		if p.Connected {
			state = "connected " + p.Addr + " " + p.Path
		}
		name := p.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(w, "peer    %s  %s  %s  addrs=%s  folders=%s\n", name, p.Device, state,
			strings.Join(p.Addrs, ","), strings.Join(p.Folders, ","))
		for _, f := range p.Folders {
			known := "-"
			if h, ok := p.Known[f]; ok && !h.IsZero() {
				known = h.String()
			}
			fmt.Fprintf(w, "  known %s %s\n", f, known)
		}
	}
}

func (a *app) run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	listen := fs.String("listen", ":44996", "UDP HOST:PORT to listen on")
	scanEvery := fs.Duration("scan-interval", 10*time.Second, "how often folders are fully rescanned (the file watcher commits saves at once)")
	verbose := fs.Bool("v", false, "debug logging")
	logJSON := fs.Bool("log-json", false, "log as JSON lines (one object per record) instead of text")
	noDiscovery := fs.Bool("no-discovery", false, "neither announce nor browse the LAN (mDNS)")
	rendezvous := fs.String("rendezvous", "", "[DEVICEID@]HOST:PORT of the hosted server, to reach peers behind NATs with ICE (without DEVICEID the server is not pinned)")
	var stun multiFlag
	fs.Var(&stun, "stun", "HOST:PORT of a STUN server (repeatable; default: the rendezvous host, port 3478)")
	var turns multiFlag
	fs.Var(&turns, "turn", "turn://USER@HOST:PORT relay for peers behind symmetric NATs (repeatable); the password from --turn-pass-file or $"+turnPassEnv+" (turn://USER:PASS@… works too, but shows the password to every local user)")
	turnPassFile := fs.String("turn-pass-file", "", "file holding the TURN password (one line), instead of $"+turnPassEnv)
	lanName := fs.String("lan-name", "", "also answer mDNS for NAME.local, so phones on the LAN can open a web view served on a LAN address by name")
	var startServices func(context.Context, Env) (func(), error)
	if a.prog.Services != nil {
		startServices = a.prog.Services(fs)
	}
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return UsageError{"run takes no positional arguments"}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := newLogger(a.stderr, level, *logJSON)
	if *lanName != "" && *noDiscovery {
		return UsageError{"--lan-name needs discovery; drop --no-discovery"}
	}
	cfg := sync.Config{ListenAddr: *listen, ScanInterval: *scanEvery, Discovery: !*noDiscovery,
		DiscoveryHostName: strings.TrimSuffix(*lanName, ".local"), ServeRendezvous: a.prog.ServeRendezvous, Logger: log}
	if *rendezvous != "" {
		rv, err := parseRendezvous(*rendezvous)
		if err != nil {
			return err
		}
		cfg.Rendezvous = rv
	}
	if len(stun) > 0 {
		cfg.STUNServers = stun
	}
	turnList, turnPass, err := turnServers(turns, *turnPassFile)
	if err != nil {
		return err
	}
	cfg.TURNServers = turnList
	e, created, err := a.daemonEngine(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	if created {
		fmt.Fprintf(a.stderr, "created a new identity in %s\n", a.identityPath())
	}
	fmt.Fprintf(a.stdout, "device %s\n", e.DeviceID())
	key, err := httpapi.LoadOrCreateKey(a.home)
	if err != nil {
		return err
	}
	// The API reads the engine's events; it logs each and hands it to the
	// observers (the mirrors, the program's services: Env.Observe).
	var observers eventObservers
	api := &apiServer{key: key, api: httpapi.New(e, httpapi.Options{Key: key, LANName: cfg.DiscoveryHostName, Logger: log,
		ConsumeEvents: true, OnEvent: func(ev sync.Event) { log.Info("event", "event", ev.String()); observers.emit(ev) }})}
	defer api.api.Close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	mirrorEvents, stopMirrors := a.runMirrors(runCtx, e, log)
	defer stopMirrors()
	observers.add(mirrorEvents)
	if startServices != nil {
		stop, err := startServices(runCtx, Env{Engine: e, Home: a.home, Log: log, Stdout: a.stdout, TURNPass: turnPass,
			LANName: cfg.DiscoveryHostName, API: api.api, APIKey: key, PublishAPI: api.publish, Observe: observers.add})
		if err != nil {
			return err
		}
		// The API's event streams end first, so the services' web server
		// does not wait for them when it shuts down.
		defer func() { _ = api.api.Close(); stop() }()
	}
	if api.addr == "" {
		stop, err := api.serveFallback()
		if err != nil {
			return err
		}
		defer stop()
	}
	published := make(chan struct{})
	go func() { defer close(published); publishRuntime(runCtx, a.home, e, api.addr) }()
	defer func() { cancel(); <-published }()
	err = e.Run(runCtx)
	if ctx.Err() != nil { // SIGINT/SIGTERM: a clean stop
		fmt.Fprintln(a.stderr, "stopped")
		return nil
	}
	return err
}

// daemonEngine opens the engine owning the home for `run`. A home held by
// a command (a configuration change, for a moment: no fresh runtime.json)
// is waited for up to lockWait; one held by a running daemon, or held
// longer (a long scan), is an error.
func (a *app) daemonEngine(ctx context.Context, cfg sync.Config) (*sync.Engine, bool, error) {
	deadline := time.Now().Add(lockWait)
	for {
		e, created, err := a.engine(cfg)
		var inUse *sync.HomeInUseError
		if !errors.As(err, &inUse) {
			return e, created, err
		}
		if _, running := readRuntime(a.home); running || time.Now().After(deadline) {
			return nil, false, fmt.Errorf("another daemon is already running for %s", a.home)
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// parseRendezvous reads [DEVICEID@]HOST:PORT. Without a DeviceID the
// server is unpinned (see sync.RendezvousConfig).
func parseRendezvous(v string) (*sync.RendezvousConfig, error) {
	const want = "want [DEVICEID@]HOST:PORT (DEVICEID: line 1 of `server id` on the server)"
	var id crypto.DeviceID
	addr := v
	if idText, rest, ok := strings.Cut(v, "@"); ok {
		var err error
		if id, err = crypto.ParseDeviceID(idText); err != nil {
			return nil, fmt.Errorf("--rendezvous %q: %w", v, err)
		}
		addr = rest
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, UsageError{fmt.Sprintf("--rendezvous %q: %s: %v", v, want, err)}
	}
	return &sync.RendezvousConfig{Device: id, Addr: addr}, nil
}
