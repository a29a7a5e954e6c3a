package peersync_test

import (
	"fmt"

	"github.com/peersync/peersync/crypto"
)

// Devices are named by their DeviceID, the Ed25519 public key itself,
// printed with check characters so that a typo is caught.
func Example() {
	_, err := crypto.ParseDeviceID("AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAB")
	fmt.Println(err != nil)
	// Output: true
}
