package main

import "github.com/peersync/peersync/internal/cli"

// The desktop bounds its garbage with a soft memory limit unless GOMEMLIMIT
// is set (see cli.DaemonMemoryLimit for why and how much).
func init() { cli.SoftMemoryLimit(cli.DaemonMemoryLimit) }
