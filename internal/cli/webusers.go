package cli

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/peersync/peersync/internal/webview"
)

// users runs `user add|remove` and `users`: the accounts of the read-only
// web view (see internal/webview). They edit the users file only; a running
// daemon sees the change at the next request.
func (a *app) users(cmd string, args []string) error {
	u := webview.OpenUsers(webview.UsersFile(a.home))
	if cmd == "users" {
		if len(args) > 0 {
			return UsageError{"users takes no arguments"}
		}
		list, err := u.List()
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintf(a.stderr, "no users yet: `%s user add NAME [--folders ID,ID]`\n", a.prog.Name)
		}
		for _, x := range list {
			fmt.Fprintf(a.stdout, "%s\tfolders=%s\tset %s\n", x.Name, grantText(x.Folders), x.Created.Format("2006-01-02"))
		}
		return nil
	}
	const usage = "usage: user add NAME [--folders ID,ID|*] | user remove NAME"
	if len(args) == 0 {
		return UsageError{usage}
	}
	switch args[0] {
	case "remove":
		if len(args) != 2 {
			return UsageError{usage}
		}
		if err := u.Remove(args[1]); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "user %s removed\n", args[1])
		return nil
	case "add":
	default:
		return UsageError{usage}
	}
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	folders := fs.String("folders", webview.AllFolders, "comma-separated folder IDs the user may read; * = all")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return UsageError{usage}
	}
	var grant []string
	for _, f := range strings.Split(*folders, ",") {
		if f = strings.TrimSpace(f); f != "" {
			grant = append(grant, f)
		}
	}
	pass, err := readPassword(os.Stdin, a.stderr)
	if err != nil {
		return err
	}
	replaced, err := u.Add(pos[0], pass, grant)
	if err != nil {
		return err
	}
	verb := "added"
	if replaced {
		verb = "updated (new password and folders)"
	}
	fmt.Fprintf(a.stdout, "user %s %s: folders=%s\n", pos[0], verb, grantText(grant))
	return nil
}

func grantText(f []string) string {
	if len(f) == 0 {
		return "(none)"
	}
	if len(f) == 1 && f[0] == webview.AllFolders {
		return "* (all)"
	}
	return strings.Join(f, ",")
}

// readPassword asks twice on a terminal (without echo); otherwise it reads
// one line from in (a script: `echo "$PW" | server user add ann`).
func readPassword(in *os.File, prompt io.Writer) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("no password on standard input")
		}
		return line, nil
	}
	ask := func(p string) (string, error) {
		fmt.Fprint(prompt, p)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		return string(b), err
	}
	p1, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	p2, err := ask("Again: ")
	if err != nil {
		return "", err
	}
	if p1 != p2 {
		return "", errors.New("the passwords differ; nothing changed")
	}
	return p1, nil
}
