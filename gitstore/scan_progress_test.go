package gitstore

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScanProgress: a long scan reports the files and bytes it has read,
// and its end.
func TestScanProgress(t *testing.T) {
	var got []ScanProgress
	s := newTestStore(t, "dev", epoch, func(c *Config) {
		c.ScanProgress = func(p ScanProgress) { got = append(got, p) }
	})
	old := scanReportDelay
	scanReportDelay = 0 // every scan counts as long
	t.Cleanup(func() { scanReportDelay = old })

	for i := range 40 {
		writeFile(t, s.Dir(), fmt.Sprintf("d%d/f%02d.txt", i%3, i), strings.Repeat("x", 1000))
	}
	require.Len(t, scan(t, s), 40)
	require.GreaterOrEqual(t, len(got), 2, "at least one report and the end")
	last := got[len(got)-1]
	assert.Equal(t, ScanProgress{Files: 40, Bytes: 40000, Done: true}, last)
	for i, p := range got[:len(got)-1] {
		assert.False(t, p.Done)
		assert.Positive(t, p.Files)
		if i > 0 {
			assert.Greater(t, p.Files, got[i-1].Files)
		}
	}

	// A rescan reads only what the stat cache cannot vouch for (here the
	// changed file, and files too recent to trust their times).
	got = nil
	writeFile(t, s.Dir(), "d0/f00.txt", "changed")
	require.Len(t, scan(t, s), 1)
	require.NotEmpty(t, got)
	last = got[len(got)-1]
	assert.True(t, last.Done)
	assert.GreaterOrEqual(t, last.Files, int64(1))
}
