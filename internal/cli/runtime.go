package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/peersync/peersync/sync"
)

// runtimeFile is where a running daemon publishes what only it knows (which
// peers are connected, where it listens), so that `desktop status` in another
// process can show it. The daemon rewrites it every runtimeEvery and removes
// it when it stops; a file older than runtimeStale is ignored (a daemon that
// was killed).
const (
	runtimeFile  = "runtime.json"
	runtimeEvery = 1 * time.Second
	runtimeStale = 5 * time.Second
)

type runtimeInfo struct {
	PID     int                    `json:"pid"`
	Updated time.Time              `json:"updated"`
	Listen  string                 `json:"listen"`
	Peers   map[string]runtimePeer `json:"peers"` // by DeviceID, connected peers only
	// Rendezvous is the daemon's rendezvous state, if it uses one.
	Rendezvous *sync.RendezvousStatus `json:"rendezvous,omitempty"`
}

type runtimePeer struct {
	Addr string `json:"addr"`
	Path string `json:"path"`
}

// publishRuntime keeps runtime.json current until ctx ends, then removes it.
// A receive on poke (a peer connected or left) rewrites it at once.
func publishRuntime(ctx context.Context, home string, e *sync.Engine, poke <-chan struct{}) {
	path := filepath.Join(home, runtimeFile)
	defer os.Remove(path)
	t := time.NewTicker(runtimeEvery)
	defer t.Stop()
	for {
		st := e.Status()
		info := runtimeInfo{PID: os.Getpid(), Updated: time.Now(), Listen: st.Addr, Peers: map[string]runtimePeer{},
			Rendezvous: st.Rendezvous}
		for _, p := range st.Peers {
			if p.Connected {
				info.Peers[p.Device.String()] = runtimePeer{Addr: p.Addr, Path: p.Path}
			}
		}
		if b, err := json.Marshal(info); err == nil {
			writeEphemeral(path, b)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-poke:
		}
	}
}

// mergeRuntime adds a running daemon's live view to st, if there is a fresh
// runtime.json. It reports whether a daemon is running.
func mergeRuntime(home string, st *sync.Status) (running bool) {
	b, err := os.ReadFile(filepath.Join(home, runtimeFile))
	if err != nil {
		return false
	}
	var info runtimeInfo
	if json.Unmarshal(b, &info) != nil || time.Since(info.Updated) > runtimeStale {
		return false
	}
	st.Addr = info.Listen
	st.Rendezvous = info.Rendezvous
	for i := range st.Peers {
		if p, ok := info.Peers[st.Peers[i].Device.String()]; ok {
			st.Peers[i].Connected, st.Peers[i].Addr, st.Peers[i].Path = true, p.Addr, p.Path
		}
	}
	return true
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
