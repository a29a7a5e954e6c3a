package gitstore

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gatedReader serves data up to at, then closes reached and waits for
// release before serving the rest: whoever reads it is provably in the
// middle of reading while the gate is shut.
type gatedReader struct {
	data             []byte
	at, off          int
	reached, release chan struct{}
	once             sync.Once
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.off == g.at {
		g.once.Do(func() { close(g.reached) })
		<-g.release
	}
	if g.off >= len(g.data) {
		return 0, io.EOF
	}
	end := len(g.data)
	if g.off < g.at {
		end = g.at
	}
	n := copy(p, g.data[g.off:end])
	g.off += n
	return n, nil
}

// TestReadsDuringApply: while an ApplyBundle of a 16 MiB file is in
// progress (held in the middle of reading its bundle), Head, History,
// PeerHead, WriteBundle and a Scan all complete; the apply then finishes
// and merges with what the scan committed meanwhile. Before, every one of
// them waited for the whole apply.
func TestReadsDuringApply(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, "a", epoch)
	writeFile(t, s.Dir(), "first.txt", "1")
	scan(t, s)
	base := head(t, s)
	src := newTestStore(t, "b", epoch)
	all, _ := bundleOf(t, s)
	apply(t, src, all, peerA)
	writeLargeFile(t, filepath.Join(src.Dir(), "big.bin"), 16<<20)
	scan(t, src)
	b, _ := bundleOf(t, src, base)

	g := &gatedReader{data: b, at: len(b) / 2, reached: make(chan struct{}), release: make(chan struct{})}
	type result struct {
		res ApplyResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.ApplyBundle(ctx, g, peerB)
		done <- result{res, err}
	}()
	<-g.reached // the apply has read half the bundle and waits for the rest

	assert.Equal(t, base, head(t, s))
	ch, err := s.History(ctx, "", 0)
	require.NoError(t, err)
	require.Len(t, ch, 1)
	assert.Equal(t, "first.txt", ch[0].Path)
	ph, err := s.PeerHead(peerB)
	require.NoError(t, err)
	assert.True(t, ph.IsZero())
	var buf bytes.Buffer
	_, err = s.WriteBundle(ctx, &buf, nil)
	require.NoError(t, err)
	writeFile(t, s.Dir(), "meanwhile.txt", "m")
	require.Len(t, scan(t, s), 1)
	assert.NotEqual(t, base, head(t, s), "Head sees the scan's commit at once")
	select {
	case r := <-done:
		t.Fatalf("the apply finished without the rest of its bundle: %+v %v", r.res, r.err)
	default: // still in progress, as it must be: its reader is held
	}

	close(g.release)
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, Merged, r.res.Kind)
	assert.Equal(t, r.res.Head, head(t, s))
	files := folderFiles(t, s.Dir())
	assert.Equal(t, "m", files["meanwhile.txt"])
	assert.Len(t, files["big.bin"], 16<<20)
	ch, err = s.History(ctx, "", 0)
	require.NoError(t, err)
	assert.Len(t, ch, 3, "first, big.bin, meanwhile")
	fsck(t, s)
}
