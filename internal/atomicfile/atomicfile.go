// Package atomicfile writes files so that a reader (or a restart after a
// crash) sees either the old content or the new content, never a mix.
//
// The recipe is the classic one: write to a temporary file in the same
// directory, fsync it, rename it over the target, then fsync the directory
// so the rename itself is durable.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile atomically replaces path with data, creating it with perm if it
// does not exist. The temporary file lives beside path (so the rename never
// crosses a filesystem) and is removed if anything fails.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileVia(path, data, perm, filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
}

// WriteFileVia is WriteFile with the temporary file made in tmpDir (which
// must be on the same filesystem as path) with the os.CreateTemp pattern,
// for callers whose scanners must recognise their temporary files. Both
// tmpDir and path's directory are synced after the rename.
func WriteFileVia(path string, data []byte, perm os.FileMode, tmpDir, pattern string) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(tmpDir, pattern)
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
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
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
