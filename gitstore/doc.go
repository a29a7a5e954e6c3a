// Package gitstore keeps one shared folder's history in git: every change to
// every file is its own commit, histories travel between devices as git
// bundles, and diverged histories merge deterministically so that every
// device converges on the same tree.
//
// The package knows nothing about networks, peers' addresses or keys; the
// sync engine moves the bundles.
//
// # Common path
//
//	s, err := gitstore.Open(gitstore.Config{
//		Dir:         "/home/me/Shared",
//		Create:      true,                 // first time only; see "Folder guard"
//		AuthorName:  "laptop",
//		AuthorEmail: deviceID + "@peersync",
//	})
//	defer s.Close()
//
//	// One commit per changed file, within ~100 ms of a save, until ctx ends
//	// (or a guard trips: see "Guards").
//	err = s.Watch(ctx, 0, func(changes []gitstore.Change) { /* tell peers */ })
//	// Or scan when you choose:
//	changes, err := s.Scan(ctx)
//
//	// What happened to a file, newest first; put it back as a new commit.
//	hist, err := s.History(ctx, "notes.txt", 20)
//	c, err := s.Restore(ctx, "notes.txt", hist[1].Commit)
//
//	// Sending to a peer: only what it lacks. since = the commits the peer is
//	// known to have (for instance our record of its head, and its last bundle's
//	// head as recorded by PeerHead); unknown hashes are ignored.
//	info, err := s.WriteBundle(ctx, w, []gitstore.Hash{peerKnownHead})
//	// err == gitstore.ErrNothingToSend: the peer is up to date.
//
//	// Receiving from a peer: verified completely before anything is written.
//	res, err := s.ApplyBundle(ctx, r, peerDeviceID)
//	// res.Kind is UpToDate, FastForward or Merged; res.Changed lists the files
//	// written or deleted; res.Conflicts the conflict copies made.
//	var be *gitstore.BundleError
//	if errors.As(err, &be) { /* hostile or broken bundle: drop the peer */ }
//
// Every method is safe for concurrent use; one mutex serializes them. Methods
// called after Close return ErrClosed; ctx cancellation returns an error
// wrapping ctx.Err().
//
// # On-disk layout
//
//	<Dir>/                       the shared folder (the git work tree)
//	<Dir>/.peersync/             a git directory (core.bare = true)
//	    HEAD                     "ref: refs/heads/main"
//	    refs/heads/main          our history
//	    refs/peers/<ID>/main     the head of the last bundle applied from peer <ID>
//	    objects/pack/            packs (pack-*.pack + .idx): one per big Scan or applied bundle
//	    objects/xx/…             loose objects of small scans, applies, merges and restores
//	    peersync-statcache.json  stat cache: path -> size, mtime, mode, inode, blob
//	<Dir>/**/.peersync-tmp-*     our temporary files (always ignored)
//	<Dir>/**/.peersyncignore     ignore rules (ordinary files, synced)
//
// The git CLI works on it: git --git-dir=<Dir>/.peersync --work-tree=<Dir> log.
// No git index is kept (so `git status` shows everything as staged for
// deletion); the stat cache plays its role. A damaged or missing stat cache
// only costs re-hashing. Files modified less than 2 s before a scan are not
// cached (the racy-git problem) and are hashed again next time.
//
// # Guards
//
// Folder guard: .peersync is also the marker that the folder is really
// there. Open returns ErrNotInitialized when it is missing and Config.Create
// is false, and Scan, ApplyBundle, IntegratePeer, Restore and Watch return an
// error wrapping ErrNotInitialized if it disappears later (an unmounted
// disk), before writing anything: a vanished folder is never read as "every
// file deleted".
//
// Mass-delete guard (DESIGN.md section 5): a Scan that would commit the
// deletion of, or an ApplyBundle or IntegratePeer whose checkout would
// delete, more than Config.MaxDeleteShare (default 0.5) of the tracked files
// AND more than Config.MaxDeleteCount (default 100) files returns a
// *MassDeleteError (wrapping ErrMassDelete) with the counts. A refused Scan
// commits nothing at all, not even the other changes it found; a refused
// ApplyBundle leaves main and the folder untouched but has stored the
// verified objects and set refs/peers/<peer>/main, so after the user
// confirms with AllowMassDeleteOnce, IntegratePeer(ctx, peer) finishes the
// job without the bundle being sent again (applying it again works too).
// Local scans are also judged over time: the deletions committed by local
// scans (Scan, the watcher's scans, and the scan that ApplyBundle,
// IntegratePeer and Restore run first) in the last 60 s by Config.Now's
// clock, plus the scan's own, are held against the number of files tracked
// when those 60 s started, with the same thresholds. So an rm -rf that the
// watcher sees in several batches, each under the threshold, is refused by
// the batch that takes the sum over it (Deleted and Total then give the sum
// and that number); deletions applied from peers are not counted.
// AllowMassDeleteOnce lets exactly one refused operation through (the
// deletions counted so far are then forgotten: the user saw them);
// Config.AllowMassDelete turns the guard off. The sync engine pauses the
// folder and asks the user when it sees ErrMassDelete (Watch stops with it).
//
// # Commit format
//
// Scan makes one commit per file, author = committer = AuthorName
// <AuthorEmail>, time from Config.Now (whole seconds), one parent (none for
// the first commit), message "add <path>\n", "modify <path>\n" or
// "delete <path>\n" with a slash-separated path. Deletions are committed
// first, then additions and modifications, each group in path order. Modes:
// 100644, 100755 (any executable bit) and, with AllowSymlinks, 120000.
// Only the trees on the changed path are written for each commit; the rest is
// shared with the previous commit.
//
// # Packs
//
// Scan streams every object it makes into one new packfile, as
// `git fast-import` does, rather than one file per object: a blob is hashed
// and compressed in one pass over the file (stored uncompressed when it
// looks incompressible, BestSpeed when large), and each new version of a
// tree is an OFS_DELTA against its previous version, built from the known
// edit (copy the unchanged bytes before and after the changed entry, insert
// the entry), with a whole tree every 50 versions to bound delta chains. A
// commit in a folder of 1,000 entries thus costs tens of bytes of tree, not
// ~35 KB. The pack is written as objects/pack/tmp_pack_*, its object count
// and checksum fixed at the end, fsynced and renamed to pack-<sha>.pack; then
// its version 2 index is written the same way (pack-<sha>.idx, last: a pack
// is visible only with its index); only then does main move. Objects an
// interrupted scan wrote are thrown away with the pack, and the stat cache
// goes back to its saved copy so nothing names them. ApplyBundle stores a
// bundle's objects the same way, in a pack of its own, keeping the deltas
// the bundle brought; a merge's trees and commit, and a restore's, go
// through the same writer, complete before any file or ref changes. A scan,
// apply, merge or restore that makes fewer than 100 objects (and no blob
// over 64 KiB) writes them loose instead, so the many small scans of a
// watched folder do not each leave a tiny pack. The git CLI reads these
// packs (git fsck --strict, git verify-pack).
//
// Scan lists directories and Lstats their entries in parallel (a few
// goroutines, one directory per job, as git's core.preloadIndex), compares
// each directory with main's tree in memory and with the stat cache, and
// only reads, hashes and commits (serially, in path order) what differs:
// an unchanged file costs one Lstat and one map lookup. The stat cache is
// rewritten only when an entry changed.
//
// Scan skips .peersync, any subdirectory containing its own .peersync or .git
// (an independent history, as git skips nested repositories), our temporary
// files, names that fail ValidPath, symlinks unless AllowSymlinks, and
// anything that is not a regular file.
//
// A merge commit made by ApplyBundle has the two heads as parents sorted by
// hash, the signature (name, e-mail, time) of the newer head's committer, the
// message "merge\n" and the merged tree. It is therefore the same commit on
// both peers, so once each has applied the other's bundle they are at the
// same head and the next exchange is empty.
//
// # Bundle format
//
// A bundle is a git bundle, version 2, exactly as `git bundle create` writes
// it:
//
//	# v2 git bundle\n
//	-<40 hex> <subject of that commit>\n     one per prerequisite (0..n)
//	<40 hex> refs/heads/main\n               exactly one ref
//	\n
//	<packfile>
//
// The packfile is git's (version 2): "PACK", version, object count (32-bit
// big endian each), then each object as a type-and-size varint header
// followed by zlib data (deltas are OFS_DELTA against an earlier object, or,
// in git's thin bundles, REF_DELTA against an object the receiver has), then
// the SHA-1 of everything before it.
//
// WriteBundle packs the objects reachable from main and not from the since
// commits it has. Like git's rev-list it walks commits newest first and
// stops once only commits the peer has remain queued, then compares each
// new commit's tree with its parents' by hash, descending only into
// subtrees that differ: a 1-commit bundle costs the same in a history of 10
// or 100,000 commits. Two versions of a tree are compared as bytes: the
// entries in their common prefix and suffix are the same, and only those
// between are parsed (the offsets of a version's entries are derived from
// its previous version's), so a commit in a folder of 5,000 files costs its
// changed entry, not 5,000. The prerequisites are the walk's boundary (the
// peer's commits that are parents of new ones), as with
// `git bundle create main ^since`; the bundle header goes out as soon as the
// commit walk is done, before the object walk and the pack.
//
// Objects are read from our packs directly (their indexes in memory, the
// packs through a few 1 MiB read windows) and, as git's pack-objects does,
// go out as stored: the compressed bytes are copied after a CRC-32 check
// against the pack index (a damaged entry is an error, never sent); a
// stored delta is kept when its base is sent before it (an OFS_DELTA
// re-pointed at the base's place in the bundle, chains held to 50) or is
// the object's previous version, which the peer has (a REF_DELTA: a thin
// pack, as git's bundles are). A scan stores each tree version as a delta
// against the previous one, so a first sync is mostly a copy of our packs.
// The rest (loose objects, a delta whose base comes later, as in packs
// made by git) is written fresh: trees and small blobs as deltas against
// their previous version when that pays, everything else whole, streamed.
// The output passes `git bundle verify` and `git fetch`.
// ApplyBundle also accepts v3 bundles whose only capability is
// @object-format=sha1.
//
// # Safety rules
//
// A bundle comes from another device and is never trusted. ApplyBundle
// checks, in this order and before anything is written (no object, no ref,
// no file): the header (at most 1 MiB and 1000 lines); the refs (only
// refs/heads/main, once); the prerequisites (each must be a commit we have);
// the pack (trailer checksum, sizes, no trailing bytes, every object at most
// MaxObjectSize, deltas resolvable; every object is named by the hash of its
// content, so nothing can claim a name it does not have); connectivity
// (every commit, tree and blob reachable from the new head is in the pack or
// already ours); and every entry of every new tree:
//
//   - a name must not be empty, ".", "..", or contain "/", "\" or NUL;
//   - no component may equal ".git", ".peersync" or ".gitmodules" after ASCII
//     case folding, removal of HFS+ ignorable code points (U+200C..U+200F,
//     U+202A..U+202E, U+206A..U+206F, U+FEFF) and of trailing dots and spaces;
//     nor be an NTFS short name of them (GIT~1, PEERSY~1, GITMOD~1: the prefix
//     followed by digits);
//   - no gitlinks (mode 160000) and no unknown modes; symlinks (120000) only
//     when Config.AllowSymlinks;
//   - on Windows, no reserved device names (CON, PRN, AUX, NUL, COM1-9,
//     LPT1-9, with any extension).
//
// ValidPath applies the name rules to a slash path. A rejected bundle returns
// a *BundleError whose Path or Object names the offending entry.
//
// Checkout then writes each file through a temporary file in the same
// directory (chmod, fsync, rename), never through a symlink (every parent is
// checked with Lstat), and only over a file whose content is still the old
// head's (checked before the temporary file is written and again just
// before the rename): a local edit that raced in is left alone for the next
// Scan. Files go in batches of up to 1,024 files or 256 MiB: every
// temporary file of the batch is written, then each is fsynced, then each
// renamed (interleaving create and fsync per file made each create wait for
// the previous journal commit). Removed files go first, then their emptied
// parent directories.
//
// # Merge rule
//
// Before integrating, ApplyBundle commits local edits (as Scan). When the
// histories diverged, each path is merged three ways against the best common
// ancestor (the smallest-hash one if there are several; an empty tree when
// the histories are unrelated, as for two folders that both had files before
// their first sync):
//
//   - changed on one side only: take that side;
//   - changed identically on both: take it;
//   - modified on one side, deleted on the other: keep the modification;
//   - changed differently on both (including both added): conflict. For each
//     side, the last commit touching the path is found along its first-parent
//     chain. The one with the newer committer time wins (ties: the larger
//     author e-mail, then the larger hash) and keeps the name; the other's
//     content is written as
//     name.sync-conflict-YYYYMMDD-HHMMSS-<DEV7>.ext, where the time is the
//     losing commit's committer time in UTC and DEV7 the first 7 characters
//     of its author e-mail (the DeviceID's first group);
//   - a file on one side where the other has a directory: the directory keeps
//     the name, the file becomes a conflict copy.
//
// The result depends only on the two heads, so both peers merging each
// other's heads produce identical trees (and, see above, identical merge
// commits).
//
// # History and restore
//
// History(ctx, path, limit) lists the changes to a file or directory (or to
// everything, path ""), newest first in git log's order: one Change per file
// a commit changed against its parent, deletions included, so a deleted
// file's history is still there. Merge commits are skipped, except for the
// files a merge made differ from all its parents (its conflict copies).
//
// Restore(ctx, path, rev) commits path's content and mode at rev as a new
// commit touching only that file ("add", "modify", or "delete" when path did
// not exist at rev), writing the folder first through the safe checkout.
// Undelete = Restore to the commit before the "delete". Local edits are
// committed before (so the replaced version stays in the history), and a
// file edited while the restore runs is left alone (ErrLocalEdit).
//
// # Ignore rules
//
// A .peersyncignore file, in gitignore syntax (go-git's matcher: "*.log",
// "build/", "/anchored", "!negation", "**"), excludes files from Scan in its
// directory and below; one in a subdirectory adds rules that win over its
// parents'. It is an ordinary file: committed and synced, so every device
// applies the same rules. Always excluded, whatever the rules: .peersync,
// our .peersync-tmp-* files, and nested histories.
//
// A file that becomes ignored while tracked is not deleted from the history:
// it stays as last committed, and neither its later edits nor its deletion
// are committed until the rule goes (deleting it from the history is then an
// explicit act, not a side effect of editing the rules). The rules govern
// only local scanning: a bundle is applied in full, ignored paths included,
// and its checkout writes them.
//
// # Watcher
//
// Watch puts an fsnotify watch on every directory Scan would walk, adds
// watches for new directories as they appear, drops events on ignored names
// and our temporary files, and after a quiet debounce (default 50 ms, at
// most 10 debounce periods under a steady stream of events) scans only what
// the events touched: each touched path's directory, one level deep (files
// added, changed or gone; subdirectories gone), and new directories whole,
// with the same rules and commits as Scan. It runs a full Scan at start,
// every 60 s (events can be lost: a watch limit is hit), when the inotify
// queue overflowed and when a .peersyncignore changed. It returns when ctx ends, or with the error of a scan that
// a guard refused (ErrNotInitialized, ErrMassDelete) or ErrClosed.
//
// # Crash safety
//
// A process killed at any moment (during a scan, a restore, an apply, a
// merge or a checkout) leaves a repository that opens, passes
// git fsck --strict, and has lost no committed version:
//
//   - objects are written before the refs that name them (loose objects and
//     packs are renamed into place complete; a pack is usable only once its
//     index exists, and Open deletes a pack a crash left without one);
//   - refs are replaced atomically (temporary file in .peersync, fsync,
//     rename), as is the stat cache; .peersync itself is created under a
//     temporary name and renamed into place;
//   - a checkout writes files before moving main, and Restore writes the
//     file before committing it: after a crash the next Scan commits what
//     the folder holds (a kill during a checkout leaves files the next scan
//     commits as local edits, which the next merge with the peer reconciles);
//     refs/peers/<peer>/main may then be ahead of main until the next bundle
//     or an IntegratePeer;
//   - our temporary files left in the folder are never committed, and Scan
//     deletes them once they are a minute old.
//
// The kill -9 test (crash_test.go, with internal/crashhelper) checks this
// on every run; PEERSYNC_CRASH_ITERATIONS sets its rounds.
//
// # Current limits
//
// Memory stays bounded for files of any size and bundles of any number of
// objects: Scan and WriteBundle stream blobs, objects over 1 MiB are read
// from packs as streams, and ApplyBundle spools the incoming pack to
// objects/pack/tmp_pack_*.bundle (deleted afterwards) and keeps no object's
// content in memory: it names each whole object as it streams by, resolves
// deltas by reading them and their bases back from the spool (through a
// 4 MiB cache of recent contents: a delta's base is usually the object just
// resolved), re-reads commits and trees from there to validate them and
// copies every object into our pack from there. What stays in memory is
// about 110 bytes per object of the bundle (its name, type and place in the
// spool), the folder's tree, go-git's index of our new pack and its object
// cache (8 MiB), plus the bases a thin pack's deltas take from our objects
// and a delta against a blob over 1 MiB (only git's bundles make those),
// resolved in memory. Measured with BenchmarkApplyBundleMemory
// (a first sync of 100,000 files of 1-4 KiB in 1,000 folders: a 309 MB
// bundle of 400,000 objects): peak heap 135 MiB, peak RSS 208 MiB, where
// git clone of the same bundle peaks at 465 MiB (it was 5.1 GiB when the
// bundle's objects were held in memory; see BENCHMARKS.md). WriteBundle
// holds about 200 bytes per commit and 100 per object sent (the walk's
// tables), about 40 bytes per object of every pack (the indexes, kept
// with the Store between bundles), a 16 MiB cache of tree contents (cut
// to 4 MiB between bundles) and 8 MiB of read windows (released between
// bundles); no object's content is held beyond that cache (a big one is
// copied or streamed in pieces).
// Each scan or applied bundle adds a pack; Store.Maintain consolidates them
// with the loose objects (maintain.go: thresholds, geometric roll-up, crash
// safety) when the caller runs it (git gc can too). A tmp_pack_* file a
// crash left behind is deleted by the first scan or apply after an Open
// once it is an hour old.
package gitstore
