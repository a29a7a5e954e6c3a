// Package cli implements the command line shared by the example programs
// (examples/desktop, examples/server): identity, folders, peers, scanning,
// history, bundles, status and the `run` daemon. Each program describes
// itself with a Program (its name, its own `run` services such as a web UI
// or a STUN/TURN server) and calls Main, or wires `run` itself from the
// pieces of daemon_parts.go (ParseRun, Daemon) as examples/desktop and
// examples/server do.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/peersync/peersync/crypto"
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
	Exit(p, err)
}

// UsageError marks mistakes in the command line (exit status 2).
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg + " (see `help`)" }

func usageText(p Program) string {
	return fmt.Sprintf(`%s

usage: %[2]s [--home DIR] [COMMAND] [ARGS]

Commands:
  init [--name NAME]                 create identity, API key and state; print the DeviceID
  id                                 line 1: DeviceID; line 2: ssh-ed25519 public key line
  folder add --id ID [--label LABEL] PATH
                                     share PATH under folder ID
  folder remove ID                   stop sharing ID (its files and history stay)
  folder pause|resume ID             stop or restart syncing ID with every peer
  folder revert ID                   receive-only ID: back to the last state received
  peer add --name NAME [--addr HOST:PORT]... [--folders ID,ID] DEVICEID|PUBKEYLINE
                                     add a peer to the sync table (or replace its entry)
  peer set DEVICEID [--name N] [--addr HOST:PORT]... [--folders ID,ID]
      [--direction FOLDER=both|send|receive]...
                                     change what the flags give (a new peer is added)
  peer remove DEVICEID|PUBKEYLINE    remove a peer
  peer pause|resume DEVICEID         stop or restart syncing with a peer
  pending                            devices and folder offers waiting, one per line:
                                       device DEVICEID NAME ADDR | folder ID LABEL FROM-DEVICEID
  pending accept DEVICEID [--folders ID,ID]
                                     make a pending device a peer, sharing those folders
  pending accept-folder ID [PATH]    share an offered folder from PATH (default: its label
                                     under ~/PeerSync), and sync it
  pending ignore DEVICEID|ID         never list that device or folder offer again
  schedule                           the global sync window and every peer's row
  schedule set [--days mon,tue,...|all] --from HH:MM --to HH:MM | --always
  schedule set --peer DEVICEID (--from HH:MM --to HH:MM [--days ...] | --global)
                                     set the global window (--always: none) or a peer's
                                     (--global: follow the global one); local time
  sync-now [--peer DEVICEID] [--folder ID]
                                     one exchange now, outside the windows (daemon only)
  limit [--peer DEVICEID] [--up RATE] [--down RATE]
                                     show or set bandwidth limits; RATE like 500KiB, 10MiB,
                                     0 = none
  scan [--folder ID [--allow-mass-delete]]
                                     scan now, commit each change, print the commits
  peers [--discovered [--wait D]]    the sync table, or the devices the LAN announces (mDNS)
  run [--listen HOST:PORT] [--rendezvous [DEVICEID@]HOST:PORT] [--stun HOST:PORT]...
      [--turn turn://USER@HOST:PORT]... [--turn-pass-file FILE]
      [--no-discovery | --lan-name NAME] [--scan-interval D] [-v] %[3]s
                                     the daemon (the default command); Ctrl-C stops it.
                                     It announces itself and finds peers on the LAN with
                                     mDNS unless --no-discovery, and serves the HTTP API
                                     the commands above use while it runs
  status                             folders, heads, peers (directions, window, progress,
                                     path), pending answers
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
	a := &app{prog: p, home: dir, stdout: locked(stdout), stderr: locked(stderr)}
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
		return a.init(ctx, rest)
	case "id":
		return a.id(rest)
	case "folder":
		return a.folder(ctx, rest)
	case "peer":
		return a.peer(ctx, rest)
	case "peers":
		return a.peers(ctx, rest)
	case "scan":
		return a.scan(ctx, rest)
	case "run":
		return a.run(ctx, rest)
	case "status":
		return a.status(ctx, rest)
	case "pending":
		return a.pending(ctx, rest)
	case "schedule":
		return a.schedule(ctx, rest)
	case "sync-now":
		return a.syncNow(ctx, rest)
	case "limit":
		return a.limit(ctx, rest)
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

func (a *app) init(ctx context.Context, args []string) error {
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
		c, err := a.connect(ctx, "init", configAccess)
		if err != nil {
			return err
		}
		defer c.close()
		if err := c.SetName(ctx, *name); err != nil {
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

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

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
