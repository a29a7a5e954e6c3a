package gitstore

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/go-git/go-billy/v5"

	"github.com/peersync/peersync/internal/atomicfile"
)

// Names a peer's tree may hold that this device cannot (package
// documentation, "Names this device cannot hold"): on Windows, reserved
// device names, names ending in a dot or space and the characters Windows
// forbids; on a case-insensitive file system, names equal but for case.
// Such a path is skipped by checkouts (and reported), never written, and
// never committed as deleted by a scan, so it stays in the history for the
// peers that can hold it. Bundles holding them are accepted.

// nameCheck decides which paths of one tree this device can hold.
type nameCheck struct {
	goos string
	// fold maps the case-folded form of every file and directory path of
	// the tree to the one that wins it (the smallest in byte order); nil
	// when the file system is case-sensitive.
	fold map[string]string
}

// newNameCheckLocked returns the name rules for main's tree root.
func (s *Store) newNameCheckLocked(root *dirNode) *nameCheck {
	c := &nameCheck{goos: s.disk.goos}
	if s.disk.caseFold {
		c.fold = map[string]string{}
		c.addTree(root, "")
	}
	return c
}

// newNameCheckFlat returns the name rules for the tree given as flat paths.
func (s *Store) newNameCheckFlat(files map[string]fileEntry) *nameCheck {
	c := &nameCheck{goos: s.disk.goos}
	if s.disk.caseFold {
		c.fold = map[string]string{}
		for p := range files {
			for i := 0; i <= len(p); i++ {
				if i == len(p) || p[i] == '/' {
					c.add(p[:i])
				}
			}
		}
	}
	return c
}

func (c *nameCheck) addTree(d *dirNode, prefix string) {
	for name := range d.files {
		c.add(prefix + name)
	}
	for name, sub := range d.dirs {
		c.add(prefix + name)
		c.addTree(sub, prefix+name+"/")
	}
}

func (c *nameCheck) add(p string) {
	k := foldName(p)
	if cur, ok := c.fold[k]; !ok || p < cur {
		c.fold[k] = p
	}
}

// foldName is the key under which a case-insensitive file system finds p.
func foldName(p string) string { return strings.ToLower(p) }

// holdable returns nil when this device can hold the slash path p, else an
// error wrapping ErrNameNotHoldable that says why.
func (c *nameCheck) holdable(p string) error {
	if c.goos == "windows" {
		for _, comp := range strings.Split(p, "/") {
			if err := windowsName(comp); err != nil {
				return fmt.Errorf("%w: %w", ErrNameNotHoldable, err)
			}
		}
	}
	if c.fold == nil {
		return nil
	}
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		if w, ok := c.fold[foldName(p[:i])]; ok && w != p[:i] {
			return fmt.Errorf("%w: %q and %q differ only in case on a case-insensitive file system (%q is kept)",
				ErrNameNotHoldable, p[:i], w, w)
		}
	}
	return nil
}

// windowsName returns why Windows cannot hold the name c, or nil.
func windowsName(c string) error {
	if isWindowsReserved(c) {
		return fmt.Errorf("%q is a reserved device name on Windows", c)
	}
	if strings.HasSuffix(c, ".") || strings.HasSuffix(c, " ") {
		return fmt.Errorf("%q ends with a dot or space, which Windows drops", c)
	}
	for _, r := range c {
		if r < 0x20 || strings.ContainsRune(`<>:"|?*`, r) {
			return fmt.Errorf("%q contains %q, which Windows forbids in names", c, r)
		}
	}
	return nil
}

// probeDisk creates a file in dir (a writable directory on the folder's file
// system) asking for permissions 0777, to learn two things. caseFold: the
// file system ignores case (the file, created under a lower-case name, is
// found under its upper-case one). mask: the permission bits a new file
// really gets (0777 less the umask, or what the mount imposes), read without
// touching the process-wide umask.
func probeDisk(dir string) (caseFold bool, mask fs.FileMode, err error) {
	f, err := atomicfile.CreateTemp(dir, "peersync-probe-*", 0o777)
	if err != nil {
		return false, 0o777, err
	}
	name := f.Name()
	fi, err := f.Stat()
	f.Close()
	defer os.Remove(name)
	if err != nil {
		return false, 0o777, err
	}
	mask = fi.Mode().Perm()
	base := filepath.Base(name)
	upper := strings.ToUpper(base)
	_, err = os.Lstat(filepath.Join(dir, upper))
	return upper != base && err == nil, mask, nil
}

// openDiskLocked sets the naming rules of the folder's file system (Open).
func (s *Store) openDiskLocked() {
	s.disk.goos = runtime.GOOS
	fold, mask, err := probeDisk(s.gitDir)
	if err != nil {
		s.log.Warn("gitstore: cannot tell whether the file system ignores case; assuming it does not", "dir", s.gitDir, "err", err)
	}
	s.disk.caseFold, s.disk.mask = fold, mask
	if fold {
		s.log.Info("gitstore: the folder's file system ignores case: names equal but for case are checked out once", "dir", s.dir)
	}
}

// objectFS is the file system go-git writes .peersync through: go-git makes
// every loose object 0444, which objectFS narrows to the permissions a new
// file gets here (0444 less the umask), so a deleted private file's old
// versions are not readable by other users.
type objectFS struct {
	billy.Filesystem
	mask fs.FileMode
}

// Chmod applies mode less what the umask removes.
func (o objectFS) Chmod(name string, mode fs.FileMode) error {
	c, ok := o.Filesystem.(billy.Chmod)
	if !ok {
		return nil
	}
	return c.Chmod(name, mode&(o.mask|^fs.ModePerm))
}
