package sync_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

// Editing the sync table: a peer that only receives our photos (we never
// apply its edits), then paused. Pending devices and folder offers are
// answered with AcceptDevice, AcceptFolder, IgnoreDevice and IgnoreFolder.
func ExampleEngine_SetPeer() {
	home, _ := os.MkdirTemp("", "peersync-home")
	defer os.RemoveAll(home)
	folder, _ := os.MkdirTemp("", "peersync-photos")
	defer os.RemoveAll(folder)

	id, _, _ := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	e, err := sync.New(sync.Config{Home: home, Identity: id})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	_ = e.AddFolder(context.Background(), sync.FolderConfig{ID: "photos", Path: folder, Label: "Photos"})

	frame, _ := crypto.GenerateIdentity(nil) // the peer's ID, as typed by the user
	err = e.SetPeer(sync.PeerConfig{
		Device:     frame.DeviceID(),
		Name:       "photo frame",
		Addrs:      []string{"frame.local:44996"}, // resolved again on every dial
		Folders:    []string{"photos"},
		Directions: map[string]sync.Direction{"photos": sync.DirSend},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = e.PausePeer(frame.DeviceID(), true)

	p, _ := e.Peer(frame.DeviceID())
	fmt.Println(p.Name, p.Folders, p.Directions["photos"], "paused:", p.Paused)
	fmt.Println("pending:", len(e.Pending().Devices), "devices,", len(e.Pending().Folders), "offers")
	// Output:
	// photo frame [photos] send paused: true
	// pending: 0 devices, 0 offers
}
