// Command crashhelper drives two gitstore folders, a and b, under -dir in an
// endless loop of edits, scans, restores and bundle exchanges (fast-forwards
// and merges with conflicts), so that gitstore's crash test can kill it with
// SIGKILL at a random moment and check what it left behind.
//
// After every successful Scan, Restore or ApplyBundle it appends to
// <dir>/<store>.committed the blob hash of every file then in that folder:
// contents that are committed for sure, which must survive any later crash.
package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/peersync/peersync/gitstore"
)

func main() {
	dir := flag.String("dir", "", "work directory (required)")
	seed := flag.Uint64("seed", 1, "random seed")
	steps := flag.Int("steps", 0, "stop after this many steps (0 = run until killed)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("crashhelper: -dir is required")
	}
	if err := run(*dir, *seed, *steps); err != nil {
		log.Fatalf("crashhelper: %v", err)
	}
}

type folder struct {
	name, peer string // our name; the DeviceID-like name the other side knows us by
	s          *gitstore.Store
	dir        string
	log        *os.File
}

func open(root, name, peer string) (*folder, error) {
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s, err := gitstore.Open(gitstore.Config{Dir: dir, Create: true, AuthorName: name, AuthorEmail: peer + "@peersync"})
	if err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(filepath.Join(root, name+".committed"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &folder{name: name, peer: peer, s: s, dir: dir, log: lf}, nil
}

// record appends the blob hash of every file in the folder, in one write.
func (f *folder) record() error {
	var b bytes.Buffer
	err := filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == gitstore.GitDirName {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".peersync-tmp-") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", len(data))
		h.Write(data)
		fmt.Fprintf(&b, "%x\n", h.Sum(nil))
		return nil
	})
	if err != nil {
		return err
	}
	_, err = f.log.Write(b.Bytes())
	return err
}

var names = []string{"a.txt", "b.txt", "d1/c.txt", "d1/d.txt", "d1/d2/e.txt", "d3/f.bin", "g.txt"}

// edit writes, rewrites or deletes a few files.
func (f *folder) edit(r *rand.Rand) error {
	for range 1 + r.IntN(4) {
		p := filepath.Join(f.dir, filepath.FromSlash(names[r.IntN(len(names))]))
		if r.IntN(5) == 0 {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		n := 1 + r.IntN(2000)
		if r.IntN(10) == 0 {
			n = 100_000 + r.IntN(200_000)
		}
		data := make([]byte, n)
		for i := range data {
			data[i] = byte('a' + r.IntN(26))
		}
		// A name may be blocked by a file or directory of the merged tree
		// (a conflict between a file and a directory): skip it then.
		if os.MkdirAll(filepath.Dir(p), 0o755) != nil || os.WriteFile(p, data, 0o644) != nil {
			continue
		}
	}
	return nil
}

func run(root string, seed uint64, steps int) error {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	a, err := open(root, "a", "AAAAAAA")
	if err != nil {
		return err
	}
	b, err := open(root, "b", "BBBBBBB")
	if err != nil {
		return err
	}
	fmt.Println("ready")
	for step := 0; steps == 0 || step < steps; step++ {
		x, y := a, b
		if r.IntN(2) == 0 {
			x, y = b, a
		}
		switch op := r.IntN(10); {
		case op < 5: // edit and scan
			if err := x.edit(r); err != nil {
				return err
			}
			if _, err := x.s.Scan(ctx); err != nil {
				return fmt.Errorf("scan %s: %w", x.name, err)
			}
			if err := x.record(); err != nil {
				return err
			}
		case op < 6: // restore a file to an older version
			h, err := x.s.History(ctx, names[r.IntN(len(names))], 0)
			if err != nil {
				return fmt.Errorf("history %s: %w", x.name, err)
			}
			if len(h) == 0 {
				continue
			}
			c := h[r.IntN(len(h))]
			if _, err := x.s.Restore(ctx, c.Path, c.Commit); err != nil {
				if errors.Is(err, gitstore.ErrLocalEdit) || strings.Contains(err.Error(), "directory") ||
					strings.Contains(err.Error(), "is a file") || strings.Contains(err.Error(), "blocked") {
					continue
				}
				return fmt.Errorf("restore %s: %w", x.name, err)
			}
			if err := x.record(); err != nil {
				return err
			}
		default: // x sends y what y lacks; y applies (fast-forward or merge)
			yh, err := y.s.Head()
			if err != nil {
				return err
			}
			var since []gitstore.Hash
			if !yh.IsZero() {
				since = append(since, yh)
			}
			var buf bytes.Buffer
			if _, err := x.s.WriteBundle(ctx, &buf, since); errors.Is(err, gitstore.ErrNothingToSend) {
				continue
			} else if err != nil {
				return fmt.Errorf("bundle %s: %w", x.name, err)
			}
			if _, err := y.s.ApplyBundle(ctx, &buf, x.peer); err != nil {
				return fmt.Errorf("apply %s->%s: %w", x.name, y.name, err)
			}
			if err := y.record(); err != nil {
				return err
			}
		}
	}
	for _, f := range []*folder{a, b} {
		if err := f.s.Close(); err != nil {
			return err
		}
		f.log.Close()
	}
	return nil
}
