// Package webview is the read-only web view of a device's folders for
// phones and other browsers: log in, browse the folders granted to you,
// download a file, see a file's history (when, who, from which device) and
// download an old version. It writes nothing: no uploads, no settings, no
// restores. examples/server serves it over HTTPS (`server run --web ADDR`).
//
//	users := webview.OpenUsers(filepath.Join(home, "webusers.json"))
//	h := webview.New(engine, webview.Options{Users: users, Secure: true})
//	srv := &http.Server{Addr: ":8443", Handler: h}
//	err := srv.ListenAndServeTLS(certFile, keyFile)
//
// # What it shows
//
// The committed tree of each folder (Engine.ListFiles, Engine.OpenFile):
// what a scan or a peer committed, read from the git history through the
// store's read view, so a page never waits behind a scan or an incoming
// bundle, and a download streams from the object store. An old version is
// the same file at a commit listed by Engine.History (the ?rev= of a link).
//
// # Users and grants
//
// Accounts live in a JSON file (mode 0600) that the command line edits
// (Users.Add, Users.Remove, Users.List): a name, an argon2id hash of the
// password in the PHC string format (19 MiB, 2 passes, 1 lane: OWASP's
// minimum; parameters are read from each hash, so stronger ones can be
// set later) and the folder IDs the user may read ("*" = all). The view
// re-reads the file when it changes: a removed user is logged out at the
// next request, a withdrawn grant takes effect at once. A folder the user
// may not read is invisible: not listed, and its URLs answer the same 404
// as a folder that does not exist.
//
// # Login and sessions
//
// A successful login sets a session cookie: 32 random bytes, HttpOnly,
// SameSite=Strict, Path=/, expiring after Options.SessionTTL (12 h), and
// with Options.Secure also Secure and named with the __Host- prefix (the
// browser then refuses it from plain HTTP or another domain). Sessions live
// in memory, keyed by the token's SHA-256; a restart logs everyone out.
// Logout is a POST; a POST whose Origin is another site is refused (login
// CSRF), and SameSite=Strict keeps other sites' requests without the
// cookie.
//
// Password guessing is slowed per client address (IPv6 by /64) and per user
// name: after 3 failures for either, each attempt must wait 1 s, doubling
// with every further failure up to 15 min (answered 429 with Retry-After,
// the password not even checked); a success clears both records, an hour
// without failures forgets them. Unknown names cost the same hash as known
// ones. At most two passwords are hashed at once, bounding memory. The
// address is the TCP peer: behind a reverse proxy every client shares the
// proxy's address, so serve the view directly.
//
// # HTTPS
//
// Serve it over TLS with Options.Secure. With no certificate from a CA,
// EnsureSelfSigned makes one at first run; print its Fingerprint so the
// user can compare it with what the phone's browser shows before accepting
// it. CertFiles.Get, as tls.Config.GetCertificate, serves the files and
// picks up a renewed pair without a restart:
//
//	if _, err := webview.EnsureSelfSigned(certFile, keyFile, lanName); err != nil { … }
//	certs := webview.NewCertFiles(certFile, keyFile)
//	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.Get}
//
// The view must be the root of its listener (its links and its cookie
// path are absolute).
//
// # Pages
//
// Server-rendered HTML (html/template escapes every name), one stylesheet,
// no script at all: the content security policy is "default-src 'none';
// style-src 'self'; form-action 'self'; frame-ancestors 'none'". The layout
// is one column with large touch targets, for a 390-pixel-wide phone first.
// Downloads are attachments (application/octet-stream, CSP sandbox), so no
// file from a folder is ever rendered as a page of this origin. Nothing is
// cached (Cache-Control: no-store).
package webview
