package cli

import (
	"bytes"
	"strings"
	gosync "sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestLockedWriter: the daemon's outputs take writes from several
// goroutines (the race detector checks it), whole lines stay whole, and a
// writer is wrapped once.
func TestLockedWriter(t *testing.T) {
	var buf bytes.Buffer
	w := locked(&buf)
	assert.Same(t, w, locked(w))
	var wg gosync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = w.Write([]byte("a whole line\n"))
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	assert.Len(t, lines, 800)
	for _, l := range lines {
		assert.Equal(t, "a whole line", l)
	}
}
