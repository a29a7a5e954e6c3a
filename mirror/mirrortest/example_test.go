package mirrortest_test

import (
	"fmt"

	"github.com/peersync/peersync/mirror/mirrortest"
)

// A test starts a server, points an sftp:// URL (or a mirror.Config.Dial)
// at it, and closes it at the end.
func Example() {
	srv, err := mirrortest.NewSFTPServer("demo", "s3cret")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	fmt.Println("sftp://demo@"+srv.Addr() != "")
	// Output: true
}
