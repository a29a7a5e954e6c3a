package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/discovery"
)

// peers lists the peers of the sync table, or with --discovered what the LAN
// shows right now (a browse-only mDNS query lasting --wait).
func (a *app) peers(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	discovered := fs.Bool("discovered", false, "list devices announcing themselves on the LAN")
	wait := fs.Duration("wait", 3*time.Second, "how long to listen with --discovered")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return UsageError{"usage: peers [--discovered [--wait D]]"}
	}
	if !*discovered {
		return a.status(ctx, nil)
	}
	self := crypto.DeviceID{}
	if id, err := crypto.LoadIdentity(a.identityPath()); err == nil {
		self = id.DeviceID()
	}
	if self.IsZero() {
		// Browsing needs some DeviceID to exclude; a throwaway one will do.
		tmp, err := crypto.GenerateIdentity(nil)
		if err != nil {
			return err
		}
		self = tmp.DeviceID()
	}
	d, err := discovery.New(discovery.Config{Device: self, Announce: false})
	if err != nil {
		return err
	}
	defer d.Close()
	bctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	_ = d.Run(bctx) // returns when the wait is over
	found := d.Peers()
	if len(found) == 0 {
		fmt.Fprintln(a.stderr, "no peersync devices announced themselves on the LAN")
	}
	for _, p := range found {
		fmt.Fprintf(a.stdout, "%s  %s  %v  %s ago\n", p.Device, p.Name, p.Addrs, time.Since(p.Seen).Round(time.Second))
	}
	return nil
}
