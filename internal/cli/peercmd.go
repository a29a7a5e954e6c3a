package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/sync"
)

const peerUsage = "usage: peer add|set|remove|pause|resume ..."

// peer implements `peer add|set|remove|pause|resume`.
func (a *app) peer(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return UsageError{peerUsage}
	}
	switch args[0] {
	case "add", "set":
		return a.peerSet(ctx, args[0], args[1:])
	case "remove", "pause", "resume":
	default:
		return UsageError{peerUsage}
	}
	if len(args) != 2 {
		return UsageError{fmt.Sprintf("usage: peer %s DEVICEID|PUBKEYLINE", args[0])}
	}
	d, err := crypto.ParsePeer(args[1])
	if err != nil {
		return err
	}
	c, err := a.connect(ctx, "peer "+args[0], configAccess)
	if err != nil {
		return err
	}
	defer c.close()
	switch args[0] {
	case "remove":
		return c.RemovePeer(ctx, d)
	default:
		if _, err := c.PausePeer(ctx, d, args[0] == "pause"); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "peer %s %sd\n", d, args[0])
	}
	return nil
}

// peerSet implements `peer add` (the whole entry is replaced) and `peer
// set` (only what the flags give changes; a new peer is added).
func (a *app) peerSet(ctx context.Context, verb string, args []string) error {
	fs := flag.NewFlagSet("peer "+verb, flag.ContinueOnError)
	name := fs.String("name", "", "a label for the peer")
	var addrs, dirs multiFlag
	fs.Var(&addrs, "addr", "HOST:PORT to dial, IP or DNS name (repeatable)")
	folders := fs.String("folders", "", "comma-separated folder IDs to share with the peer")
	fs.Var(&dirs, "direction", "FOLDER=both|send|receive (repeatable; set only)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	usage := "usage: peer add --name NAME [--addr HOST:PORT]... [--folders ID,ID] DEVICEID|PUBKEYLINE"
	if verb == "set" {
		usage = "usage: peer set DEVICEID [--name N] [--addr HOST:PORT]... [--folders ID,ID] [--direction FOLDER=both|send|receive]..."
	} else if len(dirs) > 0 {
		return UsageError{"--direction is for `peer set`"}
	}
	if len(pos) == 0 {
		return UsageError{usage}
	}
	// An unquoted "ssh-ed25519 AAAA… comment" arrives as several words.
	d, err := crypto.ParsePeer(strings.Join(pos, " "))
	if err != nil {
		return fmt.Errorf("%w; give the peer's DeviceID (line 1 of `%s id` on that device) or its ssh-ed25519 line (line 2)", err, a.prog.Name)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c, err := a.connect(ctx, "peer "+verb, configAccess)
	if err != nil {
		return err
	}
	defer c.close()
	p := sync.PeerConfig{Device: d}
	if verb == "set" {
		peers, err := c.Peers(ctx)
		if err != nil {
			return err
		}
		if i := slices.IndexFunc(peers, func(ps sync.PeerStatus) bool { return ps.Device == d }); i >= 0 {
			p = peers[i].PeerConfig
		}
	}
	if set["name"] || verb == "add" {
		p.Name = *name
	}
	if set["addr"] || verb == "add" {
		p.Addrs = addrs
	}
	if set["folders"] || verb == "add" {
		p.Folders = splitList(*folders)
	}
	for _, fd := range dirs {
		folder, dir, ok := strings.Cut(fd, "=")
		switch sync.Direction(dir) {
		case sync.DirBoth, sync.DirSend, sync.DirReceive:
		default:
			ok = false
		}
		if !ok || folder == "" {
			return UsageError{fmt.Sprintf("--direction %q: want FOLDER=both|send|receive", fd)}
		}
		if p.Directions == nil {
			p.Directions = map[string]sync.Direction{}
		}
		p.Directions[folder] = sync.Direction(dir)
	}
	if _, err := c.SetPeer(ctx, p); err != nil {
		return err
	}
	if verb == "add" {
		fmt.Fprintf(a.stdout, "peer %s added\n", d)
	} else {
		fmt.Fprintf(a.stdout, "peer %s set\n", d)
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

const pendingUsage = "usage: pending [accept DEVICEID [--folders ID,ID] | accept-folder ID [PATH] | ignore DEVICEID|ID]"

// pending lists the devices and folder offers waiting for an answer, one
// per line (device DEVICEID NAME ADDR | folder ID LABEL FROM-DEVICEID), or
// answers one.
func (a *app) pending(ctx context.Context, args []string) error {
	if len(args) == 0 {
		c, err := a.connect(ctx, "pending", readAccess)
		if err != nil {
			return err
		}
		defer c.close()
		p, err := c.Pending(ctx)
		if err != nil {
			return err
		}
		for _, d := range p.Devices {
			fmt.Fprintf(a.stdout, "device %s %s %s\n", d.Device, orDash(d.Name), orDash(d.Addr))
		}
		for _, f := range p.Folders {
			fmt.Fprintf(a.stdout, "folder %s %s %s\n", printable(f.ID), orDash(f.Label), f.From)
		}
		if len(p.Devices)+len(p.Folders) == 0 {
			fmt.Fprintln(a.stderr, "nothing pending")
		}
		return nil
	}
	switch args[0] {
	case "accept":
		return a.pendingAccept(ctx, args[1:])
	case "accept-folder":
		return a.pendingAcceptFolder(ctx, args[1:])
	case "ignore":
		if len(args) != 2 {
			return UsageError{"usage: pending ignore DEVICEID|ID"}
		}
		return a.pendingIgnore(ctx, args[1])
	}
	return UsageError{pendingUsage}
}

// orDash is s printable, or "-" when empty (so a line keeps its fields).
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(printable(s), " ", "_")
}

// pendingIgnore ignores a device, or every offer of a folder ID.
func (a *app) pendingIgnore(ctx context.Context, what string) error {
	c, err := a.connect(ctx, "pending ignore", configAccess)
	if err != nil {
		return err
	}
	defer c.close()
	if d, err := crypto.ParseDeviceID(what); err == nil {
		if err := c.IgnoreDevice(ctx, d); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "device %s ignored\n", d)
		return nil
	}
	p, err := c.Pending(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, f := range p.Folders {
		if f.ID == what {
			if err := c.IgnoreFolder(ctx, f.ID, f.From); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "folder %s from %s ignored\n", printable(f.ID), f.From)
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("nothing pending named %q: `%s pending` lists what is", what, a.prog.Name)
	}
	return nil
}

// notFound reports whether err is the API's 404.
func notFound(err error) bool {
	var se *httpapi.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}
