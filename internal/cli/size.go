package cli

import (
	"fmt"
	"strings"
)

// ParseSize reads a size in bytes for a program's own flags (e.g. the
// server's --mailbox-quota), in the units of the bandwidth limits: a
// number with an optional unit (B, KB, MB, GB: powers of 1000; KiB, MiB,
// GiB and K, M, G: of 1024).
func ParseSize(s string) (int64, error) {
	n, err := parseRate(s)
	if err != nil || strings.HasSuffix(strings.TrimSpace(s), "/s") {
		return 0, fmt.Errorf("size %q: want a number with a unit, like 256MiB or 1G", s)
	}
	return n, nil
}
