package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/sync"
)

// waitEvent follows a daemon's event stream from after until an event of
// kind for which match holds (nil: any) arrives, with a generous deadline.
func waitEvent(t *testing.T, d *daemon, after *int64, kind sync.EventKind, match func(httpapi.EventJSON) bool) httpapi.EventJSON {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got httpapi.EventJSON
	err := d.client.Events(ctx, *after, func(ev httpapi.EventJSON) error {
		*after = int64(ev.ID)
		if ev.Kind == kind && (match == nil || match(ev)) {
			got = ev
			return errStopStream
		}
		return nil
	})
	require.ErrorIs(t, err, errStopStream, "waiting for %s", kind)
	return got
}

var errStopStream = context.Canceled

// TestCLIPendingAcceptBetweenDaemons: two daemons; alpha adds beta and
// picks the folder; on beta, `pending` shows alpha, `pending accept`
// makes it a peer, `pending` then shows the folder offer, and `pending
// accept-folder` shares it into a path, where alpha's file arrives.
func TestCLIPendingAcceptBetweenDaemons(t *testing.T) {
	homeA, folderA := setupFolder(t)
	require.NoError(t, os.WriteFile(filepath.Join(folderA, "hello.txt"), []byte("from alpha"), 0o644))
	homeB := t.TempDir()
	runOK := func(home string, args ...string) string {
		t.Helper()
		out, stderr, err := runCLI(t, home, args...)
		require.NoError(t, err, "%v: %s", args, stderr)
		return out
	}
	runOK(homeA, "init", "--name", "alpha")
	idB := strings.TrimSpace(runOK(homeB, "init", "--name", "beta"))
	idA, _ := deviceID(t, homeA)
	b := startDaemon(t, testProgram, homeB)
	var seen int64
	runOK(homeA, "peer", "add", "--name", "beta", "--addr", b.info.Listen, "--folders", "docs", idB)
	startDaemon(t, testProgram, homeA)

	// The second event: the device introduced itself (name, address).
	waitEvent(t, b, &seen, sync.EventPendingDevice, func(ev httpapi.EventJSON) bool { return ev.Addr != "" })
	out := runOK(homeB, "pending")
	assert.Regexp(t, "^device "+idA+" alpha 127\\.0\\.0\\.1:\\d+\n$", out)
	assert.Equal(t, "device "+idA+" accepted as a peer\n", runOK(homeB, "pending", "accept", idA))

	inDocs := func(ev httpapi.EventJSON) bool { return ev.Folder == "docs" }
	waitEvent(t, b, &seen, sync.EventFolderOffer, inDocs)
	assert.Equal(t, "folder docs - "+idA+"\n", runOK(homeB, "pending"))
	into := t.TempDir()
	assert.Equal(t, "folder docs shared from "+into+"\n", runOK(homeB, "pending", "accept-folder", "docs", into))
	waitEvent(t, b, &seen, sync.EventRemoteApplied, inDocs)
	got, err := os.ReadFile(filepath.Join(into, "hello.txt"))
	require.NoError(t, err)
	assert.Equal(t, "from alpha", string(got))
	_, stderr, err := runCLI(t, homeB, "pending")
	require.NoError(t, err)
	assert.Contains(t, stderr, "nothing pending")
}
