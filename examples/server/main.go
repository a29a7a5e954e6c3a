// Command server is the hosted peersync peer: an always-on mirror of the
// folders shared with it (a full peer, so devices that are never online at
// the same time still sync through it), the rendezvous that relays ICE
// signaling between the devices in its sync table (so devices behind NATs
// connect directly to each other: `desktop run --rendezvous
// [DEVICEID@]HOST:PORT`; it listens on UDP and on TCP, same port), and a STUN server — a TURN relay too when given
// credentials. The read-only web view for phones comes with its issue.
//
// It has the same commands as examples/desktop (init, id, folder add,
// peer add, status, …); `run` adds:
//
//	--stun-listen HOST:PORT   STUN (and TURN) on UDP, default :3478
//	--turn-user U             enable TURN relaying for user U; the password
//	                          from --turn-pass-file FILE or $PEERSYNC_TURN_PASS
//	                          (or --turn-pass P, visible to every local user)
//	--turn-relay-ip IP        the public IP relays are announced at
package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/peersync/peersync/internal/cli"
)

var program = cli.Program{
	Name:            "server",
	ServeRendezvous: true,
	Summary:         "server: the always-on peersync peer, with STUN/TURN for devices behind NATs",
	RunUsage:        "[--stun-listen HOST:PORT|none] [--turn-user U] [--turn-relay-ip IP]",
	Services: func(fs *flag.FlagSet) func(context.Context, cli.Env) (func(), error) {
		stunListen := fs.String("stun-listen", ":3478", "UDP HOST:PORT for STUN (and TURN), or none")
		user := fs.String("turn-user", "", "TURN user name (enables TURN; the password from --turn-pass-file or $PEERSYNC_TURN_PASS)")
		pass := fs.String("turn-pass", "", "TURN password (visible to every local user: prefer --turn-pass-file or $PEERSYNC_TURN_PASS)")
		relayIP := fs.String("turn-relay-ip", "", "public IP address of this server for TURN relays")
		return func(ctx context.Context, env cli.Env) (func(), error) {
			if *stunListen == "none" {
				return func() {}, nil
			}
			if *pass == "" {
				*pass = env.TURNPass
			}
			r, err := startRelay(relayConfig{Listen: *stunListen, User: *user, Pass: *pass, RelayIP: *relayIP, Log: env.Log})
			if err != nil {
				return nil, err
			}
			mode := "STUN"
			if *user != "" {
				mode = "STUN and TURN"
			}
			fmt.Fprintf(env.Stdout, "%s on udp %s\n", mode, r.Addr())
			return func() {
				if err := r.Close(); err != nil {
					env.Log.Warn("closing STUN/TURN", "err", err)
				}
			}, nil
		}
	},
}

func main() { cli.Main(program) }
