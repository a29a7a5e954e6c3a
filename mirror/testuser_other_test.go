//go:build !unix

package mirror

// removeTestUser has nothing to remove where the real-server tests, which
// create the servers' login user, do not build.
func removeTestUser() {}
