package gitstore

import (
	"fmt"
	"io"
	"os"
)

// Limits bounds what one bundle may make [Store.ApplyBundle] hold in
// memory, spool to disk and write into the folder. Every limit is checked
// before anything is written (no object, no ref, no file), and a bundle
// over one is refused with a *LimitError naming it. The defaults are far
// above what a real folder needs; the zero value of each field means its
// default.
type Limits struct {
	// MaxFiles caps the files in the tree a bundle leads to: the tree
	// entries naming a blob, counted once per entry (a blob named under
	// eight paths counts eight times). 0 means 1,000,000.
	MaxFiles int64
	// MaxBytes caps the bytes a checkout of that tree would write: the sum
	// of the blob sizes over the same entries. 0 means 1 TiB. The disk is
	// protected by MinFreeBytes in any case.
	MaxBytes int64
	// MaxDepth caps the directory nesting of that tree ("a/b/c" is depth
	// 3). 0 means 256.
	MaxDepth int
	// MaxPathLen caps the length in bytes of any slash path in that tree.
	// 0 means 4096 (Linux's PATH_MAX).
	MaxPathLen int
	// MaxObjects caps the objects a bundle's pack may declare. 0 means
	// 16,777,216.
	MaxObjects int64
	// MaxTreeSize caps the size of one tree or commit object: they are read
	// into memory to be checked. 0 means 64 MiB (a directory of about a
	// million entries).
	MaxTreeSize int64
	// MaxSpoolBytes caps the temporary disk space one bundle may take while
	// it is checked: its pack as received plus the large objects its deltas
	// expand to. 0 means 1 TiB.
	MaxSpoolBytes int64
	// MinFreeBytes is the free space ApplyBundle leaves on the disk of the
	// folder: a bundle whose declared size would not fit is refused before
	// it is read, spooling stops when the free space falls below it, and a
	// checkout that would leave less is refused. 0 means 32 MiB; a
	// negative value turns the check off.
	MinFreeBytes int64
}

// The defaults of Limits.
const (
	defaultMaxFiles      = 1_000_000
	defaultMaxBytes      = 1 << 40
	defaultMaxDepth      = 256
	defaultMaxPathLen    = 4096
	defaultMaxObjects    = 1 << 24
	defaultMaxTreeSize   = 64 << 20
	defaultMaxSpoolBytes = 1 << 40
	defaultMinFreeBytes  = 32 << 20
)

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxFiles, defaultMaxFiles)
	def(&l.MaxBytes, defaultMaxBytes)
	def(&l.MaxObjects, defaultMaxObjects)
	def(&l.MaxTreeSize, defaultMaxTreeSize)
	def(&l.MaxSpoolBytes, defaultMaxSpoolBytes)
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	if l.MaxPathLen <= 0 {
		l.MaxPathLen = defaultMaxPathLen
	}
	if l.MinFreeBytes == 0 {
		l.MinFreeBytes = defaultMinFreeBytes
	}
	return l
}

// LimitError is returned (wrapped in a *BundleError) by [Store.ApplyBundle]
// when a bundle goes over one of the [Limits] or Config.MaxObjectSize.
// Nothing was written.
type LimitError struct {
	Limit string // the field of Limits (or Config) that was hit, e.g. "Limits.MaxDepth"
	Value int64  // the value the bundle reached (at least Max+1 when counting stopped early)
	Max   int64  // the configured maximum
	Path  string // the offending path when the limit is about one, else ""
}

// Error names the limit, the values and how to raise it.
func (e *LimitError) Error() string {
	msg := fmt.Sprintf("gitstore: bundle over %s: %d > %d", e.Limit, e.Value, e.Max)
	if e.Path != "" {
		msg += fmt.Sprintf(" at %q", e.Path)
	}
	return msg + " (raise gitstore.Config." + e.Limit + " to accept it)"
}

// checkFree returns a *DiskFullError when the file system of dir has fewer
// than need+minFree bytes free. It does nothing when minFree is negative or
// the free space cannot be known on this system.
func checkFree(dir string, need, minFree int64, step string) error {
	if minFree < 0 {
		return nil
	}
	free, ok := freeSpace(dir)
	if !ok {
		return nil
	}
	if want := satAdd(need, minFree); free < uint64(want) {
		return &DiskFullError{Dir: dir, Free: int64(min(free, 1<<62)), Need: want, Step: step}
	}
	return nil
}

// declaredSize returns the number of bytes r will yield when r says so
// (a *bytes.Reader, *strings.Reader or anything with Size, or a regular
// *os.File), else -1.
func declaredSize(r io.Reader) int64 {
	switch r := r.(type) {
	case interface{ Size() int64 }:
		return r.Size()
	case interface{ Len() int }:
		return int64(r.Len())
	case *os.File:
		fi, err := r.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}
		off, err := r.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return fi.Size() - off
	}
	return -1
}

// satAdd adds b to a, saturating at the largest int64.
func satAdd(a, b int64) int64 {
	if a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

// satMul multiplies a by n (both >= 0), saturating.
func satMul(a, n int64) int64 {
	if a == 0 || n == 0 {
		return 0
	}
	if a > (1<<63-1)/n {
		return 1<<63 - 1
	}
	return a * n
}

// packLimits returns the limits readPackSpooled enforces for s.
func (s *Store) packLimits() packLimits {
	return packLimits{
		maxObject:  s.opts.maxObject,
		maxTree:    s.opts.limits.MaxTreeSize,
		maxObjects: s.opts.limits.MaxObjects,
		maxSpool:   s.opts.limits.MaxSpoolBytes,
		minFree:    s.opts.limits.MinFreeBytes,
		diskDir:    spoolDir(s.gitDir),
	}
}
