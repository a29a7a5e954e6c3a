package gitstore

import "errors"

// patchDeltaExact applies the git delta to base and returns the result in a
// buffer of exactly the size the delta declares, allocated once (refusing a
// declared size over maxObject before allocating), with the pack reader's
// applyDeltaTo. go-git's PatchDelta grows a bytes.Buffer from 64 KiB by
// doubling, so every version of a 400 KB tree resolved while a bundle is
// spooled cost ~1 MB of allocations and kept a 512 KiB buffer in the
// spool's cache; this costs the 400 KB. An empty base (which git may use)
// is accepted: only insert commands can then apply.
func patchDeltaExact(base, delta []byte, maxObject int64) ([]byte, error) {
	size := deltaTargetSize(delta)
	if size < 0 || size > maxObject {
		return nil, errors.New("bad or oversized delta target")
	}
	return applyDeltaTo(make([]byte, 0, size), base, delta)
}
