package gitstore

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5/plumbing/filemode"

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
	c := &nameCheck{goos: s.fst.disk.goos}
	if s.fst.disk.caseFold {
		c.fold = map[string]string{}
		c.addTree(root, "")
	}
	return c
}

// newNameCheckFlat returns the name rules for the tree given as flat paths.
func (s *Store) newNameCheckFlat(files map[string]fileEntry) *nameCheck {
	c := &nameCheck{goos: s.fst.disk.goos}
	if s.fst.disk.caseFold {
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
// touching the process-wide umask. keepsModes: a chmod to 0600 sticks (not
// so on FAT, where every file shows the mount's fixed mode).
func probeDisk(dir string) (caseFold bool, mask fs.FileMode, keepsModes bool, err error) {
	f, err := atomicfile.CreateTemp(dir, "peersync-probe-*", 0o777)
	if err != nil {
		return false, 0o777, true, err
	}
	name := f.Name()
	fi, err := f.Stat()
	f.Close()
	defer os.Remove(name)
	if err != nil {
		return false, 0o777, true, err
	}
	mask = fi.Mode().Perm()
	if err := os.Chmod(name, 0o600); err == nil {
		if fi, err := os.Lstat(name); err == nil {
			keepsModes = fi.Mode().Perm() == 0o600
		}
	}
	base := filepath.Base(name)
	upper := strings.ToUpper(base)
	_, err = os.Lstat(filepath.Join(dir, upper))
	return upper != base && err == nil, mask, keepsModes, nil
}

// openDiskLocked sets the naming rules of the folder's file system (Open),
// and makes a .peersync that an older version created 0755 private (0700):
// it holds every version of every file, private ones and deleted ones too.
func (s *Store) openDiskLocked() {
	if fi, err := os.Lstat(s.gitDir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		err := os.Chmod(s.gitDir, fi.Mode().Perm()&0o700)
		if fi2, serr := os.Lstat(s.gitDir); err == nil && serr == nil && fi2.Mode().Perm()&0o077 == 0 {
			s.opts.log.Info("gitstore: .peersync made private (0700)", "dir", s.gitDir, "was", fi.Mode().Perm())
		} else {
			// FAT keeps no modes: nothing to do there.
			s.opts.log.Debug("gitstore: cannot make .peersync private", "dir", s.gitDir, "err", err)
		}
	}
	s.fst.disk.goos = runtime.GOOS
	fold, mask, modes, err := probeDisk(s.gitDir)
	if err != nil {
		// A read-only .peersync (history read from a read-only disk): no
		// checkout will write there either.
		s.opts.log.Debug("gitstore: cannot probe the folder's file system; assuming it is case-sensitive and keeps modes", "dir", s.gitDir, "err", err)
	}
	s.fst.disk.caseFold, s.fst.disk.mask, s.fst.disk.keepsModes = fold, mask, modes
	if !modes {
		s.opts.log.Info("gitstore: the folder's file system does not keep file modes: the executable bit is not read from it", "dir", s.dir)
	}
	if fold {
		s.opts.log.Info("gitstore: the folder's file system ignores case: names equal but for case are checked out once", "dir", s.dir)
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

// holdableOnlyLocked returns files without the paths this device cannot
// hold (files itself when there are none). For the tree a checkout writes
// (report true), those paths are recorded as the checkout's skipped ones,
// for Store.Skipped and ApplyResult.Skipped, and logged when new.
func (s *Store) holdableOnlyLocked(files map[string]fileEntry, report bool) map[string]fileEntry {
	if !s.fst.disk.caseFold && s.fst.disk.goos != "windows" {
		if report {
			s.fst.disk.checkoutSkips = nil
		}
		return files
	}
	c := s.newNameCheckFlat(files)
	var out map[string]fileEntry
	skips := map[string]error{}
	for p := range files {
		if err := c.holdable(p); err != nil {
			skips[p] = err
		}
	}
	if len(skips) == 0 {
		out = files
	} else {
		out = make(map[string]fileEntry, len(files)-len(skips))
		for p, e := range files {
			if _, skip := skips[p]; !skip {
				out[p] = e
			}
		}
	}
	if report {
		for p, err := range skips {
			if _, seen := s.fst.disk.checkoutSkips[p]; !seen {
				s.opts.log.Warn("gitstore: checkout: name not written; the file stays in the history and on the peers that can hold it",
					"path", p, "err", err)
			}
		}
		s.fst.disk.checkoutSkips = skips
	}
	return out
}

// blobSizeLocked returns the size of e's content (0 if unknown), read from
// the object's header only.
func (s *Store) blobSizeLocked(e fileEntry) int64 {
	n, err := s.st.EncodedObjectSize(e.hash)
	if err != nil {
		return 0
	}
	return n
}

// fixModesLocked, on a file system that does not keep file modes (FAT shows
// every file as executable), gives each found file the mode main has for it
// (regular for a new file) instead of the one read from the disk, as git
// does with core.fileMode false.
func (s *Store) fixModesLocked(tracked, found map[string]fileEntry) {
	if s.fst.disk.keepsModes {
		return
	}
	for p, e := range found {
		if e.mode != filemode.Regular && e.mode != filemode.Executable {
			continue
		}
		if old, ok := tracked[p]; ok && (old.mode == filemode.Regular || old.mode == filemode.Executable) {
			e.mode = old.mode
		} else {
			e.mode = filemode.Regular
		}
		found[p] = e
	}
}

// holdableInLocked returns an error wrapping ErrNameNotHoldable when this
// device cannot hold the path p in main's tree root with p in it (for a
// Restore, which writes one path by name).
func (s *Store) holdableInLocked(root *dirNode, p string) error {
	if !s.fst.disk.caseFold && s.fst.disk.goos != "windows" {
		return nil
	}
	c := s.newNameCheckLocked(root)
	if c.fold != nil {
		for i := 0; i <= len(p); i++ {
			if i == len(p) || p[i] == '/' {
				c.add(p[:i])
			}
		}
	}
	return c.holdable(p)
}
