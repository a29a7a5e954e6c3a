package gitstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScanSkipsControlCharacterNames: a local file whose name holds a
// control character (which ValidPath refuses, so no peer would accept it) is
// left out of the history; the rest of the folder is committed.
func TestScanSkipsControlCharacterNames(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	writeFile(t, s.Dir(), "ok.txt", "ok")
	writeFile(t, s.Dir(), "bad\nname.txt", "forged")
	writeFile(t, s.Dir(), "esc\x1b[31m/x.txt", "escape")
	ch := scan(t, s)
	require.Len(t, ch, 1)
	assert.Equal(t, "ok.txt", ch[0].Path)
}
