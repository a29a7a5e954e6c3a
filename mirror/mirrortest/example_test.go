package mirrortest_test

import (
	"fmt"
	"net"

	"github.com/peersync/peersync/mirror/mirrortest"
)

// A test starts a server, points an sftp:// URL at its address (or a
// mirror.Config.Dial at its Dial), and closes it at the end.
func Example() {
	srv, err := mirrortest.NewSFTPServer("demo", "s3cret")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	host, _, _ := net.SplitHostPort(srv.Addr())
	fmt.Println("url: sftp://demo@" + host + ":PORT/some/dir")
	// Output: url: sftp://demo@127.0.0.1:PORT/some/dir
}
