// Command desktop is the peersync client for a person's own computers: it
// shares folders with the user's other devices and serves a local web UI.
//
// Run with no arguments it starts syncing with embedded defaults: state in
// $PEERSYNC_HOME, else <user config dir>/peersync; an identity created on
// first use; a first folder, ~/PeerSync (ID "default"); UDP port 44996;
// LAN discovery on; the web UI on http://127.0.0.1:44997 (`--open` opens
// it in the browser). `desktop help` lists the commands; the README has the
// reference.
//
// How it is put together, as a program embedding the SDK would be (see
// runDaemon and main below): main stops on SIGINT or SIGTERM
// (signal.NotifyContext); internal/cli parses run's command line and loads
// the identity (cli.ParseRun); runDaemon creates the engine (sync.New) and
// its HTTP API (httpapi.New), which reads the engine's events
// (Engine.Events) and hands each to a function that logs it; then the
// desktop's own part: the first-run folder and the web UI, which serves
// the pages in web/ and the API on one listener; then the daemon's chores
// (cli.Daemon: folder mirrors, runtime.json telling the commands where
// the API answers); then Engine.Run until the signal (run again in the
// same process when the Settings page's "Restart to apply" asks: see
// engineRunner), and Close. Every
// other command (init, folder add, status, …) is internal/cli's cli.Run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/internal/cli"
	"github.com/peersync/peersync/sync"
)

// program is the desktop client: the shared command line plus the local
// web UI as its `run` service.
var program = cli.Program{
	Name:     "desktop",
	Summary:  "desktop: keep folders in step across your own devices (peersync)",
	RunUsage: "[--ui ADDR|none] [--open] [--default-folder DIR|none] [--lan-view ADDR]",
	Services: func(fs *flag.FlagSet) func(context.Context, cli.Env) (func(), error) {
		desk.declare(fs)
		return desk.startUI
	},
}

// desk holds the desktop's own `run` flags, parsed by cli.ParseRun.
var desk desktopFlags

type desktopFlags struct {
	ui, first, lanView string
	open               bool
	runner             *engineRunner // restarts the engine (the Settings page); set by runDaemon
}

func (f *desktopFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&f.ui, "ui", "127.0.0.1:44997", "web UI address, or none")
	fs.BoolVar(&f.open, "open", false, "open the web UI in the browser")
	fs.StringVar(&f.first, "default-folder", defaultParent(), "the folder a new installation shares (ID default), or none")
	fs.StringVar(&f.lanView, "lan-view", "", "HOST:PORT on the LAN for the read-only phone view (accounts: `desktop user add NAME`); off when empty")
}

// startUI starts the desktop's part beside the engine: the phone LAN view
// (--lan-view, or as the Settings page saved it), the first-run folder and
// the web UI. It returns the stop function.
func (f *desktopFlags) startUI(ctx context.Context, env cli.Env) (func(), error) {
	view, err := startPhoneView(ctx, env, f.lanView)
	if err != nil {
		return nil, err
	}
	if f.ui == "none" {
		return view.Close, nil
	}
	stopUI, err := startApp(ctx, env, f, desktopRoutes(env.APIKey, view, f.runner))
	if err != nil {
		view.Close()
		return nil, err
	}
	return func() { stopUI(); view.Close() }, nil
}

// startApp is the desktop's part of `run`: the first-run folder, then the
// web UI, with the desktop's own routes (desk).
func startApp(ctx context.Context, env cli.Env, f *desktopFlags, desk http.Handler) (func(), error) {
	uiAddr, firstFolder, open := f.ui, f.first, f.open
	if firstFolder != "none" {
		created, err := firstRun(ctx, env.Engine, env.Home, firstFolder)
		if err != nil {
			return nil, err
		}
		if created {
			fmt.Fprintf(env.Stdout, "sharing %s (folder ID %s)\n", firstFolder, defaultFolderID)
		}
	}
	parent := defaultParent()
	if firstFolder != "none" && firstFolder != "" {
		parent = firstFolder
	}
	// The pages are clients of the engine's HTTP API (env.API, which `run`
	// made and which reads the engine's events), served on the same
	// listener; the page gets its key.
	stop, addr, err := serveUI(ctx, env.Engine, uiOptions{
		Addr:          uiAddr,
		LANName:       env.LANName,
		API:           env.API,
		Key:           env.APIKey,
		DefaultParent: parent,
		Desktop:       desk,
		Log:           env.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("web UI on %s: %w (use --ui ADDR or --ui none)", uiAddr, err)
	}
	if bound, err := net.ResolveTCPAddr("tcp", addr); err == nil && env.PublishAPI != nil {
		env.PublishAPI(bound) // runtime.json: the CLI finds the API here
	}
	url := "http://" + addr + "/"
	fmt.Fprintf(env.Stdout, "web UI %s\n", strings.TrimSuffix(url, "/"))
	if open {
		if err := openBrowser(url); err != nil {
			env.Log.Warn("cannot open the browser; open the web UI address yourself", "err", err)
		}
	}
	return stop, nil
}

// openBrowser asks the desktop to open url.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it; the browser lives on
	return nil
}

// withRun makes flags without a command mean `run`: `desktop --open` is
// `desktop run --open` (global --home stays in front).
func withRun(args []string) []string {
	i := 0
	for i < len(args) {
		if args[i] == "--home" || args[i] == "-home" {
			i += 2
		} else if strings.HasPrefix(args[i], "--home=") || strings.HasPrefix(args[i], "-home=") {
			i++
		} else {
			break
		}
	}
	if i >= len(args) || !strings.HasPrefix(args[i], "-") {
		return args
	}
	switch args[i] {
	case "-h", "-help", "--help":
		return args
	}
	return append(append(append([]string{}, args[:i]...), "run"), args[i:]...)
}

// runDaemon is `desktop run` (and `desktop` alone), wired here as a program
// embedding the SDK would: the engine (sync.New), its HTTP API reading
// and logging the engine's events (Engine.Events), the web UI, the
// daemon's chores, and Run until ctx ends (SIGINT, SIGTERM). A command
// line for another command is cli.ErrNotRun.
func runDaemon(ctx context.Context, args []string) error {
	s, err := cli.ParseRun(program, args, os.Stdout, os.Stderr) // flags, identity, logger, API key
	if err != nil {
		return err
	}
	e, err := sync.New(s.Config)
	for s.Retry(ctx, &err) { // a command held the home for a moment
		e, err = sync.New(s.Config)
	}
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(s.Stdout, "device %s\n", e.DeviceID())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The API is the reader of the engine's events: it keeps them for
	// /rest/events, and hands each to us to log and to the daemon's
	// observers (mirrors).
	d := cli.NewDaemon(s, e)
	api := httpapi.New(e, httpapi.Options{Key: s.APIKey, LANName: s.LANName, Logger: s.Log, ConsumeEvents: true,
		OnEvent: func(ev sync.Event) { s.Log.Info("event", "event", ev.String()); d.Emit(ev) }})
	defer api.Close()

	desk.runner = newEngineRunner(e)                // Run, and Run again on the Settings page's "Restart to apply"
	stopUI, err := desk.startUI(runCtx, d.Env(api)) // the web UI, serving the pages and the API
	if err != nil {
		return err
	}
	// The API's event streams end first, so the UI's server does not
	// wait for them when it shuts down.
	defer func() { _ = api.Close(); stopUI() }()

	if err := d.Start(runCtx, api); err != nil { // mirrors, the API on loopback with --ui none, runtime.json
		return err
	}
	defer d.Stop()
	return s.Stopped(ctx, desk.runner.run(runCtx))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	args := withRun(os.Args[1:])
	err := runDaemon(ctx, args)
	if errors.Is(err, cli.ErrNotRun) {
		err = cli.Run(ctx, program, args, os.Stdout, os.Stderr) // every other command
	}
	stop()
	flushProfile()
	cli.Exit(program, err)
}
