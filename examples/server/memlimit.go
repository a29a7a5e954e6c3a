package main

import "github.com/peersync/peersync/internal/cli"

// The server, which receives every device's bundles and keeps running for
// months, bounds its garbage with the same soft memory limit as the desktop
// unless GOMEMLIMIT is set (see cli.DaemonMemoryLimit).
func init() { cli.SoftMemoryLimit(cli.DaemonMemoryLimit) }
