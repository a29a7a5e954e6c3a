//go:build peersync_crashtest

package gitstore

import (
	"math/rand/v2"
	"time"
)

// Built into the crash test's helper (crash_test.go builds it with
// -tags peersync_crashtest): thresholds so low that background
// maintenance runs after nearly every scan or apply (a loose object in
// the directories sampled, or a second pack), and a pause of up to 50 ms at each of
// its steps (the temporary pack created, the new pack in place, half the
// old packs removed), so that the kills land inside it, not only between
// runs: a run on these small stores is otherwise over in a millisecond.
func init() {
	maintainLoose, maintainPacks = 0, 1
	maintainStep = func(string) error {
		time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
		return nil
	}
}
