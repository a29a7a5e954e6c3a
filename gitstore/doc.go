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
//	// res.Skipped: files this device cannot hold (README beside readme on
//	// a case-insensitive disk); res.IgnoreRules: ignore files the peer changed.
//
//	// Files a scan could not read (permission denied, a FIFO): for a status.
//	for _, sp := range s.Skipped() { fmt.Println("not synced:", sp) }
//
// Every method is safe for concurrent use. Writes (Scan, Restore, the end
// of ApplyBundle) are serialized by one mutex; reads do not wait for them:
// Head returns main as published when it last moved, History and PeerHead
// read objects (which never change) and ref files (replaced atomically)
// through a storage of their own, and ApplyBundle holds
// the mutex only for its last part (the scan of local edits, the refs and
// the checkout), not while it spools, checks and stores a bundle (another
// mutex serializes appliers). WriteBundle does not take the mutex either:
// it exports main as published when it started, through a read view of its
// own, so a long export holds up no scan, apply or History (exports are
// serialized among themselves). Methods called after Close return
// ErrClosed; ctx cancellation returns an error wrapping ctx.Err().
//
// # On-disk layout
//
//	<Dir>/                       the shared folder (the git work tree)
//	<Dir>/.peersync/             a git directory (core.bare = true), mode 0700
//	    HEAD                     "ref: refs/heads/main"
//	    refs/heads/main          our history
//	    refs/peers/<ID>/main     the head of the last bundle applied from peer <ID>
//	    objects/pack/            packs (pack-*.pack + .idx): one per big Scan or applied bundle, and maintenance's
//	    objects/xx/…             loose objects of small scans, applies, merges and restores
//	    peersync-statcache.json  stat cache: path -> size, mtime, mode, inode, blob
//	    peersync-scanclock       rewritten as each scan starts: its time is the filesystem's clock
//	    received                 "<commit> <DeviceID>" per commit received in a bundle (see History)
//	<Dir>/**/.peersync-tmp-*     our temporary files (always ignored)
//	<Dir>/**/.peersyncignore     ignore rules (ordinary files, synced)
//
// The git CLI works on it: git --git-dir=<Dir>/.peersync --work-tree=<Dir> log.
// No git index is kept (so `git status` shows everything as staged for
// deletion); the stat cache plays its role. A damaged or missing stat cache
// only costs re-hashing. Files modified at or after the scan's start, read on
// the filesystem's own clock (peersync-scanclock's time, rewritten as each
// scan starts), are not cached (the racy-git problem: an edit in the same
// clock tick would keep the time) and are hashed again next time.
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
// Mass-delete guard (docs/design.md section 5): a Scan that would commit the
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
// Ignore-rules guard: .peersyncignore changes from a peer that would stop
// every tracked file (or more than the thresholds above) from syncing are
// refused the same way, with an *IgnoreRulesError wrapping ErrMassDelete
// (see "Ignore rules").
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
// the entry), with a whole tree every 50 versions to bound delta chains
// (whole trees at BestSpeed: they are mostly hashes). A
// commit in a folder of 1,000 entries thus costs tens of bytes of tree, not
// ~35 KB. The pack is written as objects/pack/tmp_pack_*, its object count
// and checksum fixed at the end, fsynced and renamed to pack-<sha>.pack; then
// its version 2 index is written the same way (pack-<sha>.idx, last: a pack
// is visible only with its index); only then does main move. Objects an
// interrupted scan wrote are thrown away with the pack, and the stat cache
// goes back to its saved copy so nothing names them. ApplyBundle stores a
// bundle's objects the same way, in a pack of its own, keeping the deltas
// the bundle brought; or, when the bundle's pack already is what we would
// write (version 2, not thin, every object reached from the new head and
// only once, delta chains within 50, no delta over 1 MiB: a first sync),
// it keeps that pack as it came, as `git index-pack` does: the spool gets
// its trailer, an fsync, an index built from the offsets and CRC-32s noted
// as it streamed in, and a rename (apply_adopt.go), instead of a second
// copy of the whole folder. (ApplyIncoming starts that fsync, for a pack of
// 1 MiB or more, as soon as it is called, beside the read's last part and
// the checks: spool_earlysync.go.) A merge's trees and commit, and a restore's, go
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
// Long scans publish as they go: once a scan has made 5,000 commits and
// run 2 s since it began or last published, with 5,000 or more still to
// make, it completes the pack written so far (index and all), moves main to
// its last commit and says so through Config.ScanProgress
// (ScanProgress.Published), then goes on in a new pack. A peer may fetch
// and apply those commits while the scan goes on (exports read main as
// published and do not wait for the scan), so the first sync of a big
// folder does not wait for its whole first scan. Each step keeps the crash
// order (pack, index, then ref); a scan killed midway leaves main at its
// last published commit, and the next scan commits the rest.
//
// Big files last: such a Scan that finds changed files of 16 MiB or more,
// adding up to 64 MiB or more, beside other changes commits and publishes
// the other changes first, then reads and commits the big files (a second
// pack): a peer gets a folder's documents while its videos are being
// hashed. Without Config.ScanProgress a Scan commits in path order.
//
// Scan skips .peersync, any subdirectory containing its own .peersync or .git
// (an independent history, as git skips nested repositories), our temporary
// files, names that fail ValidPath, symlinks unless AllowSymlinks, and
// anything that is not a regular file (reported: see "Faults of the disk").
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
// A loose tree and its previous version are taken from what the tree walk
// read (loose.go), not read from their files a second time.
// When the objects to send are exactly those of one of our packs (a first
// sync after a first scan, or after maintenance made the store one pack),
// the bundle's pack is that pack, byte for byte, each entry CRC-checked as
// it is copied and its stored trailer sent: no SHA-1 over the output
// (packwhole.go). A bundle whose stored entries reach 16 MiB (a big file)
// is self-contained: no delta against the peer's objects, its first tree
// versions whole, so that the receiver adopts its pack as it comes instead
// of storing the big file again; smaller bundles stay thin.
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
//   - a name must not be empty, ".", "..", or contain "/", "\" or NUL, nor
//     any control character (C0 U+0000..U+001F, DEL, C1 U+0080..U+009F: a
//     name could otherwise carry terminal escapes or forge a line of a
//     listing; Scan leaves such local files out);
//   - no component may equal ".git", ".peersync" or ".gitmodules" after ASCII
//     case folding, removal of HFS+ ignorable code points (U+200C..U+200F,
//     U+202A..U+202E, U+206A..U+206F, U+FEFF) and of trailing dots and spaces;
//     nor be an NTFS short name of them (GIT~1, PEERSY~1, GITMOD~1: the prefix
//     followed by digits);
//   - no gitlinks (mode 160000) and no unknown modes; symlinks (120000) only
//     when Config.AllowSymlinks.
//
// Names that are valid but that this device cannot hold (Windows reserved
// names on Windows, names equal but for case on a case-insensitive file
// system) do not make a bundle invalid: the checkout skips them (see "Names
// this device cannot hold").
//
// No name appears twice in a tree either. A new version of a directory's
// tree is compared, as bytes, with the version of that directory validated
// last (applytrees.go): the entries in the common prefix and suffix are
// byte for byte entries already checked, so only the entries in between
// are checked against the rules above, and the duplicate check stays
// exact (the names of the entries that went leave the set of the
// directory's names, the new ones enter it). With one commit per file a
// folder's tree changes one entry per commit, so a bundle of N commits in
// a directory of N files costs N entry checks, not N²/2; the rules are the
// same.
//
// ValidPath applies the name rules to a slash path. A rejected bundle returns
// a *BundleError whose Path or Object names the offending entry.
//
// # Limits
//
// What a bundle may cost is bounded by configuration, never by the bundle
// (Config.MaxObjectSize and Config.Limits; the defaults are far above a real
// folder's needs), and every limit is checked before anything is written:
//
//   - objects in the pack (Limits.MaxObjects, 16,777,216; about 110 bytes of
//     memory each while it is applied), size of any object (MaxObjectSize,
//     16 GiB) and of any tree or commit, which is read into memory to be
//     checked (Limits.MaxTreeSize, 64 MiB);
//   - the tree the bundle leads to, over every entry naming a blob, one
//     blob named under 8 paths counting 8 times (a checkout writes it 8
//     times): files (Limits.MaxFiles, 1,000,000), bytes (Limits.MaxBytes,
//     1 TiB), depth (Limits.MaxDepth, 256) and path length in bytes
//     (Limits.MaxPathLen, 4096). Each tree object is read once however many
//     times it is named, and the walk stops at MaxDepth, so a 10,000-level
//     tree or a million files made of three small trees cost little to
//     refuse;
//   - temporary disk: the spooled pack plus the large objects its deltas
//     expand to (Limits.MaxSpoolBytes, 1 TiB); a bundle whose size the
//     reader declares (a *bytes.Reader, a regular *os.File, anything with
//     Size or Len) is refused before it is read;
//   - free space (Limits.MinFreeBytes, 32 MiB, negative = no check): checked
//     on the folder's file system before the spool starts (against the
//     declared size when there is one), every 64 MiB as it grows, and
//     before the checkout (against the bytes of the files it writes).
//
// A bundle over a limit gets a *BundleError wrapping a *LimitError, which
// names the limit (the Config field to raise), the value reached and the
// maximum; a lack of space gets a *DiskFullError (wrapping ErrDiskFull). Neither moves a ref, so
// nothing is retried in a loop on a bundle that can never fit.
//
// Deltas are never expanded in memory beyond 1 MiB: a larger delta (or one
// against a larger base) is applied streaming, its base read at random from
// an uncompressed copy in the spool (objects/pack/tmp_pack_*.bundle.raw),
// its instructions as they inflate, and its result written through the
// hash that names it onto the end of that file. A 500-byte bundle whose
// delta expands to a 1 GiB file costs 1 GiB of spool and a few MiB of
// memory (BENCHMARKS.md). Such objects are stored whole in our pack, so
// that go-git reads them back as streams.
//
// A file is written with holes where its content has aligned 64 KiB
// blocks of zeros, so a sparse file (a disk image) costs the receiver's
// disk what it cost the sender's. Checkout first checks that what it writes (the sizes of the new blobs,
// plus 2 % and Limits.MinFreeBytes) fits in the free space of the folder's
// file system (statfs), else it writes nothing and returns a
// *DiskFullError. Then it writes each file through a temporary file in the
// same directory (created with the file's permissions, see "Modes"; fsync,
// rename), never through a symlink (every parent is
// checked with Lstat), and only over a file whose content is still the old
// head's (checked before the temporary file is written and again just
// before the rename): a local edit that raced in is left alone for the next
// Scan. A big file that an Incoming already wrote into the folder as it
// arrived (a .peersync-tmp-* file of exactly the blob's content, named by
// the hash it hashed to) is taken instead of written again, for a regular
// file at a path that holds none. Files of 8 MiB or more (and the packs we
// write) are handed to the kernel to write out every 8 MiB as they grow
// (sync_file_range, Linux), so each fsync finds them mostly on disk.
// Files go in batches of up to 1,024 files or 256 MiB: every
// temporary file of the batch is written, then each is fsynced, then each
// renamed (interleaving create and fsync per file made each create wait for
// the previous journal commit; an fsync that fails renames nothing of its
// batch). Removed files go first, then their emptied parent directories.
//
// # Merge rule
//
// Before integrating, ApplyBundle commits local edits (as Scan). When the
// histories diverged but both heads hold the same files (the same tree),
// only the side whose head hash is the smaller merges; the other keeps its
// head (UpToDate, the peer's history kept under refs/peers) and
// fast-forwards to that merge when it arrives. With three or more peers,
// each merging whatever head arrived last, merges on both sides made new
// heads faster than the peers could meet, long after their files agreed.
// Which side merges depends on the two heads of the moment: a head kept
// while it was the peer's turn must be merged here once our head changed
// and is the smaller. A fetch brings nothing then (the commit is here), so
// Store.IntegrateHead integrates a held head when its peer announces it
// again (UpToDate, without a scan, when it is in our history or still the
// peer's turn); without it, two peers could each wait for the other's
// merge for good, their files equal and their heads not.
// Otherwise each path is merged three ways against the best common
// ancestor (the smallest-hash one if there are several; an empty tree when
// the histories are unrelated, as for two folders that both had files before
// their first sync):
//
//   - changed on one side only: take that side;
//   - changed identically on both: take it;
//   - modified on one side, deleted on the other: keep the modification;
//   - changed differently on both (including both added): conflict. For each
//     side, the commit that made its entry is found: the last commit touching
//     the path along the side's first-parent chain (one walk per side for all
//     conflicting paths, comparing each commit's tree with its parent's and
//     reading only subtrees that differ and hold a path still looked for:
//     the merge costs one pass over each history, not one per path) and,
//     when that is a merge that took the entry from another parent, the same
//     search from that parent on. A merge only counts for what it made
//     itself (a conflict copy): it carries its newer parent's signature, and
//     naming a copy after it gave different contents the same copy name on
//     different devices, which conflicted again, and again, when they met.
//     The commit with the newer committer time, corrected for its author's
//     clock lead (see "Clocks"), wins (ties: the larger author e-mail, which
//     holds the DeviceID, then the larger hash) and keeps the name; the
//     other's content is written as a conflict copy (below);
//   - a file on one side where the other has a directory: the directory keeps
//     the name, the file becomes a conflict copy.
//
// A conflict copy is named name.sync-conflict-YYYYMMDD-HHMMSS-<DEV7>.ext,
// where the time is the losing commit's committer time in UTC and DEV7 the
// first 7 characters of its author e-mail (the DeviceID's first group).
// Copies are named after every path has its merged entry, in path order.
// Two cases add "-" and the first 7 hex digits of the losing blob after
// DEV7: a conflict on a path that is itself a conflict copy (the same copy
// name holding different contents on two devices, or a copy edited on
// both) keeps that copy's time and DEV7, so a copy of a copy is never
// nested (…-BBBBBBB-3f2a9c1.txt, not ….sync-conflict-….sync-conflict-…);
// and a plain name that the merged tree holds with another content (one
// device made two versions of the file within a second). An equal content
// already there under the name is not copied twice. In the one case left
// (the hashed name taken too: 7 hex digits alike, or a hashed copy edited
// on both devices) the losing content is not copied; like every version,
// it stays in the history.
//
// The result depends only on the two heads, so both peers merging each
// other's heads produce identical trees (and, see above, identical merge
// commits).
//
// # Clocks
//
// Commit times are what their author's clock said, and a device whose clock
// is ahead would win every conflict. Clamping a time to "now" cannot be
// used: each peer's now differs, the two peers of a merge would pick
// different winners and never converge. Instead a clock's lead is read from
// the histories being merged, which are the same on both peers: when a
// commit's parent, by another author, is more than a minute newer than the
// commit itself, the parent's author was ahead by at least that much (the
// child was made after it). The largest such lead per author e-mail,
// over the newest 10,000 commits of the union of both histories (newest
// first, ties by hash: a fixed order), is subtracted from that author's
// commit times when a conflict is decided. Both peers compute the same
// leads from the same commits, so they pick the same winner and converge.
// A lead shows once a commit was made on top of the ahead device's work
// (the next scan after a sync does it), so at most the conflicts before
// that go to the device that is ahead; a lead is never added to anyone's
// time, so a clock behind gains nothing either.
//
// # History and restore
//
// History(ctx, path, limit) lists the changes to a file or directory (or to
// everything, path ""), newest first in git log's order: one Change per file
// a commit changed against its parent, deletions included, so a deleted
// file's history is still there. Merge commits are skipped, except for the
// files a merge made differ from all its parents (its conflict copies).
//
// Change.Author is whatever name the commit's maker wrote; Change.From is
// the DeviceID of the peer whose bundle delivered the commit, as
// authenticated by the transport (ApplyBundle's peer argument), and "" for
// a commit made here. ApplyBundle records it in .peersync/received, one
// line "<commit hex> <DeviceID>\n" per commit new here, appended and
// fsynced after the bundle's pack is complete and before any ref moves; the
// first line for a commit wins (a relayed commit keeps its first
// deliverer), and a line a crash cut short is skipped.
//
// Restore(ctx, path, rev) commits path's content and mode at rev as a new
// commit touching only that file ("add", "modify", or "delete" when path did
// not exist at rev), writing the folder first through the safe checkout.
// Undelete = Restore to the commit before the "delete". Local edits are
// committed before (so the replaced version stays in the history), and a
// file edited while the restore runs is left alone (ErrLocalEdit).
//
// Conflicts lists the conflict copies in main with the path each is a copy
// of (OriginalOf: the name without its ".sync-conflict-…" part) and who
// made each side and when: of the original path's two newest changes, the
// one that left it with that side's content (for a copy whose change is
// not among them, the time and device in its name).
// ResolveConflict(ctx, copy, KeepCopy) writes the copy's content to the
// original path and deletes the copy, KeepOriginal only deletes the copy;
// each is an ordinary one-file commit, so a resolution syncs as any edit
// and both contents stay in the history. Local edits are committed first
// (an unsynced edit of the copy is what is kept).
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
// Rules from a peer: a bundle whose checkout adds, changes or deletes a
// .peersyncignore file is applied (the rules are synced like any file) and
// reported: ApplyResult.IgnoreRules names the files, and a warning names the
// peer and the new rules. But rules from a peer that would newly exclude
// every tracked file (at least one; the ignore files themselves not counted,
// so "*" with "!.peersyncignore" counts as "*"), or more than the
// mass-delete guard's thresholds of them, would silently stop this device
// from committing anything there: ApplyBundle and IntegratePeer refuse them
// with an *IgnoreRulesError before anything is checked out. It wraps
// ErrMassDelete so that it is handled as that guard is (the engine pauses
// the folder and asks the user; AllowMassDeleteOnce then IntegratePeer
// applies them; Config.AllowMassDelete turns it off); meanwhile local edits
// still commit under the old rules. Rules written on this device are the
// user's own and are not judged.
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
// What the store writes itself is not scanned again. A checkout puts each
// file in place by renaming its temporary file: the event of that rename
// (paired with its temporary name by the kernel's cookie) is dropped. A
// directory that appears is watched at once and the files it holds then
// are looked at one by one (anything written later has its own event),
// not walked whole. Before a targeted scan, a touched path is dropped when
// it holds exactly main's version: a regular file whose Lstat matches its
// stat cache entry (the rule Scan uses to skip a file) with main's blob at
// that path, or nothing where main tracks nothing. The watcher never waits
// for the store's lock: while an apply holds it, it keeps reading events
// and tries again after another debounce, so a checkout of thousands of
// files does not overflow the kernel's event queue (fsnotify's reader
// also buffers 8,192 events). A local edit made during a checkout has an
// event of its own (a write in place, a create, a rename from a name that
// is not ours), no longer matches the stat cache, and is scanned and
// committed once the apply is done (TestWatchSeesEditDuringCheckout). A
// genuine overflow still runs a full scan: lost events cannot be told
// apart.
//
// # Faults of the disk
//
// One file's fault never stops a folder. A scan skips, and reports, a file
// or directory it cannot read (permission denied, an I/O error: a locked
// file on Windows), a FIFO, socket or device, and a directory whose
// .peersyncignore cannot be read (its rules unknown, nothing in it is
// committed); the rest is committed. A skipped path stays in the history as
// last committed: it is never committed as deleted, and a checkout never
// overwrites a file it cannot read, nor touches a directory it may not
// enter or write to: it leaves those files as they are and reports them
// (ApplyResult.Skipped), so ApplyBundle, which scans first, applies bundles
// as usual. Such a file is remembered (in memory) with the content it still
// holds: once a scan can read it, if it still holds that content, the scan
// writes main's version instead of committing the old one back (which would
// undo the peer's change on every device); if the user changed it
// meanwhile, the change is committed as usual. Each skipped path is logged
// as a warning the first time and listed by Store.Skipped (with why: an
// error wrapping the system's, or ErrNotRegular) until a scan finds it
// readable again.
//
// Files are opened with O_NOFOLLOW|O_NONBLOCK, then fstat'ed: a file swapped
// for a symlink since the listing is not followed, one swapped for a FIFO
// does not block the scan (the open returns at once and the fstat shows it
// is not a regular file; it is skipped and reported), and one replaced by
// another file (another inode) is left for the next scan. The size hashed
// is the fstat's, which the stat cache records. .peersyncignore files are
// opened the same way.
//
// A full disk: when .peersync's disk fills during a scan, an apply or a
// checkout, the operation stops with an error wrapping ErrDiskFull ("not
// enough free disk space (no space left on device)"), never a BundleError:
// the peer is not at fault. Objects are written before the refs that name
// them, so refs are untouched and git fsck --strict is clean; once space is
// freed the same scan or bundle goes through. A checkout checks the free
// space before writing anything (see "Safety rules").
//
// A folder that goes away (its disk unmounted, .peersync deleted) trips the
// folder guard ("Guards"): every operation returns an error wrapping
// ErrNotInitialized before writing anything, and nothing is recreated.
//
// # Modes
//
// Only the executable bit is part of the history (100644 or 100755: any x
// bit). What this device writes follows its user's umask: a checkout
// creates a new file with 0666, or 0777 when executable, less the umask (as
// git does), and a file replacing an existing one keeps that file's
// permissions, with the execute bits set where it has read bits (when
// executable) or cleared: a file made private here (0600) stays private
// whatever a peer sends. Directories are created 0777 less the umask.
// .peersync is created 0700 (it holds every version of every file, private
// ones too; Open narrows one that an older version created 0755); packs, their indexes and loose objects are 0444 less the umask,
// refs and the stat cache 0644 less the umask. On a file system that does
// not keep modes (FAT shows every file with the mount's fixed mode, probed
// at Open by a chmod that does not stick), scans take each file's mode from
// main (new files are 100644), as git does with core.fileMode false.
//
// # Names this device cannot hold
//
// A peer's tree may hold names this device cannot: on Windows, reserved
// device names (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with any extension:
// "aux.c", "nul.txt"), names ending in a dot or space, and names with
// < > : " | ? * or a control character; on a case-insensitive file system
// (probed at Open: a file created under a lower-case name is looked up
// under its upper-case one; FAT, exFAT, NTFS and macOS by default), names
// that differ only in case, as README and readme, or Docs/a and docs/b.
// Of names equal but for case, the smallest in byte order ("README",
// "Docs") is checked out; the others, with all they hold, are not. A
// checkout skips such a path: it is not written, not compared, not deleted,
// and is listed in ApplyResult.Skipped (when the bundle changed it) and
// Store.Skipped, with an error wrapping ErrNameNotHoldable, and logged as a
// warning the first time. Scans never commit it as deleted, so it stays in
// the history and on the peers that can hold it, and every other file and
// every later bundle syncs as usual. (Unicode normalization, NFC and NFD
// names that macOS treats as one, is not checked.)
//
// # Crash safety
//
// A process killed at any moment (during a scan, a restore, an apply, a
// merge, a checkout or a maintenance run) leaves a repository that opens, passes
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
//     deletes them once they are a minute old; a big file a transfer was
//     writing as it arrived (.peersync-tmp-arriving-*, in the folder's top
//     directory) is deleted when the store is next opened;
//   - the received log is appended before the refs move, so every commit a
//     ref reaches has its line (a crash in between leaves lines for stored
//     commits that no ref reaches yet, which are true all the same).
//
// The kill -9 test (crash_test.go, with internal/crashhelper) checks this
// on every run; PEERSYNC_CRASH_ITERATIONS sets its rounds.
//
// # Current limits
//
// Memory stays bounded for files of any size and bundles of any number of
// objects: Scan and WriteBundle stream blobs, objects over 1 MiB are read
// from packs as streams, and ApplyBundle spools the incoming pack to
// objects/pack/tmp_pack_*.bundle (deleted afterwards, or adopted as our
// pack; a caller receiving a bundle over the network writes it there
// directly with Store.NewIncoming and applies it with ApplyIncoming, so
// the pack is written once; an Incoming reads its pack as it arrives, so
// ApplyIncoming does not read it a second time, and writes each blob of
// 16 MiB or more into the folder as it streams by, for the checkout to
// rename into place: see Incoming) and keeps no object's
// content in memory: it names each whole object as it streams by, resolves
// deltas by reading them and their bases back from the spool (through a
// 4 MiB cache of recent contents: a delta's base is usually the object just
// resolved), re-reads commits and trees from there to validate them and
// copies every object into our pack from there. What stays in memory is
// about 110 bytes per object of the bundle (its name, type and place in the
// spool), the folder's tree, go-git's index of our new pack and its object
// cache (8 MiB), plus the bases up to 1 MiB a thin pack's deltas take from
// our objects; deltas and bases over 1 MiB are resolved streaming (see
// "Limits"). Measured with BenchmarkApplyBundleMemory
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
// Each scan or applied bundle adds a pack or loose objects; the store
// consolidates them by itself (see "Maintenance"). A tmp_pack_* file a
// crash left behind is deleted by the first scan or apply after an Open
// once it is an hour old.
//
// # Maintenance
//
// Whenever main moves, a background goroutine checks the objects
// directory and, past about 256 loose objects or 20 packs, consolidates
// the loose objects and the small packs into one pack (geometric
// repacking: a pack is kept only while it holds at least twice the objects
// of all smaller packs together, so each object is copied about log2 times
// over the store's life and the packs stay few). Nothing is pruned. The
// new pack is written beside the old files, holding no lock of the store;
// only the removal of the consolidated files holds the store's locks, for
// milliseconds (MaintainResult.Held; BENCHMARKS.md has figures), and it
// waits for a running export. A kill at any point loses nothing (the new
// pack is complete, with its index, before anything is removed); Close
// stops a run. Store.Maintain runs the same check on demand (git gc works
// on the store too). After 10,000 single-file edits, one scan each, the
// store holds at most a few hundred loose objects and a handful of packs;
// full bundles and rescans run within 1.2 times their time on the same
// store freshly consolidated, History of a file within about 1.35 times,
// and a 1-commit bundle, whose objects are loose, in less (loose.go: each
// is read once; BENCHMARKS.md; maintain.go has the details).
package gitstore
