package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// debugStatsEnv names an environment variable for measurements: when it
// holds a file path, the process rewrites that file every second with one
// line, "goroutines=N heap_inuse=BYTES", so scripts/soak.sh can follow the
// daemon's goroutine count, which /proc does not show. Unset (the normal
// case), nothing happens. The writer lives as long as the process; it is a
// probe, not a service, so nothing stops it.
const debugStatsEnv = "PEERSYNC_DEBUG_STATS"

func init() {
	path := os.Getenv(debugStatsEnv)
	if path == "" {
		return
	}
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			line := fmt.Sprintf("goroutines=%d heap_inuse=%d\n", runtime.NumGoroutine(), ms.HeapInuse)
			tmp := path + ".tmp"
			if os.WriteFile(tmp, []byte(line), 0o600) == nil {
				_ = os.Rename(tmp, path)
			}
			time.Sleep(time.Second) // a sampling period, not a wait for readiness
		}
	}()
}
