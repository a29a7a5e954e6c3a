package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/sync"
)

// history prints the commits touching a path (or all), newest first:
// REV DATE DEVICE ACTION PATH.
func (a *app) history(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	folder := fs.String("folder", "", "folder ID")
	limit := fs.Int("n", 0, "at most this many lines (0 = all)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *folder == "" || len(pos) > 1 {
		return UsageError{"usage: history --folder ID [-n N] [PATH]"}
	}
	path := ""
	if len(pos) == 1 {
		path = strings.TrimPrefix(strings.ReplaceAll(pos[0], "\\", "/"), "./")
	}
	e, _, err := a.engine(sync.Config{Shared: true})
	if err != nil {
		return err
	}
	defer e.Close()
	changes, err := e.History(ctx, *folder, path, *limit)
	if err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Fprintf(a.stdout, "%s %s %s %s %s\n", c.Commit, c.Time.UTC().Format(time.RFC3339), authorName(c.Author), c.Action, c.Path)
	}
	return nil
}

// authorName is the name part of a "Name <email>" author.
func authorName(author string) string {
	name, _, _ := strings.Cut(author, " <")
	if name = strings.TrimSpace(name); name == "" {
		return "-"
	}
	return strings.ReplaceAll(name, " ", "_")
}

// restore puts PATH back to its content at REV, as a new commit.
func (a *app) restore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	folder := fs.String("folder", "", "folder ID")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *folder == "" || len(pos) != 2 {
		return UsageError{"usage: restore --folder ID PATH REV"}
	}
	rev, err := gitstore.ParseHash(pos[1])
	if err != nil {
		return fmt.Errorf("REV %q: want a 40-hex commit ID from `desktop history`", pos[1])
	}
	e, err := a.ownEngine("restore")
	if err != nil {
		return err
	}
	defer e.Close()
	c, err := e.Restore(ctx, *folder, pos[0], rev)
	if err != nil {
		return err
	}
	if c.Commit.IsZero() {
		fmt.Fprintf(a.stdout, "%s already has its content at %s; nothing to do\n", pos[0], rev)
		return nil
	}
	fmt.Fprintf(a.stdout, "%s %s %s\n", c.Commit, c.Action, c.Path)
	return nil
}
