// Command server is the hosted peersync peer: an always-on mirror of the
// folders shared with it (a full peer, so devices that are never online at
// the same time still sync through it), the rendezvous that relays ICE
// signaling between the devices in its sync table (so devices behind NATs
// connect directly to each other: `desktop run --rendezvous
// [DEVICEID@]HOST:PORT`; it listens on UDP and on TCP, same port), and a STUN server — a TURN relay too when given
// credentials — and, with --web, the read-only web view for phones (see
// internal/webview) over HTTPS.
//
// It has the same commands as examples/desktop (init, id, folder add,
// peer add, status, …); `run` adds:
//
//	--stun-listen HOST:PORT   STUN (and TURN) on UDP, default :3478
//	--turn-user U             enable TURN relaying for user U; the password
//	                          from --turn-pass-file FILE or $PEERSYNC_TURN_PASS
//	                          (or --turn-pass P, visible to every local user)
//	--turn-relay-ip IP        the public IP relays are announced at
//	--web HOST:PORT           the web view over HTTPS; with --web-cert FILE
//	                          and --web-key FILE, or a self-signed certificate
//	                          made at first run (its SHA-256 is printed)
//	--metrics HOST:PORT       Prometheus metrics at /metrics (plain HTTP)
//	--log-json                log records as JSON lines
//
// and the web view's accounts: `server user add NAME [--folders ID,ID]`
// (the password twice on a terminal, or one line on stdin), `server user
// remove NAME`, `server users`. peersync-server.service is a hardened
// systemd unit for it; SIGTERM stops it cleanly.
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
	Summary:         "server: the always-on peersync peer, with STUN/TURN for devices behind NATs and a web view for phones",
	RunUsage:        "[--stun-listen HOST:PORT|none] [--turn-user U] [--turn-relay-ip IP] [--web ADDR [--web-cert F --web-key F]] [--metrics ADDR] [--log-json]",
	Services:        services,
}

// services declares run's own flags and returns the function that starts
// the STUN/TURN relay, the metrics endpoint and the web view.
func services(fs *flag.FlagSet) func(context.Context, cli.Env) (func(), error) {
	stunListen := fs.String("stun-listen", ":3478", "UDP HOST:PORT for STUN (and TURN), or none")
	user := fs.String("turn-user", "", "TURN user name (enables TURN; the password from --turn-pass-file or $PEERSYNC_TURN_PASS)")
	pass := fs.String("turn-pass", "", "TURN password (visible to every local user: prefer --turn-pass-file or $PEERSYNC_TURN_PASS)")
	relayIP := fs.String("turn-relay-ip", "", "public IP address of this server for TURN relays")
	var web webConfig
	fs.StringVar(&web.Addr, "web", "", "TCP HOST:PORT for the read-only web view over HTTPS (e.g. :443); off when empty")
	fs.StringVar(&web.CertFile, "web-cert", "", "PEM certificate (chain) for --web; default: a self-signed one made at first run in the home")
	fs.StringVar(&web.KeyFile, "web-key", "", "PEM private key for --web-cert")
	metricsAddr := fs.String("metrics", "", "TCP HOST:PORT serving Prometheus metrics at /metrics (plain HTTP: keep it on loopback or a private network)")
	return func(ctx context.Context, env cli.Env) (stop func(), err error) {
		var stops []func()
		stop = func() {
			for i := len(stops) - 1; i >= 0; i-- {
				stops[i]()
			}
		}
		defer func() {
			if err != nil {
				stop()
			}
		}()
		var r *relay
		if *stunListen != "none" {
			if *pass == "" {
				*pass = env.TURNPass
			}
			if r, err = startRelay(relayConfig{Listen: *stunListen, User: *user, Pass: *pass, RelayIP: *relayIP, Log: env.Log}); err != nil {
				return nil, err
			}
			mode := "STUN"
			if *user != "" {
				mode = "STUN and TURN"
			}
			fmt.Fprintf(env.Stdout, "%s on udp %s\n", mode, r.Addr())
			stops = append(stops, func() {
				if err := r.Close(); err != nil {
					env.Log.Warn("closing STUN/TURN", "err", err)
				}
			})
		}
		if *metricsAddr != "" {
			m := newMetrics(env.Engine, r)
			env.Observe(m.observe)
			s, err := startMetrics(env, *metricsAddr, m)
			if err != nil {
				return nil, err
			}
			stops = append(stops, s)
		}
		if web.Addr != "" {
			s, err := startWeb(env, web)
			if err != nil {
				return nil, err
			}
			stops = append(stops, s)
		}
		return stop, nil
	}
}

func main() { cli.Main(program) }
