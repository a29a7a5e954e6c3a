package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/peersync/peersync/gitstore"
)

// history prints the commits touching a path (or all), newest first:
// REV DATE DEVICE FROM ACTION PATH. DEVICE is the author name the commit
// claims; FROM is the DeviceID of the authenticated peer that delivered it,
// "-" for a commit made here. Names holding control characters are
// printed quoted (see printable), so a peer's name can neither send
// terminal escapes nor forge a line.
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
	c, err := a.connect(ctx, "history", readAccess)
	if err != nil {
		return err
	}
	defer c.close()
	changes, err := c.History(ctx, *folder, path, *limit)
	if err != nil {
		return err
	}
	for _, ch := range changes {
		from := ch.From
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(a.stdout, "%s %s %s %s %s %s\n", ch.Commit, ch.Time.UTC().Format(time.RFC3339),
			printable(authorName(ch.Author)), printable(from), printable(string(ch.Action)), printable(ch.Path))
	}
	return nil
}

// printable returns s as is when it holds no control character (C0, DEL,
// C1) and is valid UTF-8, else quoted as by strconv.Quote, so that what a
// peer chose (an author name, a path) prints on one line without terminal
// escape sequences.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }) ||
		strings.HasPrefix(s, `"`) {
		return strconv.Quote(s)
	}
	return s
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
	conn, err := a.connect(ctx, "restore", ownAccess)
	if err != nil {
		return err
	}
	defer conn.close()
	made, err := conn.Restore(ctx, *folder, pos[0], rev)
	if err != nil {
		return err
	}
	var c gitstore.Change
	if len(made) > 0 {
		c = made[0]
	}
	if c.Commit.IsZero() {
		fmt.Fprintf(a.stdout, "%s already has its content at %s; nothing to do\n", pos[0], rev)
		return nil
	}
	fmt.Fprintf(a.stdout, "%s %s %s\n", c.Commit, c.Action, c.Path)
	return nil
}
