package gitstore

import "errors"

// errBadDelta is a delta that does not apply to its base.
var errBadDelta = errors.New("invalid delta")

// patchDeltaExact applies the git delta to base and returns the result in a
// buffer of exactly the size the delta declares, allocated once (refusing a
// declared size over maxObject before allocating). go-git's PatchDelta
// grows a bytes.Buffer from 64 KiB by doubling, so every version of a
// 400 KB tree resolved while a bundle is spooled cost ~1 MB of allocations
// and kept a 512 KiB buffer in the spool's cache; this costs the 400 KB.
// An empty base (which git may use) is accepted: only insert commands can
// then apply.
func patchDeltaExact(base, delta []byte, maxObject int64) ([]byte, error) {
	src, rest, ok := deltaVarint(delta)
	if !ok || src != int64(len(base)) {
		return nil, errBadDelta
	}
	size, rest, ok := deltaVarint(rest)
	if !ok || size < 0 || size > maxObject {
		return nil, errors.New("bad or oversized delta target")
	}
	out := make([]byte, 0, size)
	for len(rest) > 0 {
		cmd := rest[0]
		rest = rest[1:]
		switch {
		case cmd&0x80 != 0: // copy from base: offset and size bytes follow as the low bits say
			var off, n uint64
			for i := uint(0); i < 4; i++ {
				if cmd&(1<<i) != 0 {
					if len(rest) == 0 {
						return nil, errBadDelta
					}
					off |= uint64(rest[0]) << (8 * i)
					rest = rest[1:]
				}
			}
			for i := uint(0); i < 3; i++ {
				if cmd&(0x10<<i) != 0 {
					if len(rest) == 0 {
						return nil, errBadDelta
					}
					n |= uint64(rest[0]) << (8 * i)
					rest = rest[1:]
				}
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > uint64(len(base)) || int64(len(out))+int64(n) > size {
				return nil, errBadDelta
			}
			out = append(out, base[off:off+n]...)
		case cmd != 0: // insert the next cmd bytes
			if int(cmd) > len(rest) || int64(len(out))+int64(cmd) > size {
				return nil, errBadDelta
			}
			out = append(out, rest[:cmd]...)
			rest = rest[cmd:]
		default:
			return nil, errBadDelta
		}
	}
	if int64(len(out)) != size {
		return nil, errBadDelta
	}
	return out, nil
}
