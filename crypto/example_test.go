package crypto_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
)

// A device creates its identity on first run and tells its DeviceID to its
// other devices, which may type it back in any of the forgiving forms.
func Example() {
	home, _ := os.MkdirTemp("", "peersync-example")
	defer os.RemoveAll(home)

	id, created, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created:", created)

	typed, err := crypto.ParsePeer(id.DeviceID().String())
	fmt.Println("same device:", err == nil && typed == id.DeviceID())

	fromSSH, err := crypto.ParsePeer(id.AuthorizedKey())
	fmt.Println("same via ssh line:", err == nil && fromSSH == id.DeviceID())
	// Output:
	// created: true
	// same device: true
	// same via ssh line: true
}
