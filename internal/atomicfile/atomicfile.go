// Package atomicfile writes files so that a reader (or a restart after a
// crash) sees either the old content or the new content, never a mix.
//
// The recipe is the classic one: write to a temporary file in the same
// directory, fsync it, rename it over the target, then fsync the directory
// so the rename itself is durable.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// WriteFile atomically replaces path with data. The new file has the
// permissions perm less the process's umask, as with os.WriteFile (so a
// user's umask of 077 keeps a 0644 file private). The temporary file lives
// beside path (so the rename never crosses a filesystem) and is removed if
// anything fails.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileVia(path, data, perm, filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
}

// WriteFileVia is WriteFile with the temporary file made in tmpDir (which
// must be on the same filesystem as path) with the os.CreateTemp pattern,
// for callers whose scanners must recognise their temporary files. Both
// tmpDir and path's directory are synced after the rename.
func WriteFileVia(path string, data []byte, perm os.FileMode, tmpDir, pattern string) (err error) {
	dir := filepath.Dir(path)
	f, err := CreateTemp(tmpDir, pattern, perm)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write %q: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %q: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %q: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	_ = SyncDir(dir)
	if tmpDir != dir {
		_ = SyncDir(tmpDir)
	}
	return nil
}

// SyncDir makes a rename in dir durable. Not every platform can sync a
// directory (Windows cannot); callers that only want best effort may ignore
// the error, and WriteFile does.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// tempSeq makes CreateTemp's names unique within the process.
var tempSeq atomic.Uint64

// CreateTemp is os.CreateTemp (pattern's last "*" is replaced by a random
// string; without one, the string is appended) with the file created with
// permissions perm less the process's umask, instead of always 0600. The
// file is open for reading and writing whatever perm says.
func CreateTemp(dir, pattern string, perm fs.FileMode) (*os.File, error) {
	if strings.ContainsRune(pattern, os.PathSeparator) {
		return nil, fmt.Errorf("pattern %q contains a path separator", pattern)
	}
	prefix, suffix := pattern, ""
	if i := strings.LastIndexByte(pattern, '*'); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for try := 0; ; try++ {
		seed := uint64(time.Now().UnixNano()) ^ tempSeq.Add(0x9e3779b97f4a7c15)
		name := filepath.Join(dir, prefix+strconv.FormatUint(seed%1e10, 10)+suffix)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		}
		return f, err
	}
}
