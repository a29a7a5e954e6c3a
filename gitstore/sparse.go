package gitstore

import (
	"io"
	"os"
	"sync"
)

// sparseBlock is the unit copySparse looks at: an aligned block of this
// size that is all zeros is skipped (a hole) instead of written.
const sparseBlock = 64 << 10

// sparseBufs holds copySparse's block buffers between files: a first
// sync's checkout copies thousands of small files, and a new 64 KiB buffer
// for each (640 MiB for 10,000 files) kept the heap 9 MiB above what the
// files need.
var sparseBufs = sync.Pool{New: func() any { b := make([]byte, sparseBlock); return &b }}

// copySparse copies r into f, which must be empty and at offset 0, leaving
// holes where r has whole aligned blocks of zeros, and sets f's size to what
// was copied. A file that was sparse on the sender (a disk image, a
// preallocated database) then costs on the receiver's disk what it cost
// there, not its length in zeros; where the file system keeps no holes, the
// kernel writes the zeros itself. It returns the number of bytes copied.
func copySparse(f *os.File, r io.Reader) (int64, error) {
	bp := sparseBufs.Get().(*[]byte)
	defer sparseBufs.Put(bp)
	buf := *bp
	var n int64
	wb := writeback{f: f} // a big file is on disk by its batch's fsync
	hole := false         // the last block was skipped
	for {
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			if m == sparseBlock && allZero(buf) {
				hole = true
			} else {
				if _, werr := f.WriteAt(buf[:m], n); werr != nil {
					return n, werr
				}
				wb.grew(n + int64(m))
				hole = false
			}
			n += int64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if hole {
		if err := f.Truncate(n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// sparseWriter is copySparse as an io.Writer: what is written to it goes
// into f (empty, at offset 0) block by block, leaving holes for whole
// aligned blocks of zeros, and handed to the kernel to write out as it
// grows (see "Early writeback"). finish writes the last block and sets
// f's size.
type sparseWriter struct {
	f    *os.File
	bp   *[]byte // a block from sparseBufs; its length is what it holds
	off  int64   // bytes of the file before the block held
	hole bool    // the last block was skipped
	wb   writeback
}

func newSparseWriter(f *os.File) *sparseWriter {
	bp := sparseBufs.Get().(*[]byte)
	*bp = (*bp)[:0]
	return &sparseWriter{f: f, bp: bp, wb: writeback{f: f}}
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		b := *w.bp
		k := copy(b[len(b):sparseBlock], p)
		*w.bp, p = b[:len(b)+k], p[k:]
		if len(*w.bp) == sparseBlock {
			if err := w.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// flush writes the block held (or skips it as a hole).
func (w *sparseWriter) flush() error {
	b := *w.bp
	if len(b) == sparseBlock && allZero(b) {
		w.hole = true
	} else if len(b) > 0 {
		if _, err := w.f.WriteAt(b, w.off); err != nil {
			return err
		}
		w.hole = false
		w.wb.grew(w.off + int64(len(b)))
	}
	w.off += int64(len(b))
	*w.bp = b[:0]
	return nil
}

// finish writes what is held, sets the file's size and gives the block
// back; it returns the file's size. The writer is not used after.
func (w *sparseWriter) finish() (int64, error) {
	err := w.flush()
	*w.bp = (*w.bp)[:sparseBlock] // as copySparse expects it
	sparseBufs.Put(w.bp)
	if err == nil && w.hole {
		err = w.f.Truncate(w.off)
	}
	return w.off, err
}
