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
//	// After the watcher saw changes: one commit per changed file.
//	changes, err := s.Scan(ctx)
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
//	    objects/                 loose objects (and packs, if git gc ran)
//	    peersync-statcache.json  stat cache: path -> size, mtime, mode, inode, blob
//	<Dir>/**/.peersync-tmp-*     our temporary files (always ignored)
//
// The git CLI works on it: git --git-dir=<Dir>/.peersync --work-tree=<Dir> log.
// No git index is kept (so `git status` shows everything as staged for
// deletion); the stat cache plays its role. A damaged or missing stat cache
// only costs re-hashing. Files modified less than 2 s before a scan are not
// cached (the racy-git problem) and are hashed again next time.
//
// # Folder guard
//
// .peersync is also the marker that the folder is really there. Open returns
// ErrNotInitialized when it is missing and Config.Create is false, and Scan
// returns an error wrapping ErrNotInitialized if it disappears later (an
// unmounted disk): a vanished folder is never read as "every file deleted".
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
// commits it has that are ancestors of main; those commits are the
// prerequisites. The output passes `git bundle verify` and `git fetch`.
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
// directory (fsync, chmod, rename), never through a symlink (every parent is
// checked with Lstat), and only over a file whose content is still the old
// head's: a local edit that raced in is left alone for the next Scan.
// Removed files go first, then their emptied parent directories.
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
// # Current limits
//
// Scan streams file content into loose objects (memory stays bounded), but
// ApplyBundle holds the whole incoming pack in memory, and WriteBundle and
// checkout hold one whole object at a time: fine for ordinary files, not yet
// for multi-GiB ones. Objects are written loose (one file each), not yet
// streamed into packs as DESIGN.md section 3 asks for large imports. There is
// no mass-delete guard and no .peersyncignore support yet.
package gitstore
