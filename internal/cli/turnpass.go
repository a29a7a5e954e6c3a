package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/peersync/peersync/transport"
)

// turnPassEnv names the environment variable that may hold the TURN
// password (the desktop's relay password, the server's relay password), so
// that it need not be on the command line, where every local user can
// read it.
const turnPassEnv = "PEERSYNC_TURN_PASS"

// maxTURNPassFile bounds the password file read.
const maxTURNPassFile = 4096

// readTURNPass returns the TURN password: the first line of file if
// given, else $PEERSYNC_TURN_PASS, else "".
func readTURNPass(file string) (string, error) {
	if file == "" {
		return os.Getenv(turnPassEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--turn-pass-file: %w", err)
	}
	if len(b) > maxTURNPassFile {
		return "", fmt.Errorf("--turn-pass-file %q: %d bytes, more than a password (at most %d)", file, len(b), maxTURNPassFile)
	}
	pass, _, _ := strings.Cut(string(b), "\n")
	pass = strings.TrimSuffix(pass, "\r")
	if pass == "" {
		return "", fmt.Errorf("--turn-pass-file %q: the first line is empty", file)
	}
	return pass, nil
}

// turnServers parses the --turn URLs, giving those without a password the
// one from passFile or the environment, and returns them with that
// password (for the server's own relay).
func turnServers(urls []string, passFile string) ([]transport.TURNServer, string, error) {
	pass, err := readTURNPass(passFile)
	if err != nil {
		return nil, "", err
	}
	var servers []transport.TURNServer
	for _, u := range urls {
		ts, err := transport.ParseTURNServer(u)
		if err != nil {
			return nil, "", UsageError{fmt.Sprintf("--turn: %v", err)}
		}
		if ts.Pass == "" {
			if pass == "" {
				return nil, "", UsageError{fmt.Sprintf("--turn %s: no password: put it in a file given with --turn-pass-file, or in $%s", ts, turnPassEnv)}
			}
			ts.Pass = pass
		}
		servers = append(servers, ts)
	}
	return servers, pass, nil
}
