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
// How it is put together, as a program embedding the SDK would be:
// internal/cli parses the command line, loads the identity, creates the
// engine (sync.New), logs its events (Engine.Events) and runs it
// (Engine.Run) until SIGINT or SIGTERM; this file adds the desktop's own
// part beside the running engine: the first-run folder and the web UI,
// which serves the pages in web/ and the engine's HTTP API on one listener.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/peersync/peersync/internal/cli"
)

// program is the desktop client: the shared command line plus the local
// web UI as its `run` service.
var program = cli.Program{
	Name:     "desktop",
	Summary:  "desktop: keep folders in step across your own devices (peersync)",
	RunUsage: "[--ui ADDR|none] [--open] [--default-folder DIR|none] [--lan-view ADDR]",
	Services: func(fs *flag.FlagSet) func(context.Context, cli.Env) (func(), error) {
		ui := fs.String("ui", "127.0.0.1:44997", "web UI address, or none")
		open := fs.Bool("open", false, "open the web UI in the browser")
		first := fs.String("default-folder", defaultParent(), "the folder a new installation shares (ID default), or none")
		lanView := fs.String("lan-view", "", "HOST:PORT on the LAN for the read-only phone view (accounts: `desktop user add NAME`); off when empty")
		return func(ctx context.Context, env cli.Env) (func(), error) {
			stopView := func() {}
			if *lanView != "" {
				stop, addr, err := serveLANView(ctx, env, *lanView)
				if err != nil {
					return nil, fmt.Errorf("LAN view on %s: %w", *lanView, err)
				}
				fmt.Fprintf(env.Stdout, "LAN view http://%s\n", addr)
				stopView = stop
			}
			if *ui == "none" {
				return stopView, nil
			}
			stopUI, err := startApp(ctx, env, *ui, *first, *open)
			if err != nil {
				stopView()
				return nil, err
			}
			return func() { stopUI(); stopView() }, nil
		}
	},
}

// startApp is the desktop's part of `run`: the first-run folder, then the
// web UI.
func startApp(ctx context.Context, env cli.Env, uiAddr, firstFolder string, open bool) (func(), error) {
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

func main() {
	os.Args = append(os.Args[:1], withRun(os.Args[1:])...)
	cli.Main(program)
}
