//go:build peersync_crashtest

package gitstore

// Built into the crash test's helper (crash_test.go builds it with
// -tags peersync_crashtest): thresholds low enough that background
// maintenance runs every few scans, so the kills land in it too.
func init() {
	maintainLoose, maintainPacks = 24, 3
}
