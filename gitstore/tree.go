package gitstore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// fileEntry is a non-directory tree entry: a blob (regular, executable or
// symlink).
type fileEntry struct {
	mode filemode.FileMode
	hash plumbing.Hash
}

// dirNode is an in-memory tree. Subtrees whose hash is still valid are not
// rewritten: a commit only writes the trees on the changed path.
type dirNode struct {
	files map[string]fileEntry
	dirs  map[string]*dirNode
	hash  plumbing.Hash // valid when clean
	clean bool
	// enc is the encoding of the version last written, nil if none (see
	// objwriter_tree.go). files and dirs change only through set and remove,
	// which record the touched names in it.
	enc *treeEnc
}

func newDirNode() *dirNode {
	return &dirNode{files: map[string]fileEntry{}, dirs: map[string]*dirNode{}}
}

// loadTreeLocked reads the tree h (recursively) into memory.
func (s *Store) loadTreeLocked(h plumbing.Hash) (*dirNode, error) {
	t, err := object.GetTree(s.st, h)
	if err != nil {
		return nil, fmt.Errorf("gitstore: tree %s: %w", h, err)
	}
	d := newDirNode()
	for _, e := range t.Entries {
		if e.Mode == filemode.Dir {
			sub, err := s.loadTreeLocked(e.Hash)
			if err != nil {
				return nil, err
			}
			d.dirs[e.Name] = sub
			continue
		}
		d.files[e.Name] = fileEntry{mode: e.Mode, hash: e.Hash}
	}
	d.hash, d.clean = h, true
	return d, nil
}

// commitTreeLocked loads the tree of commit c; the zero hash gives an empty
// tree.
func (s *Store) commitTreeLocked(c plumbing.Hash) (*dirNode, error) {
	if c.IsZero() {
		return newDirNode(), nil
	}
	cm, err := s.commitLocked(c)
	if err != nil {
		return nil, err
	}
	return s.loadTreeLocked(cm.TreeHash)
}

// headTreeLocked returns main and the in-memory tree of it, loading it when
// main moved since the last call.
func (s *Store) headTreeLocked() (plumbing.Hash, *dirNode, error) {
	head, err := s.refLocked(mainRef)
	if err != nil {
		return head, nil, err
	}
	if s.cur.root == nil || s.cur.rootHead != head {
		root, err := s.commitTreeLocked(head)
		if err != nil {
			return head, nil, err
		}
		s.cur.root, s.cur.rootHead = root, head
	}
	return head, s.cur.root, nil
}

// get returns the file entry at path p.
func (d *dirNode) get(p string) (fileEntry, bool) {
	parts := strings.Split(p, "/")
	for _, c := range parts[:len(parts)-1] {
		d = d.dirs[c]
		if d == nil {
			return fileEntry{}, false
		}
	}
	e, ok := d.files[parts[len(parts)-1]]
	return e, ok
}

// set puts a file entry at path p, creating directories. It fails when a
// parent is a file or p is a directory.
func (d *dirNode) set(p string, e fileEntry) error {
	parts := strings.Split(p, "/")
	for _, c := range parts[:len(parts)-1] {
		if _, isFile := d.files[c]; isFile {
			return fmt.Errorf("gitstore: %q: parent %q is a file", p, c)
		}
		d.clean = false
		d.touch(c)
		sub := d.dirs[c]
		if sub == nil {
			sub = newDirNode()
			d.dirs[c] = sub
		}
		d = sub
	}
	name := parts[len(parts)-1]
	if _, isDir := d.dirs[name]; isDir {
		return fmt.Errorf("gitstore: %q is a directory", p)
	}
	d.clean = false
	d.touch(name)
	d.files[name] = e
	return nil
}

// remove deletes the file at p and then any directory left empty.
func (d *dirNode) remove(p string) bool {
	c, rest, more := strings.Cut(p, "/")
	if !more {
		if _, ok := d.files[c]; !ok {
			return false
		}
		delete(d.files, c)
		d.clean = false
		d.touch(c)
		return true
	}
	sub := d.dirs[c]
	if sub == nil || !sub.remove(rest) {
		return false
	}
	if len(sub.files) == 0 && len(sub.dirs) == 0 {
		delete(d.dirs, c)
	}
	d.clean = false
	d.touch(c)
	return true
}

// flatten adds every file under d to out, keyed by slash path.
func (d *dirNode) flatten(prefix string, out map[string]fileEntry) {
	for name, e := range d.files {
		out[prefix+name] = e
	}
	for name, sub := range d.dirs {
		sub.flatten(prefix+name+"/", out)
	}
}

func (d *dirNode) flat() map[string]fileEntry {
	m := map[string]fileEntry{}
	d.flatten("", m)
	return m
}

// buildTree makes an in-memory tree from a flat map.
func buildTree(files map[string]fileEntry) (*dirNode, error) {
	d := newDirNode()
	for _, p := range sortedKeys(files) {
		if err := d.set(p, files[p]); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
