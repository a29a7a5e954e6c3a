// Command desktop is the peersync client for a person's own computers: it
// shares folders with the user's other devices and serves a local web UI.
//
// Run with no arguments it starts syncing with embedded defaults (state in
// $PEERSYNC_HOME, else the user config dir; identity created on first use;
// listening on UDP port 44996; web UI on http://127.0.0.1:44997).
// See the README for the command reference, or run `desktop help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

const usage = `usage: desktop [--home DIR] [COMMAND] [ARGS]

Commands:
  init [--name NAME]                 create identity and state; print the DeviceID
  id                                 line 1: DeviceID; line 2: ssh-ed25519 public key line
  folder add --id ID PATH            share PATH under folder ID
  peer add --name NAME [--addr HOST:PORT]... [--folders ID,ID] DEVICEID|PUBKEYLINE
                                     add (or update) a peer in the sync table
  peer remove DEVICEID|PUBKEYLINE    remove a peer
  scan [--folder ID]                 scan now, commit each change, print the commits
  run [--listen HOST:PORT] [--ui ADDR|none] [--scan-interval D] [-v]
                                     the daemon (the default command); Ctrl-C stops it
  status                             folders, heads, peers, last known revisions
  bundle export --folder ID [--since REV]... [--to DEVICEID|PUBKEYLINE]... FILE
                                     write a git bundle of our head (sneakernet); --to seals it
                                     so only those devices can open it (age; signed by us)
  bundle import --folder ID FILE     validate, apply, merge and check out a bundle

Global flags:
  --home DIR   state directory (default $PEERSYNC_HOME, else <user config dir>/peersync)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "desktop:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks mistakes in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + " (see `desktop help`)" }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	global := flag.NewFlagSet("desktop", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	home := global.String("home", "", "state directory")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return usageError{err.Error()}
	}
	dir, err := homeDir(*home)
	if err != nil {
		return err
	}
	a := &app{home: dir, stdout: stdout, stderr: stderr}
	rest := global.Args()
	if len(rest) == 0 {
		return a.run(ctx, nil)
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "init":
		return a.init(rest)
	case "id":
		return a.id(rest)
	case "folder":
		return a.folder(ctx, rest)
	case "peer":
		return a.peer(rest)
	case "scan":
		return a.scan(ctx, rest)
	case "run":
		return a.run(ctx, rest)
	case "status":
		return a.status(rest)
	case "bundle":
		return a.bundle(ctx, rest)
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
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
			return nil, usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
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
		return usageError{"init takes no arguments"}
	}
	e, created, err := a.engine(sync.Config{})
	if err != nil {
		return err
	}
	defer e.Close()
	if *name != "" {
		if err := e.SetName(*name); err != nil {
			return err
		}
	}
	if !created {
		fmt.Fprintf(a.stderr, "identity already exists in %s (kept)\n", a.identityPath())
	}
	fmt.Fprintln(a.stdout, e.DeviceID())
	return nil
}

func (a *app) id(args []string) error {
	if len(args) > 0 {
		return usageError{"id takes no arguments"}
	}
	id, err := crypto.LoadIdentity(a.identityPath())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no identity in %s yet: run `desktop init` first", a.home)
		}
		return err
	}
	fmt.Fprintln(a.stdout, id.DeviceID())
	fmt.Fprintln(a.stdout, id.AuthorizedKey())
	return nil
}

func (a *app) folder(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "add" {
		return usageError{"usage: folder add --id ID PATH"}
	}
	fs := flag.NewFlagSet("folder add", flag.ContinueOnError)
	id := fs.String("id", "", "folder ID shared between devices")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if *id == "" || len(pos) != 1 {
		return usageError{"usage: folder add --id ID PATH"}
	}
	e, _, err := a.engine(sync.Config{})
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.AddFolder(ctx, sync.FolderConfig{ID: *id, Path: pos[0]}); err != nil {
		return err
	}
	abs, _ := filepath.Abs(pos[0])
	fmt.Fprintf(a.stdout, "folder %s shared from %s\n", *id, abs)
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (a *app) peer(args []string) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "remove") {
		return usageError{"usage: peer add|remove ..."}
	}
	if args[0] == "remove" {
		if len(args) != 2 {
			return usageError{"usage: peer remove DEVICEID|PUBKEYLINE"}
		}
		d, err := crypto.ParsePeer(args[1])
		if err != nil {
			return err
		}
		e, _, err := a.engine(sync.Config{})
		if err != nil {
			return err
		}
		defer e.Close()
		return e.RemovePeer(d)
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
		return usageError{"usage: peer add --name NAME [--addr HOST:PORT]... [--folders ID,ID] DEVICEID|PUBKEYLINE"}
	}
	// An unquoted "ssh-ed25519 AAAA… comment" arrives as several words.
	d, err := crypto.ParsePeer(strings.Join(pos, " "))
	if err != nil {
		return fmt.Errorf("%w; give the peer's DeviceID (from `desktop id` on it) or its ssh-ed25519 line", err)
	}
	p := sync.PeerConfig{Device: d, Name: *name, Addrs: addrs}
	for _, f := range strings.Split(*folders, ",") {
		if f = strings.TrimSpace(f); f != "" {
			p.Folders = append(p.Folders, f)
		}
	}
	e, _, err := a.engine(sync.Config{})
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.AddPeer(p); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "peer %s added\n", d)
	return nil
}

func (a *app) scan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	folder := fs.String("folder", "", "only this folder ID")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError{"usage: scan [--folder ID]"}
	}
	e, _, err := a.engine(sync.Config{})
	if err != nil {
		return err
	}
	defer e.Close()
	res, err := e.Scan(ctx, *folder)
	for id, changes := range res {
		for _, c := range changes {
			fmt.Fprintf(a.stdout, "%s %s %s %s\n", id, c.Commit, c.Action, c.Path)
		}
	}
	return err
}

func (a *app) status(args []string) error {
	if len(args) > 0 {
		return usageError{"status takes no arguments"}
	}
	e, _, err := a.engine(sync.Config{})
	if err != nil {
		return err
	}
	defer e.Close()
	st := e.Status()
	if !mergeRuntime(a.home, &st) {
		fmt.Fprintln(a.stderr, "(the daemon is not running: `desktop run` starts it)")
	}
	writeStatus(a.stdout, st)
	return nil
}

func writeStatus(w io.Writer, st sync.Status) {
	fmt.Fprintf(w, "device  %s\nname    %s\n", st.Device, st.Name)
	if st.Addr != "" {
		fmt.Fprintf(w, "listen  %s\n", st.Addr)
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
			state = "connected " + p.Addr
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
	ui := fs.String("ui", "127.0.0.1:44997", "web UI address, or none")
	scanEvery := fs.Duration("scan-interval", 2*time.Second, "how often folders are rescanned")
	verbose := fs.Bool("v", false, "debug logging")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError{"run takes no positional arguments"}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	e, created, err := a.engine(sync.Config{ListenAddr: *listen, ScanInterval: *scanEvery, Logger: log})
	if err != nil {
		return err
	}
	defer e.Close()
	if created {
		fmt.Fprintf(a.stderr, "created a new identity in %s\n", a.identityPath())
	}
	fmt.Fprintf(a.stdout, "device %s\n", e.DeviceID())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	uiAddr := ""
	if *ui != "none" {
		stopUI, addr, err := serveUI(runCtx, *ui, e, log)
		if err != nil {
			return fmt.Errorf("web UI on %s: %w (use --ui ADDR or --ui none)", *ui, err)
		}
		defer stopUI()
		uiAddr = addr
		fmt.Fprintf(a.stdout, "web UI http://%s\n", addr)
	}
	published := make(chan struct{})
	go func() { defer close(published); publishRuntime(runCtx, a.home, uiAddr, e) }()
	defer func() { cancel(); <-published }()
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case ev := <-e.Events():
				log.Info("event", "event", ev.String())
			}
		}
	}()
	err = e.Run(runCtx)
	if ctx.Err() != nil { // SIGINT/SIGTERM: a clean stop
		fmt.Fprintln(a.stderr, "stopped")
		return nil
	}
	return err
}
