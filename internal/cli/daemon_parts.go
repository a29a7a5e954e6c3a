package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/sync"
)

// The pieces of `run`, exported so that a program's main wires the daemon
// itself, as a program embedding the SDK would:
//
//	s, err := cli.ParseRun(program, args, os.Stdout, os.Stderr) // flags, identity, logger, API key
//	e, err := sync.New(s.Config)
//	for s.Retry(ctx, &err) { e, err = sync.New(s.Config) }      // a command held the home a moment
//	d := cli.NewDaemon(s, e)
//	api := httpapi.New(e, httpapi.Options{Key: s.APIKey, ConsumeEvents: true,
//		OnEvent: func(ev sync.Event) { s.Log.Info("event", "event", ev.String()); d.Emit(ev) }})
//	... the program's own services, given d.Env(api) ...
//	d.Start(ctx, api) // mirrors, the fallback API listener, runtime.json
//	err = e.Run(ctx)
//
// (*app).run is that same sequence for a Program run through Run.

// ErrNotRun is ParseRun's answer for a command line that is not `run`:
// hand it to Run.
var ErrNotRun = errors.New("not the run command")

// RunSetup is what `run`'s command line asks for, ready for sync.New.
type RunSetup struct {
	// Config is the engine's configuration, with Home, the Identity
	// (created on first use) and Logger set.
	Config sync.Config
	// Log is the daemon's logger (-v, --log-json).
	Log *slog.Logger
	// APIKey is the key of the HTTP API (<home>/apikey, created on first use).
	APIKey string
	// LANName is --lan-name without ".local"; "" if not given.
	LANName string
	// TURNPass is the TURN password (--turn-pass-file or the environment).
	TURNPass string
	// Stdout and Stderr are where the daemon prints.
	Stdout, Stderr io.Writer
	// Services is the program's own services (Program.Services) with the
	// flag values parsed; nil if the program has none.
	Services func(ctx context.Context, env Env) (stop func(), err error)

	deadline time.Time // Retry's: waiting for a command holding the home
}

// ParseRun parses a whole command line (after the program name: [--home
// DIR] [run] FLAGS) of `run`, loads or creates the identity and the API
// key, and returns the setup. A command line for another command is
// ErrNotRun; a wrong one a UsageError.
func ParseRun(p Program, args []string, stdout, stderr io.Writer) (*RunSetup, error) {
	global := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	global.SetOutput(io.Discard)
	home := global.String("home", "", "state directory")
	if err := global.Parse(args); err != nil {
		return nil, ErrNotRun // help, or a usage error Run reports
	}
	rest := global.Args()
	if len(rest) > 0 && rest[0] != "run" {
		return nil, ErrNotRun
	}
	if len(rest) > 0 {
		rest = rest[1:]
	}
	dir, err := homeDir(*home)
	if err != nil {
		return nil, err
	}
	a := &app{prog: p, home: dir, stdout: locked(stdout), stderr: locked(stderr)}
	return a.parseRun(rest)
}

// parseRun parses run's flags (args after `run`).
func (a *app) parseRun(args []string) (*RunSetup, error) {
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
	s := &RunSetup{Stdout: a.stdout, Stderr: a.stderr}
	if a.prog.Services != nil {
		s.Services = a.prog.Services(fs)
	}
	if pos, err := parse(fs, args); err != nil {
		return nil, err
	} else if len(pos) > 0 {
		return nil, UsageError{"run takes no positional arguments"}
	}
	if *lanName != "" && *noDiscovery {
		return nil, UsageError{"--lan-name needs discovery; drop --no-discovery"}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	s.Log = newLogger(a.stderr, level, *logJSON)
	s.LANName = strings.TrimSuffix(*lanName, ".local")
	s.Config = sync.Config{Home: a.home, ScanInterval: *scanEvery, Logger: s.Log,
		Network:   sync.NetworkConfig{ListenAddr: *listen},
		Discovery: sync.DiscoveryConfig{Enabled: !*noDiscovery, HostName: s.LANName},
		NAT:       sync.NATConfig{ServeRendezvous: a.prog.ServeRendezvous}}
	if *rendezvous != "" {
		rv, err := parseRendezvous(*rendezvous)
		if err != nil {
			return nil, err
		}
		s.Config.NAT.Rendezvous = rv
	}
	if len(stun) > 0 {
		s.Config.NAT.STUN = stun
	}
	var err error
	if s.Config.NAT.TURN, s.TURNPass, err = turnServers(turns, *turnPassFile); err != nil {
		return nil, err
	}
	id, created, err := crypto.LoadOrCreateIdentity(a.identityPath())
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(a.stderr, "created a new identity in %s\n", a.identityPath())
	}
	s.Config.Identity = id
	if s.APIKey, err = httpapi.LoadOrCreateKey(a.home); err != nil {
		return nil, err
	}
	return s, nil
}

// Retry reports whether sync.New should be tried again after *err: the
// home is held by a command (a configuration change holds it for
// milliseconds; no fresh runtime.json), for up to lockWait. A home held by
// a running daemon, or held longer (a long scan), becomes an error that
// says so.
func (s *RunSetup) Retry(ctx context.Context, err *error) bool {
	var inUse *sync.HomeInUseError
	if !errors.As(*err, &inUse) {
		return false
	}
	if s.deadline.IsZero() {
		s.deadline = time.Now().Add(lockWait)
	}
	if _, running := readRuntime(s.Config.Home); running || time.Now().After(s.deadline) {
		*err = fmt.Errorf("another daemon is already running for %s", s.Config.Home)
		return false
	}
	select {
	case <-ctx.Done():
		*err = ctx.Err()
		return false
	case <-time.After(100 * time.Millisecond):
		return true
	}
}

// Daemon does `run`'s chores beside the engine: it hands the engine's
// events to observers (the mirrors, Env.Observe), runs the folder mirrors
// (mirrors.json), serves the HTTP API on a loopback port when no service
// of the program mounted it, and keeps runtime.json current, which tells
// the commands where the API answers.
type Daemon struct {
	setup     *RunSetup
	engine    *sync.Engine
	observers eventObservers
	api       apiServer
	stops     []func() // Stop calls them, last first
}

// NewDaemon returns the chores of the daemon running e; nothing runs
// before Start.
func NewDaemon(s *RunSetup, e *sync.Engine) *Daemon {
	return &Daemon{setup: s, engine: e, api: apiServer{key: s.APIKey}}
}

// Emit hands ev to every observer (call it from httpapi.Options.OnEvent).
func (d *Daemon) Emit(ev sync.Event) { d.observers.emit(ev) }

// Env is what the program's services get: the engine, the setup's
// values, api (which they may mount on their own listener and publish),
// and the registration of event observers.
func (d *Daemon) Env(api *httpapi.Server) Env {
	s := d.setup
	d.api.api = api
	return Env{Engine: d.engine, Home: s.Config.Home, Log: s.Log, Stdout: s.Stdout, TURNPass: s.TURNPass,
		LANName: s.LANName, API: api, APIKey: s.APIKey, PublishAPI: d.api.publish, Observe: d.observers.add}
}

// Start starts the mirrors, serves api on a loopback port if no service
// published it (Env.PublishAPI), and starts keeping runtime.json. Call it
// after the services started and Stop when the engine's Run returns.
func (d *Daemon) Start(ctx context.Context, api *httpapi.Server) error {
	d.api.api = api
	ctx, cancel := context.WithCancel(ctx)
	d.stops = append(d.stops, cancel)
	observe, stopMirrors := (&app{home: d.setup.Config.Home}).runMirrors(ctx, d.engine, d.setup.Log)
	d.observers.add(observe)
	d.stops = append(d.stops, stopMirrors)
	if d.api.addr == "" {
		stop, err := d.api.serveFallback()
		if err != nil {
			d.Stop()
			return err
		}
		d.stops = append(d.stops, stop)
	}
	published := make(chan struct{})
	go func() { defer close(published); publishRuntime(ctx, d.setup.Config.Home, d.engine, d.api.addr) }()
	d.stops = append(d.stops, func() { cancel(); <-published })
	return nil
}

// Stop ends what Start started (runtime.json is removed first) and waits
// for it.
func (d *Daemon) Stop() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
	d.stops = nil
}

// Stopped is what `run` returns when the engine's Run ended with err: nil
// after SIGINT/SIGTERM (ctx done; it prints "stopped"), else err.
func (s *RunSetup) Stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		fmt.Fprintln(s.Stderr, "stopped")
		return nil
	}
	return err
}

// Exit ends the program after a command: status 0 for nil, 2 for a
// UsageError, 1 for other errors (printed after the program's name).
func Exit(p Program, err error) {
	if err == nil {
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
	var ue UsageError
	if errors.As(err, &ue) {
		os.Exit(2)
	}
	os.Exit(1)
}

// run is the daemon (`run`), the same sequence a program's main wires
// with the pieces above.
func (a *app) run(ctx context.Context, args []string) error {
	s, err := a.parseRun(args)
	if err != nil {
		return err
	}
	e, err := sync.New(s.Config)
	for s.Retry(ctx, &err) {
		e, err = sync.New(s.Config)
	}
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(s.Stdout, "device %s\n", e.DeviceID())
	runCtx, cancel := context.WithCancel(ctx) // ends the services' work when Run fails
	defer cancel()
	d := NewDaemon(s, e)
	api := httpapi.New(e, httpapi.Options{Key: s.APIKey, LANName: s.LANName, Logger: s.Log, ConsumeEvents: true,
		OnEvent: func(ev sync.Event) { s.Log.Info("event", "event", ev.String()); d.Emit(ev) }})
	defer api.Close()
	if s.Services != nil {
		stop, err := s.Services(runCtx, d.Env(api))
		if err != nil {
			return err
		}
		// The API's event streams end first, so the services' web server
		// does not wait for them when it shuts down.
		defer func() { _ = api.Close(); stop() }()
	}
	if err := d.Start(runCtx, api); err != nil {
		return err
	}
	defer d.Stop()
	return s.Stopped(ctx, e.Run(runCtx))
}
