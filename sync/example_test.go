package sync_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

// An engine with one shared folder: every changed file becomes its own
// commit when the folder is scanned (Run does this on its own, with peers).
func Example() {
	home, _ := os.MkdirTemp("", "peersync-home")
	defer os.RemoveAll(home)
	folder, _ := os.MkdirTemp("", "peersync-folder")
	defer os.RemoveAll(folder)

	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := sync.New(sync.Config{Home: home, Identity: id})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()

	ctx := context.Background()
	if err := e.AddFolder(ctx, sync.FolderConfig{ID: "notes", Path: folder}); err != nil {
		fmt.Println(err)
		return
	}
	_ = os.WriteFile(filepath.Join(folder, "a.txt"), []byte("alpha"), 0o644)
	_ = os.WriteFile(filepath.Join(folder, "b.txt"), []byte("beta"), 0o644)

	changes, err := e.Scan(ctx, "notes")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range changes["notes"] {
		fmt.Println(c.Action, c.Path)
	}
	// Output:
	// add a.txt
	// add b.txt
}
