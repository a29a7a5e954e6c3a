package gitstore

import "context"

// Big files last. A Scan (with Config.ScanProgress set: the engine's
// scans, which announce what a scan publishes) that finds big changed files
// beside other changes commits the other changes first and publishes them,
// then reads the big files and commits them: a first sync of a folder of
// documents and one 256 MiB video sends the documents while the video is
// being hashed, instead of after. Each pass keeps the crash order (pack,
// index, then ref), and each file is still one commit. Variables for
// tests.
var (
	// bigLaterFile is the size from which a changed file waits for the
	// second pass.
	bigLaterFile int64 = 16 << 20
	// bigLaterTotal is how much the big files must add up to for the
	// split to be worth a second pack and a second announcement.
	bigLaterTotal int64 = 64 << 20
)

// deferBigLocked takes the big changed files out of scans (they then look
// unchanged to this pass) and returns their slash paths, when they add up
// to bigLaterTotal and something else may have changed too; otherwise it
// changes nothing and returns nil. Only a Scan that reports its progress
// splits, and never its own second pass.
func (s *Store) deferBigLocked(scans []*dirScan) []string {
	if !s.fst.meter.on || s.fst.bigPass {
		return nil
	}
	isBig := func(f scanFile) bool {
		return !f.cached && f.fi.Mode().IsRegular() && f.fi.Size() >= bigLaterFile
	}
	var big int64
	others := 0
	for _, ds := range scans {
		for _, f := range ds.changed {
			if isBig(f) {
				big += f.fi.Size()
			} else {
				others++
			}
		}
		others += len(ds.gone) + len(ds.goneDirs)
	}
	if big < bigLaterTotal || others == 0 {
		return nil
	}
	var late []string
	for _, ds := range scans {
		kept := ds.changed[:0]
		for _, f := range ds.changed {
			if isBig(f) {
				late = append(late, f.path)
			} else {
				kept = append(kept, f)
			}
		}
		ds.changed = kept
	}
	return late
}

// scanBigLaterLocked is the second pass: it tells Config.ScanProgress that
// first (the first pass's commits, main at the last) is published, then
// commits the big files at late, as the watcher's targeted scan does
// (scanPathsLocked: their directories are listed again, so whatever else
// changed there meanwhile is committed too).
func (s *Store) scanBigLaterLocked(ctx context.Context, first []Change, late []string) ([]Change, error) {
	if len(first) > 0 {
		s.fst.meter.published(first[len(first)-1].Commit, len(first))
	}
	s.fst.bigPass = true
	defer func() { s.fst.bigPass = false }()
	return s.scanPathsLocked(ctx, late)
}
