//go:build !unix

package discovery

import "syscall"

// reuseControl is a no-op where SO_REUSEPORT does not exist; on Windows,
// sharing port 5353 with another responder needs SO_REUSEADDR, which Go's
// net package does not set: we then fail to bind if another responder runs.
func reuseControl(network, address string, c syscall.RawConn) error { return nil }
