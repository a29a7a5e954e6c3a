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
//	--mailbox-quota SIZE      the blind mailbox: bytes kept per recipient
//	--mailbox-max N           (256M), bundles (256), how long one waits
//	--mailbox-expiry D        (720h); --no-mailbox keeps none
//
// and the web view's accounts: `server user add NAME [--folders ID,ID]`
// (the password twice on a terminal, or one line on stdin), `server user
// remove NAME`, `server users`. peersync-server.service is a hardened
// systemd unit for it; SIGTERM stops it cleanly.
//
// main and runDaemon below show how it is put together, as a program
// embedding the SDK would be: signals, the command line parsed by
// internal/cli (cli.ParseRun), sync.New, the HTTP API reading the
// engine's events, the server's services, the daemon's chores (cli.Daemon)
// and Engine.Run. Every other command is internal/cli's cli.Run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/internal/cli"
	"github.com/peersync/peersync/sync"
)

var program = cli.Program{
	Name:            "server",
	ServeRendezvous: true,
	Summary:         "server: the always-on peersync peer, with STUN/TURN for devices behind NATs and a web view for phones",
	RunUsage:        "[--stun-listen HOST:PORT|none] [--turn-user U] [--turn-relay-ip IP] [--web ADDR [--web-cert F --web-key F]] [--metrics ADDR] [--log-json] [--mailbox-quota SIZE] [--mailbox-max N] [--mailbox-expiry D | --no-mailbox]",
	Services: func(fs *flag.FlagSet) func(context.Context, cli.Env) (func(), error) {
		srv.declare(fs)
		return srv.startServices
	},
}

// srv holds the server's own `run` flags, parsed by cli.ParseRun.
var srv serverFlags

type serverFlags struct {
	stunListen, user, pass, relayIP, metricsAddr string
	web                                          webConfig
	mailbox                                      mailboxFlags
}

func (f *serverFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&f.stunListen, "stun-listen", ":3478", "UDP HOST:PORT for STUN (and TURN), or none")
	fs.StringVar(&f.user, "turn-user", "", "TURN user name (enables TURN; the password from --turn-pass-file or $PEERSYNC_TURN_PASS)")
	fs.StringVar(&f.pass, "turn-pass", "", "TURN password (visible to every local user: prefer --turn-pass-file or $PEERSYNC_TURN_PASS)")
	fs.StringVar(&f.relayIP, "turn-relay-ip", "", "public IP address of this server for TURN relays")
	fs.StringVar(&f.web.Addr, "web", "", "TCP HOST:PORT for the read-only web view over HTTPS (e.g. :443); off when empty")
	fs.StringVar(&f.web.CertFile, "web-cert", "", "PEM certificate (chain) for --web; default: a self-signed one made at first run in the home")
	fs.StringVar(&f.web.KeyFile, "web-key", "", "PEM private key for --web-cert")
	f.mailbox.declare(fs)
	fs.StringVar(&f.metricsAddr, "metrics", "", "TCP HOST:PORT serving Prometheus metrics at /metrics (plain HTTP: keep it on loopback or a private network)")
}

// startServices starts the server's part beside the engine: the STUN/TURN
// relay, the metrics endpoint and the web view. It returns the stop
// function.
func (f *serverFlags) startServices(ctx context.Context, env cli.Env) (stop func(), err error) {
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
	if f.stunListen != "none" {
		pass := f.pass
		if pass == "" {
			pass = env.TURNPass
		}
		if r, err = startRelay(relayConfig{Listen: f.stunListen, User: f.user, Pass: pass, RelayIP: f.relayIP, Log: env.Log}); err != nil {
			return nil, err
		}
		mode := "STUN"
		if f.user != "" {
			mode = "STUN and TURN"
		}
		fmt.Fprintf(env.Stdout, "%s on udp %s\n", mode, r.Addr())
		stops = append(stops, func() {
			if err := r.Close(); err != nil {
				env.Log.Warn("closing STUN/TURN", "err", err)
			}
		})
	}
	if f.metricsAddr != "" {
		m := newMetrics(env.Engine, r)
		env.Observe(m.observe)
		s, err := startMetrics(env, f.metricsAddr, m)
		if err != nil {
			return nil, err
		}
		stops = append(stops, s)
	}
	if f.web.Addr != "" {
		s, err := startWeb(env, f.web)
		if err != nil {
			return nil, err
		}
		stops = append(stops, s)
	}
	return stop, nil
}

// runDaemon is `server run` (and `server` alone), wired here as a program
// embedding the SDK would: the engine (sync.New), its HTTP API reading
// and logging the engine's events (Engine.Events), the server's services,
// the daemon's chores, and Run until ctx ends (SIGINT, SIGTERM). A command
// line for another command is cli.ErrNotRun.
func runDaemon(ctx context.Context, args []string) error {
	s, err := cli.ParseRun(program, args, os.Stdout, os.Stderr) // flags, identity, logger, API key
	if err != nil {
		return err
	}
	if s.Config.Mailbox, err = srv.mailbox.config(); err != nil { // sealed bundles for offline devices
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
	// observers (mirrors, metrics).
	d := cli.NewDaemon(s, e)
	api := httpapi.New(e, httpapi.Options{Key: s.APIKey, LANName: s.LANName, Logger: s.Log, ConsumeEvents: true,
		OnEvent: func(ev sync.Event) { s.Log.Info("event", "event", ev.String()); d.Emit(ev) }})
	defer api.Close()

	stopServices, err := srv.startServices(runCtx, d.Env(api)) // STUN/TURN, metrics, web view
	if err != nil {
		return err
	}
	defer func() { _ = api.Close(); stopServices() }()

	if err := d.Start(runCtx, api); err != nil { // mirrors, the API on loopback, runtime.json
		return err
	}
	defer d.Stop()
	return s.Stopped(ctx, e.Run(runCtx))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	args := os.Args[1:]
	err := runDaemon(ctx, args)
	if errors.Is(err, cli.ErrNotRun) {
		err = cli.Run(ctx, program, args, os.Stdout, os.Stderr) // every other command
	}
	stop()
	cli.Exit(program, err)
}
