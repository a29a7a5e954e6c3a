package cli

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
)

// pendingAccept accepts a pending device as a peer, sharing --folders.
func (a *app) pendingAccept(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pending accept", flag.ContinueOnError)
	folders := fs.String("folders", "", "comma-separated folder IDs to share with it")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return UsageError{"usage: pending accept DEVICEID [--folders ID,ID]"}
	}
	d, err := crypto.ParsePeer(pos[0])
	if err != nil {
		return err
	}
	c, err := a.connect(ctx, "pending accept", configAccess)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.AcceptDevice(ctx, d, splitList(*folders)); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "device %s accepted as a peer\n", d)
	return nil
}

// pendingAcceptFolder accepts a folder offer into PATH (default: a
// folder named after its label under the default parent).
func (a *app) pendingAcceptFolder(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pending accept-folder", flag.ContinueOnError)
	from := fs.String("from", "", "the offering device, when several offer the folder")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return UsageError{"usage: pending accept-folder ID [PATH]"}
	}
	path := ""
	if len(pos) == 2 {
		if path, err = filepath.Abs(pos[1]); err != nil {
			return err
		}
	}
	var fromID crypto.DeviceID
	if *from != "" {
		if fromID, err = crypto.ParsePeer(*from); err != nil {
			return err
		}
	}
	c, err := a.connect(ctx, "pending accept-folder", configAccess)
	if err != nil {
		return err
	}
	defer c.close()
	f, err := c.AcceptFolder(ctx, pos[0], path, fromID)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "folder %s shared from %s\n", printable(f.ID), printable(f.Path))
	return nil
}
