package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/peersync/peersync/sync"
)

// runtimeFile is where a running daemon publishes what only it knows: where
// its HTTP API answers (which the commands beside it call, see daemon.go)
// and where it listens for peers. The daemon rewrites it every runtimeEvery
// and removes it when it stops; a file older than runtimeStale is ignored
// (a daemon that was killed).
const (
	runtimeFile  = "runtime.json"
	runtimeEvery = 1 * time.Second
	runtimeStale = 5 * time.Second
)

type runtimeInfo struct {
	PID     int       `json:"pid"`
	Updated time.Time `json:"updated"`
	// Listen is the address the engine listens on for peers.
	Listen string `json:"listen"`
	// API is the host:port of the daemon's HTTP API (package httpapi).
	API string `json:"api,omitempty"`
}

// publishRuntime keeps runtime.json current until ctx ends, then removes
// it. It reads nothing that waits for a folder's store, so the file stays
// fresh while the engine is busy.
func publishRuntime(ctx context.Context, home string, e *sync.Engine, api string) {
	path := filepath.Join(home, runtimeFile)
	defer os.Remove(path)
	t := time.NewTicker(runtimeEvery)
	defer t.Stop()
	for {
		info := runtimeInfo{PID: os.Getpid(), Updated: time.Now(), API: api}
		if a := e.Addr(); a != nil {
			info.Listen = a.String()
		}
		if b, err := json.Marshal(info); err == nil {
			writeEphemeral(path, b)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readRuntime returns a running daemon's runtime.json; false if there is
// none or it is stale.
func readRuntime(home string) (runtimeInfo, bool) {
	var info runtimeInfo
	b, err := os.ReadFile(filepath.Join(home, runtimeFile))
	if err != nil || json.Unmarshal(b, &info) != nil || time.Since(info.Updated) > runtimeStale {
		return runtimeInfo{}, false
	}
	return info, true
}

// writeEphemeral replaces path with data by rename (so readers never see a
// partial file) but without fsync: the file is rewritten every second and
// worthless after a crash, so it should not keep a laptop's disk awake.
func writeEphemeral(path string, data []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
	}
}
