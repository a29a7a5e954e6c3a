package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/internal/atomicfile"
	"github.com/peersync/peersync/sync"
)

type hashList []gitstore.Hash

func (h *hashList) String() string { return fmt.Sprint(*h) }
func (h *hashList) Set(v string) error {
	x, err := gitstore.ParseHash(v)
	if err != nil {
		return fmt.Errorf("--since %q: want a 40-hex commit ID (see `desktop status` or git log)", v)
	}
	*h = append(*h, x)
	return nil
}

// bundle implements `bundle export` and `bundle import`, the sneakernet
// path: a plain git bundle that `git fetch FILE` and `git bundle verify`
// accept, carried by hand; or, with --to, the same bundle sealed to the
// recipients (age, signed by us), which import recognises and opens.
func (a *app) bundle(ctx context.Context, args []string) error {
	const use = "usage: bundle export --folder ID [--since REV]... [--to DEVICEID|PUBKEYLINE]... FILE | bundle import --folder ID FILE"
	if len(args) == 0 {
		return UsageError{use}
	}
	fs := flag.NewFlagSet("bundle "+args[0], flag.ContinueOnError)
	folder := fs.String("folder", "", "folder ID")
	var since hashList
	var to multiFlag
	if args[0] == "export" {
		fs.Var(&since, "since", "a commit the recipient has (repeatable)")
		fs.Var(&to, "to", "seal to this DEVICEID|PUBKEYLINE (repeatable)")
	}
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if *folder == "" || len(pos) != 1 || (args[0] != "export" && args[0] != "import") {
		return UsageError{use}
	}
	e, err := a.ownEngine("bundle " + args[0])
	if err != nil {
		return err
	}
	defer e.Close()
	if args[0] == "export" {
		var recipients []crypto.DeviceID
		for _, r := range to {
			d, err := crypto.ParsePeer(r)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			recipients = append(recipients, d)
		}
		return a.bundleExport(ctx, e, *folder, since, recipients, pos[0])
	}
	return a.bundleImport(ctx, e, *folder, pos[0])
}

func (a *app) bundleExport(ctx context.Context, e *sync.Engine, folder string, since []gitstore.Hash, to []crypto.DeviceID, path string) error {
	// Write beside the target and rename, so a failed export never leaves a
	// truncated bundle under the requested name.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	m := a.newMeter("bundle export "+folder, 0)
	defer m.abandon()
	w := bufio.NewWriterSize(countingWriter{tmp, m}, 1<<20)
	var info gitstore.BundleInfo
	if len(to) > 0 {
		if len(since) == 0 {
			since = nil // let the sync table say what the recipient has
		}
		info, err = e.ExportSealedBundle(ctx, folder, since, to, w)
	} else {
		info, err = e.ExportBundle(ctx, folder, since, w)
	}
	if errors.Is(err, gitstore.ErrNothingToSend) {
		_ = tmp.Close()
		return fmt.Errorf("nothing to export: the recipient already has everything since %v", since)
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	m.finish(false)
	_ = atomicfile.SyncDir(filepath.Dir(path))
	if len(to) > 0 {
		fmt.Fprintf(a.stdout, "sealed to %d recipient(s); ", len(to))
	}
	fmt.Fprintf(a.stdout, "exported %s head %s (%d objects, %d prerequisites) to %s\n", folder, info.Head, info.Objects, len(info.Prerequisites), path)
	return nil
}

func (a *app) bundleImport(ctx context.Context, e *sync.Engine, folder, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	m := a.newMeter("bundle import "+filepath.Base(path), size)
	defer m.abandon()
	br := bufio.NewReaderSize(countingReader{f, m}, 1<<20)
	prefix, _ := br.Peek(crypto.SealedPrefixLen)
	var res gitstore.ApplyResult
	if crypto.IsSealed(prefix) {
		var sender crypto.DeviceID
		res, sender, err = e.ImportSealedBundle(ctx, folder, br)
		if err == nil {
			fmt.Fprintf(a.stdout, "sealed by %s (verified)\n", sender)
		}
	} else {
		res, err = e.ImportBundle(ctx, folder, br, sync.ImportPeer)
	}
	if err == nil {
		m.finish(false)
	}
	if err != nil {
		var be *gitstore.BundleError
		if errors.As(err, &be) {
			return fmt.Errorf("refused %s, nothing was changed: %w", path, err)
		}
		return err
	}
	fmt.Fprintf(a.stdout, "imported %s: %s, head %s, %d files changed, %d conflicts\n", path, res.Kind, res.Head, len(res.Changed), len(res.Conflicts))
	for _, c := range res.Conflicts {
		fmt.Fprintf(a.stdout, "conflict copy %s\n", c)
	}
	return nil
}
