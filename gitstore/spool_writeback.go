package gitstore

import "os"

// Early writeback.
//
// A file we write and must fsync before a ref moves (a received pack, a
// checkout's temporary file) would otherwise sit in the page cache until
// that fsync: on a machine with gigabytes of memory the kernel starts
// writing dirty pages only past dirty_background_ratio (10 % of memory),
// so the fsync of a 256 MiB file wrote all of it at the end, after the
// transfer or the copy, with the disk idle until then. writeback hands
// each finished writebackChunk to the kernel as the file grows, so the
// disk writes while we still receive or copy, and the fsync waits only for
// the last chunk. Durability is unchanged: only the fsync is relied on.

// writebackChunk is how much a file grows between two writeback requests.
const writebackChunk = 8 << 20

// writeback tracks how much of a growing file was handed to the kernel to
// write (see "Early writeback").
type writeback struct {
	f       *os.File
	started int64 // bytes [0, started) were handed over
}

// grew notes that f now holds end bytes, and starts writing them out once
// writebackChunk of them were not yet handed over.
func (w *writeback) grew(end int64) {
	if w.f != nil && end-w.started >= writebackChunk {
		startWriteback(w.f, w.started, end-w.started)
		w.started = end
	}
}

// writebackWriter appends to f (at its offset) and hands what it wrote to
// the kernel as it grows (see "Early writeback"): a pack we write, whose
// fsync comes before a ref moves.
type writebackWriter struct {
	f  *os.File
	n  int64
	wb writeback
}

func newWritebackWriter(f *os.File) *writebackWriter {
	return &writebackWriter{f: f, wb: writeback{f: f}}
}

func (w *writebackWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.n += int64(n)
	w.wb.grew(w.n)
	return n, err
}
