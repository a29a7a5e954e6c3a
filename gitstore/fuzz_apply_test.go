package gitstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// fuzzConfig is the configuration of FuzzApplyBundle's scratch stores:
// small limits, so that no input can cost much.
func fuzzConfig(dir string) Config {
	return Config{
		Dir: dir, AuthorName: "fuzz", AuthorEmail: "FUZZ@peersync",
		Now:           newClock(epoch).Now,
		MaxObjectSize: 8 << 20,
		Limits: Limits{MaxFiles: 2000, MaxBytes: 32 << 20, MaxDepth: 32, MaxPathLen: 512,
			MaxObjects: 10000, MaxTreeSize: 1 << 20, MaxSpoolBytes: 64 << 20, MinFreeBytes: -1},
	}
}

// fuzzStore opens a scratch store holding one fixed commit (a.txt = "a",
// always the same hash).
func fuzzStore(tb testing.TB) *Store {
	tb.Helper()
	cfg := fuzzConfig(tb.TempDir())
	cfg.Create = true
	s, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if err := os.WriteFile(filepath.Join(s.Dir(), "a.txt"), []byte("a"), 0o644); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Scan(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// copyTree copies the files and directories under src to dst.
func copyTree(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(to, fi.Mode().Perm()|0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, fi.Mode().Perm())
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// fuzzSeeds are bundles for FuzzApplyBundle: fast-forward, merge with a
// conflict, unrelated history, a delta resolved streaming, git's own
// bundles, and hostile trees. (testdata/fuzz/FuzzApplyBundle holds more.)
func fuzzSeeds(tb testing.TB) [][]byte {
	base := fuzzStore(tb)
	var out [][]byte
	// A peer's history on top of ours: a new file, then an edit of a.txt.
	peer, err := Open(Config{Dir: tb.TempDir(), Create: true, AuthorName: "peer", AuthorEmail: "PEER@peersync",
		Now: newClock(epoch.Add(time.Hour)).Now})
	if err != nil {
		tb.Fatal(err)
	}
	defer peer.Close()
	var all bytes.Buffer
	if _, err := base.WriteBundle(context.Background(), &all, nil); err != nil {
		tb.Fatal(err)
	}
	if _, err := peer.ApplyBundle(context.Background(), bytes.NewReader(all.Bytes()), "BASE"); err != nil {
		tb.Fatal(err)
	}
	baseHead, _ := base.Head()
	for _, edit := range []struct{ name, content string }{{"d/b.txt", "b"}, {"a.txt", "peer's a"}} {
		p := filepath.Join(peer.Dir(), filepath.FromSlash(edit.name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(edit.content), 0o644)
		if _, err := peer.Scan(context.Background()); err != nil {
			tb.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := peer.WriteBundle(context.Background(), &b, []Hash{baseHead}); err != nil {
			tb.Fatal(err)
		}
		out = append(out, b.Bytes())
	}
	bomb, _ := deltaBomb(2 << 20)
	c := newCrafter()
	h := c.commit(c.tree([]rawEntry{file("a.txt", "theirs"), dirE("x", file("y", "z"))}))
	var unrelated bytes.Buffer
	unrelated.WriteString("# v2 git bundle\n" + h.String() + " refs/heads/main\n\n")
	if _, err := packfile.NewEncoder(&unrelated, c.st, false).Encode(c.hashes, 10); err != nil {
		tb.Fatal(err)
	}
	return append(out, bomb, unrelated.Bytes(), all.Bytes())
}

// FuzzApplyBundle feeds arbitrary bytes to the whole apply path: bundle
// header, pack, delta resolution (in memory and streaming), validation,
// limits, then storing, merging and checking out into a scratch store.
// Errors are fine; a panic, a refusal that wrote something, or an accepted
// bundle that left the store inconsistent are not.
func FuzzApplyBundle(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	template := fuzzStore(f).Dir() // copied for a scratch store: faster than a scan
	root := f.TempDir()
	// A refused bundle must leave the store as it was, so the same scratch
	// store serves input after input until one is accepted (the inputs run
	// one at a time in a fuzzing process).
	var scratch *Store
	f.Cleanup(func() {
		if scratch != nil {
			scratch.Close()
		}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		if scratch == nil {
			dir, err := os.MkdirTemp(root, "scratch-")
			if err != nil {
				t.Fatal(err)
			}
			copyTree(t, template, dir)
			if scratch, err = Open(fuzzConfig(dir)); err != nil {
				t.Fatal(err)
			}
		}
		s := scratch
		before, err := s.Head()
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.ApplyBundle(context.Background(), bytes.NewReader(data), "PEER")
		var be *BundleError
		if !errors.As(err, &be) {
			defer func() { // not refused (it may have written): the next input gets a fresh copy
				s.Close()
				os.RemoveAll(s.Dir())
				scratch = nil
			}()
		}
		packs, _ := filepath.Glob(filepath.Join(s.Dir(), GitDirName, "objects", "pack", packTmpPrefix+"*"))
		if len(packs) > 0 {
			t.Fatalf("temporary files left: %v", packs)
		}
		after, herr := s.Head()
		if herr != nil {
			t.Fatal(herr)
		}
		if err != nil {
			if errors.As(err, &be) && after != before {
				t.Fatalf("a refused bundle moved main: %v", err)
			}
			if ph, _ := s.PeerHead("PEER"); errors.As(err, &be) && !ph.IsZero() {
				t.Fatalf("a refused bundle set the peer's ref: %v", err)
			}
			return
		}
		if res.Head != after {
			t.Fatalf("result head %s, main %s", res.Head, after)
		}
		// Whatever was accepted is a valid folder: every path passes the
		// rules and the history reads back.
		for p := range folderFiles(t, s.Dir()) {
			if err := ValidPath(p); err != nil {
				t.Fatalf("accepted bundle wrote %q: %v", p, err)
			}
			if strings.HasPrefix(p, tmpPrefix) {
				t.Fatalf("temporary file left: %q", p)
			}
		}
		if _, err := s.History(context.Background(), "", 0); err != nil {
			t.Fatalf("history after an accepted bundle: %v", err)
		}
	})
}
