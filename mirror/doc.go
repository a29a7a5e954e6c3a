// Package mirror keeps a plain copy of a local directory tree on an FTP,
// FTPS or SFTP server: the hosted case where the only thing a user has is
// cheap web space that speaks nothing else. It is a layer of its own: it
// knows nothing of git, peers or the sync engine, only a directory and a
// URL.
//
//	m, err := mirror.New(mirror.Config{
//		URL:      "sftp://me@host.example/srv/www/notes",
//		KeyFile:  "/home/me/.ssh/id_ed25519",
//		StateDir: "/home/me/.config/peersync/mirrors",
//	})
//	defer m.Close()
//	res, err := m.Sync(ctx, "/home/me/Notes", func(p mirror.Progress) {
//		fmt.Printf("%d/%d files, %d/%d bytes\n", p.FilesDone, p.FilesTotal, p.BytesDone, p.BytesTotal)
//	})
//
// Call Sync after each change of the folder (or on a timer); each call
// leaves the target holding the folder's current tree.
//
// # URLs
//
//	ftp://user[:password]@host[:port]/path    plain FTP (port 21)
//	ftps://user[:password]@host[:port]/path   FTP with AUTH TLS, "explicit TLS" (port 21)
//	sftp://user[:password]@host[:port]/path   SFTP over SSH (port 22)
//
// The path is the remote directory that receives the copy, created if
// missing. "/srv/www" is absolute (on an FTP server usually relative to the
// account's chroot); an empty path or "/" is the login directory, and
// "/~/sub" is "sub" under it. Reserved characters in the user name or
// password are percent-escaped ("@" is %40). A query string is refused:
// the password file, the key file and the certificate pin are Config fields.
//
// Credentials come from the URL, from Config.PasswordFile (first line), or,
// for SFTP, from Config.KeyFile (an unencrypted OpenSSH, PKCS#1 or PKCS#8
// private key; tried before a password). A password is never logged or
// printed: Target.String, Mirror.String, log records and error messages show
// the URL with "xxxxx" in its place.
//
// # What a Sync does
//
//  1. Walks the folder. Skipped: .peersync directories, any subdirectory
//     holding its own .peersync or .git (an independent history, as in the
//     sync engine), our temporary files (.peersync-tmp-*), a root file named
//     .peersync-mirror.json (the manifest's name), what the folder's
//     .peersyncignore rules exclude (gitignore syntax, read in every
//     directory as the sync engine reads them; an ignore file that cannot be
//     read fails the sync, so ignored files never leave the machine, and a
//     file that becomes ignored is deleted from the target), symlinks
//     (never followed, so nothing outside the folder is ever read) and
//     anything that is not a regular file. Empty directories are not mirrored. A file's SHA-256 is
//     computed only if its size or mtime differ from the local cache in
//     StateDir (mirror-cache-*.json).
//  2. Reads the manifest at the target's root and compares: a file is
//     uploaded if its size or hash differ (or it is new), deleted if it is
//     gone. Nothing is listed. If the manifest is missing or unusable, the
//     target is listed instead: every local file is uploaded (the content of
//     what is there is unknown) and every other file is deleted.
//  3. Writes the manifest once before changing anything, without the
//     entries about to change and with their paths under "pending", so that
//     a sync cut short leaves a manifest that is true of everything it
//     lists; the next sync redoes every pending path.
//  4. Deletes, then removes the directories left empty (one that is not
//     empty, because someone else put a file there, stays), then uploads.
//     Each upload goes to a temporary name in the same directory,
//     ".peersync-tmp-" + the file's name, and is then renamed over the final
//     name, so a reader of the target sees the old file or the new one,
//     never half a file. SFTP uses the posix-rename@openssh.com extension
//     for an atomic replace; FTP's RNFR/RNTO replaces on the common servers
//     (vsftpd, proftpd, pure-ftpd). The manifest entry records the bytes
//     actually sent, hashed while sending. Up to Config.Connections files
//     (default 4) upload at once, each over its own connection, which hides
//     the round trips that dominate small files; a server that refuses the
//     extra connections (hosts often cap them per address) is used with
//     those it accepts.
//  5. Writes the final manifest (temporary name, then rename).
//
// # Broken connections
//
// Every operation (connect, upload, rename, delete, list) that fails
// because the connection broke is tried again on a new connection, after
// Config.RetryDelay, doubling up to 30 s, at most Config.MaxAttempts times;
// ctx ends it at once (the connections are closed, which unblocks any call
// in flight). A connection silent for Config.Timeout counts as broken.
// Answers from the server (a refused login, permission denied, quota) are
// not retried: a refused file is reported in a *FileError and the others
// are mirrored. Nothing is lost: a file is only recorded in the manifest
// once its rename succeeded, an interrupted upload leaves the old version
// in place under its name, and the next sync removes the temporary file
// (whose name it derives from the pending path) and uploads again.
//
// # Manifest
//
// The file .peersync-mirror.json at the target's root, JSON, written after
// every sync that changed something:
//
//	{
//	 "version": 1,
//	 "generator": "peersync mirror",
//	 "updated": "2026-12-06T10:00:00Z",
//	 "files": {
//	  "docs/report.pdf": {
//	   "size": 48213,
//	   "mtime": "2026-12-01T08:30:12.123456789Z",
//	   "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//	  }
//	 },
//	 "pending": ["notes/draft.txt"]
//	}
//
// version is 1 (another version is treated as unusable: the target is
// listed). files maps every mirrored file, by its slash-separated path
// relative to the target directory, to its size in bytes, the local
// modification time when it was read (RFC 3339, UTC) and the lowercase hex
// SHA-256 of the content on the target. pending (omitted when empty) lists
// paths whose state on the target is unknown because a sync was cut short:
// each may hold the old content, the new, or nothing, and may have a
// leftover temporary file beside it. A manifest with a path that is not
// clean and relative, or that names .peersync, .git or a temporary file, is
// unusable as a whole. Anyone may read the manifest, for example to check
// the copy with sha256sum.
//
// # Security
//
// SFTP host keys are pinned on first use, like OpenSSH's
// StrictHostKeyChecking=accept-new: the first connection to a host appends
// its key to Config.KnownHostsFile (default StateDir/known_hosts, OpenSSH's
// format, so ssh-keygen -F and -R work on it); a later connection that
// presents another key is refused with a *HostKeyChangedError naming both
// fingerprints, and never retried. If the change is expected (the server was
// reinstalled), delete the host's line and sync again. To pin before the
// first use, write the line yourself (ssh-keyscan output works).
//
// FTPS verifies the server's certificate against the system's roots (or
// Config.RootCAs) and the URL's host name by default. Hosts with a
// self-signed certificate are supported by pinning it:
// Config.CertFingerprint = "SHA256:<hex>" accepts exactly that certificate
// (compare it with what the host's control panel shows, or with
// `openssl s_client -starttls ftp -connect host:21 | openssl x509 -noout
// -fingerprint -sha256`). A mismatch is a *CertificateError. The control
// connection and every data connection are encrypted; data connections
// resume the control connection's TLS session, which servers such as
// vsftpd require.
//
// Plain ftp:// sends the password and the files in the clear: use it only
// where nothing better exists, and prefer a password file to a password in
// the URL (URLs end up in shell history). Credentials are never written to
// StateDir. The .peersync directory, the folder's history, never leaves the
// machine.
//
// # Concurrency
//
// A Mirror opens its connections inside Sync and closes them before Sync
// returns; the upload goroutines it starts have all ended by then, so
// nothing outlives a call. Progress is reported from Sync's goroutine only.
// Syncs of one Mirror run one at a time. Close cancels a running Sync.
package mirror
