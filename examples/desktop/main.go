// Command desktop is the peersync client for a person's own computers: it
// shares folders with the user's other devices and serves a local web UI.
//
// Run with no arguments it starts syncing with embedded defaults: state in
// $PEERSYNC_HOME, else <user config dir>/peersync; an identity created on
// first use; UDP port 44996; LAN discovery on; the web UI on
// http://127.0.0.1:44997. `desktop help` lists the commands; the README has
// the reference.
package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/peersync/peersync/internal/cli"
)

// program is the desktop client: the shared command line plus the local
// web UI as its `run` service.
var program = cli.Program{
	Name:     "desktop",
	Summary:  "desktop: keep folders in step across your own devices (peersync)",
	RunUsage: "[--ui ADDR|none]",
	Services: func(fs *flag.FlagSet) func(context.Context, cli.Env) (func(), error) {
		ui := fs.String("ui", "127.0.0.1:44997", "web UI address, or none")
		return func(ctx context.Context, env cli.Env) (func(), error) {
			if *ui == "none" {
				return func() {}, nil
			}
			stop, addr, err := serveUI(ctx, *ui, env.LANName, env.Engine, env.Log)
			if err != nil {
				return nil, fmt.Errorf("web UI on %s: %w (use --ui ADDR or --ui none)", *ui, err)
			}
			fmt.Fprintf(env.Stdout, "web UI http://%s\n", addr)
			return stop, nil
		}
	},
}

func main() { cli.Main(program) }
