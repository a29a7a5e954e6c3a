package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/httpapi"
)

const folderUsage = "usage: folder add --id ID [--label LABEL] PATH | folder remove|pause|resume|revert ID"

// folder implements `folder add|remove|pause|resume|revert`.
func (a *app) folder(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return UsageError{folderUsage}
	}
	switch args[0] {
	case "mirror":
		return a.mirror(args[1:])
	case "add":
		return a.folderAdd(ctx, args[1:])
	case "remove", "pause", "resume", "revert":
	default:
		return UsageError{folderUsage}
	}
	if len(args) != 2 {
		return UsageError{fmt.Sprintf("usage: folder %s ID", args[0])}
	}
	verb, id := args[0], args[1]
	acc := configAccess
	if verb == "revert" {
		acc = ownAccess
	}
	c, err := a.connect(ctx, "folder "+verb, acc)
	if err != nil {
		return err
	}
	defer c.close()
	switch verb {
	case "remove":
		if err := c.RemoveFolder(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "folder %s removed: no longer synced; its files and history stay\n", id)
	case "pause", "resume":
		if _, err := c.PauseFolder(ctx, id, verb == "pause"); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "folder %s %s\n", id, map[string]string{"pause": "paused", "resume": "resumed"}[verb])
	case "revert":
		changes, err := c.RevertFolder(ctx, id)
		a.printChanges(id, changes)
		if err != nil {
			return err
		}
		if len(changes) == 0 {
			fmt.Fprintf(a.stdout, "folder %s already has the state last received; nothing to revert\n", id)
		}
	}
	return nil
}

func (a *app) folderAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("folder add", flag.ContinueOnError)
	id := fs.String("id", "", "folder ID shared between devices")
	label := fs.String("label", "", "a name for the folder, shown to peers with its offer")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *id == "" || len(pos) != 1 {
		return UsageError{"usage: folder add --id ID [--label LABEL] PATH"}
	}
	abs, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	c, err := a.connect(ctx, "folder add", configAccess)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.AddFolder(ctx, httpapi.NewFolder{ID: *id, Path: abs, Label: *label}); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "folder %s shared from %s\n", *id, abs)
	return nil
}

// printChanges prints commits as `scan` does: FOLDER REV ACTION PATH.
func (a *app) printChanges(folder string, changes []gitstore.Change) {
	for _, ch := range changes {
		fmt.Fprintf(a.stdout, "%s %s %s %s\n", folder, ch.Commit, ch.Action, printable(ch.Path))
	}
}

func (a *app) scan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	folder := fs.String("folder", "", "only this folder ID")
	confirm := fs.Bool("allow-mass-delete", false, "confirm a deletion the mass-delete guard refused (needs --folder)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 || (*confirm && *folder == "") {
		return UsageError{"usage: scan [--folder ID [--allow-mass-delete]]"}
	}
	c, err := a.connect(ctx, "scan", ownAccess)
	if err != nil {
		return err
	}
	defer c.close()
	ids := []string{*folder}
	if *folder == "" {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, f := range st.Folders {
			ids = append(ids, f.ID)
		}
	}
	var errs []error
	for _, id := range ids {
		tick := time.NewTicker(250 * time.Millisecond)
		stop := followScan(ctx, a.newMeter("scan "+id, 0), id, c.Status, tick.C)
		changes, err := c.Scan(ctx, id, *confirm)
		stop()
		tick.Stop()
		a.printChanges(id, changes)
		var se *httpapi.StatusError
		if errors.As(err, &se) && se.Code == http.StatusConflict {
			err = fmt.Errorf("%w\nif the deletion is intended: scan --folder %s --allow-mass-delete", err, id)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
