package gitstore

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// FuzzReadBundleHeader feeds arbitrary bytes to the bundle header parser: it
// must never panic, never read past its caps, and what it accepts must be
// well formed.
func FuzzReadBundleHeader(f *testing.F) {
	h := strings.Repeat("ab", 20)
	f.Add([]byte("# v2 git bundle\n" + h + " refs/heads/main\n\nPACK"))
	f.Add([]byte("# v2 git bundle\n-" + h + " add x\n" + h + " refs/heads/main\n\n"))
	f.Add([]byte("# v3 git bundle\n@object-format=sha1\n" + h + " refs/heads/main\n\n"))
	f.Add([]byte("# v2 git bundle\n" + h + "\n\n"))
	f.Add([]byte("# v2 git bundle\n\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		hdr, err := readBundleHeader(r)
		if err != nil {
			return
		}
		if len(hdr.refs) == 0 {
			t.Fatal("accepted a header without refs")
		}
		if len(hdr.refs)+len(hdr.prereqs) > maxHeaderLines {
			t.Fatal("accepted too many lines")
		}
		for _, ref := range hdr.refs {
			if ref.name == "" || strings.ContainsAny(ref.name, " \x00") {
				t.Fatalf("bad ref name %q", ref.name)
			}
		}
	})
}

// FuzzReadPack feeds arbitrary bytes to the packfile reader: errors are
// fine, panics and runaway allocations are not.
func FuzzReadPack(f *testing.F) {
	c := newCrafter()
	c.commit(c.tree([]rawEntry{file("a", strings.Repeat("abc", 100)), file("b", strings.Repeat("abc", 101))}))
	var buf bytes.Buffer
	if _, err := packfile.NewEncoder(&buf, c.st, false).Encode(c.hashes, 10); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("PACK\x00\x00\x00\x02\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := readPack(t.Context(), bufio.NewReader(bytes.NewReader(data)), 1<<20,
			func(plumbing.Hash) (*packObject, error) { return nil, nil })
		if err != nil {
			return
		}
		for _, o := range objs.list {
			if plumbing.ComputeHash(o.typ, o.data) != o.hash || objs.get(o.hash) != o {
				t.Fatal("object stored under the wrong hash")
			}
		}
	})
}
