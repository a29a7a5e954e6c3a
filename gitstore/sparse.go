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
