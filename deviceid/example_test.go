package deviceid_test

import (
	"errors"
	"fmt"

	"github.com/peersync/peersync/deviceid"
)

// A device ID read from user input: dashes, spaces and case do not matter,
// and a typo is caught by the check characters.
func ExampleParse() {
	var id deviceid.ID // in real life: crypto.Identity.DeviceID()
	id[0] = 1
	printed := id.String()
	back, err := deviceid.Parse(printed)
	fmt.Println(printed)
	fmt.Println(err == nil && back == id, id.Short())

	typo := "B" + printed[1:]
	_, err = deviceid.Parse(typo)
	fmt.Println(errors.Is(err, deviceid.ErrInvalid))
	// Output:
	// AEAAAAA-AAAAAA4-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA
	// true AEAAAAA
	// true
}
