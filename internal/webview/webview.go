package webview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/sync"
)

// Source is what the web view reads: a *sync.Engine.
type Source interface {
	Status() sync.Status
	ListFiles(ctx context.Context, folder string, rev gitstore.Hash, dir string) ([]sync.FileEntry, error)
	OpenFile(ctx context.Context, folder string, rev gitstore.Hash, path string) (io.ReadCloser, int64, error)
	History(ctx context.Context, folder, path string, limit int) ([]gitstore.Change, error)
}

// Options configures a Handler. Users is required.
type Options struct {
	// Users is the accounts file.
	Users *Users
	// Secure marks the session cookie Secure and names it with the
	// __Host- prefix: set it when the view is served over HTTPS (always,
	// except on a trusted LAN).
	Secure bool
	// SessionTTL is how long a login lasts. Zero: 12 hours.
	SessionTTL time.Duration
	// Title heads every page. Zero: "peersync".
	Title string
	// HistoryLimit bounds the versions a file's history page lists. Zero:
	// 200.
	HistoryLimit int
	// Now is the clock (sessions, login delays). Nil: time.Now.
	Now func() time.Time
	// Log receives login failures and server errors. Nil: discard.
	Log *slog.Logger
}

// Handler is the read-only web view, an http.Handler. Its routes:
//
//	GET  /                          the folders the user may read
//	GET  /login   POST /login       the login form
//	POST /logout
//	GET  /f/ID/tree/DIR?rev=R       a directory (the root when DIR is empty)
//	GET  /f/ID/raw/PATH?rev=R       a file's content, as a download
//	GET  /f/ID/history/PATH         a file's versions: when, who, download
//	GET  /static/style.css
//
// rev, when given, is a commit (40 hex digits): the folder as it was then.
type Handler struct {
	src      Source
	opts     Options
	sess     *sessions
	throttle *throttle
	hashing  chan struct{} // bounds concurrent password hashes (19 MiB each)
	mux      *http.ServeMux
}

// New returns the web view of src's folders.
func New(src Source, opts Options) *Handler {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Title == "" {
		opts.Title = "peersync"
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 200
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{src: src, opts: opts, sess: newSessions(opts.Now, opts.SessionTTL),
		throttle: newThrottle(opts.Now), hashing: make(chan struct{}, 2), mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /static/style.css", serveCSS)
	h.mux.HandleFunc("GET /login", h.loginPage)
	h.mux.HandleFunc("POST /login", h.login)
	h.mux.HandleFunc("POST /logout", h.logout)
	h.mux.HandleFunc("GET /{$}", h.auth(h.folders))
	h.mux.HandleFunc("GET /f/{folder}/tree/{path...}", h.auth(h.folderRoute(h.tree)))
	h.mux.HandleFunc("GET /f/{folder}/raw/{path...}", h.auth(h.folderRoute(h.raw)))
	h.mux.HandleFunc("GET /f/{folder}/history/{path...}", h.auth(h.folderRoute(h.history)))
	h.mux.HandleFunc("/", h.auth(func(w http.ResponseWriter, r *http.Request, _ User) { h.notFound(w, r) }))
	return h
}

// ServeHTTP serves the view with its security headers: a strict content
// security policy (no script at all, styles from our own origin), no
// framing, no sniffing, nothing cached.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) cookieName() string {
	if h.opts.Secure {
		return "__Host-peersync"
	}
	return "peersync"
}

// currentUser returns the user of the request's session, as the users file
// says now (a removed user's session ends).
func (h *Handler) currentUser(r *http.Request) (User, bool) {
	c, err := r.Cookie(h.cookieName())
	if err != nil {
		return User{}, false
	}
	name, ok := h.sess.user(c.Value)
	if !ok {
		return User{}, false
	}
	u, ok, err := h.opts.Users.Lookup(name)
	if err != nil {
		h.opts.Log.Error("webview: users file", "err", err)
		return User{}, false
	}
	if !ok {
		h.sess.end(c.Value)
	}
	return u, ok
}

// auth runs next for a logged-in user; others go to the login page, which
// brings them back afterwards.
func (h *Handler) auth(next func(http.ResponseWriter, *http.Request, User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := h.currentUser(r)
		if !ok {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next(w, r, u)
	}
}

// folderReq is a request about one granted folder.
type folderReq struct {
	user   User
	folder string
	label  string // the folder's label, or its ID
	path   string // slash path in the folder, "" for the root
	rev    gitstore.Hash
}

// folderRoute checks that the folder exists and is granted (otherwise the
// answer is the same 404 as for a folder that does not exist) and parses
// the path and rev.
func (h *Handler) folderRoute(next func(http.ResponseWriter, *http.Request, folderReq)) func(http.ResponseWriter, *http.Request, User) {
	return func(w http.ResponseWriter, r *http.Request, u User) {
		fr := folderReq{user: u, folder: r.PathValue("folder"), path: strings.Trim(r.PathValue("path"), "/")}
		f, ok := h.lookupFolder(fr.folder)
		if !u.Grants(fr.folder) || !ok {
			h.notFound(w, r)
			return
		}
		fr.label = folderName(f)
		if v := r.URL.Query().Get("rev"); v != "" {
			rev, err := gitstore.ParseHash(v)
			if err != nil {
				h.fail(w, r, u, http.StatusBadRequest, "That version name is not valid.")
				return
			}
			fr.rev = rev
		}
		if fr.path != "" && gitstore.ValidPath(fr.path) != nil {
			h.notFound(w, r)
			return
		}
		next(w, r, fr)
	}
}

func (h *Handler) lookupFolder(id string) (sync.FolderStatus, bool) {
	for _, f := range h.src.Status().Folders {
		if f.ID == id {
			return f, true
		}
	}
	return sync.FolderStatus{}, false
}

// folderName is what the pages call a folder: its label, else its ID.
func folderName(f sync.FolderStatus) string {
	if f.Label != "" {
		return f.Label
	}
	return f.ID
}

// readErr answers a failed read: absent things are 404, the rest 500.
func (h *Handler) readErr(w http.ResponseWriter, r *http.Request, u User, err error) {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, sync.ErrUnknownFolder) {
		h.notFound(w, r)
		return
	}
	if strings.Contains(err.Error(), "not a directory") || strings.Contains(err.Error(), "is a directory") {
		h.fail(w, r, u, http.StatusBadRequest, "That is not what the link expects (a file for a folder or the other way round).")
		return
	}
	h.opts.Log.Error("webview: read", "url", r.URL.Path, "err", err)
	h.fail(w, r, u, http.StatusInternalServerError, "The server could not read this. Its log says why.")
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	u, _ := h.currentUser(r)
	h.fail(w, r, u, http.StatusNotFound, "Nothing here: no such folder, file or version, or not yours to see.")
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, u User, status int, msg string) {
	h.render(w, status, page{User: u.Name, Heading: http.StatusText(status), Error: msg})
}

func (h *Handler) folders(w http.ResponseWriter, r *http.Request, u User) {
	st := h.src.Status()
	var rows []folderRow
	for _, f := range st.Folders {
		if !u.Grants(f.ID) {
			continue
		}
		row := folderRow{Name: folderName(f), URL: treeURL(f.ID, "", gitstore.Hash{})}
		if f.Stopped != "" {
			row.Stopped = "stopped: " + f.Stopped
		}
		if f.Label != "" && f.Label != f.ID {
			row.ID = f.ID
		}
		if f.Paused {
			row.Stopped = "paused: the view shows the last version synced"
		}
		rows = append(rows, row)
	}
	h.render(w, http.StatusOK, page{User: u.Name, Heading: "Folders", Folders: rows, ShowFolders: true})
}

func (h *Handler) tree(w http.ResponseWriter, r *http.Request, fr folderReq) {
	list, err := h.src.ListFiles(r.Context(), fr.folder, fr.rev, fr.path)
	if err != nil {
		h.readErr(w, r, fr.user, err)
		return
	}
	td := &treeData{Crumbs: crumbs(fr.folder, fr.label, fr.path, fr.rev), Empty: len(list) == 0}
	if !fr.rev.IsZero() {
		td.Rev, td.RevShort, td.CurrentURL = fr.rev.String(), fr.rev.String()[:10], treeURL(fr.folder, fr.path, gitstore.Hash{})
	}
	for _, e := range list {
		row := entryRow{Name: e.Name, Dir: e.Type == gitstore.TypeDir}
		if row.Dir {
			row.URL = treeURL(fr.folder, e.Path, fr.rev)
		} else {
			row.URL = rawURL(fr.folder, e.Path, fr.rev)
			row.Size = humanSize(e.Size)
			row.HistoryURL = historyURL(fr.folder, e.Path)
		}
		td.Entries = append(td.Entries, row)
	}
	heading := fr.label
	if fr.path != "" {
		heading = path.Base(fr.path)
	}
	h.render(w, http.StatusOK, page{User: fr.user.Name, Heading: heading, Tree: td})
}

func (h *Handler) raw(w http.ResponseWriter, r *http.Request, fr folderReq) {
	if fr.path == "" {
		h.notFound(w, r)
		return
	}
	rc, size, err := h.src.OpenFile(r.Context(), fr.folder, fr.rev, fr.path)
	if err != nil {
		h.readErr(w, r, fr.user, err)
		return
	}
	defer rc.Close()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(fr.path)}))
	hd.Set("Content-Length", strconv.FormatInt(size, 10))
	hd.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil {
		h.opts.Log.Debug("webview: download cut short", "url", r.URL.Path, "err", err)
	}
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request, fr folderReq) {
	if fr.path == "" {
		h.notFound(w, r)
		return
	}
	changes, err := h.src.History(r.Context(), fr.folder, fr.path, h.opts.HistoryLimit)
	if err != nil {
		h.readErr(w, r, fr.user, err)
		return
	}
	if len(changes) == 0 {
		h.notFound(w, r)
		return
	}
	names := map[string]string{}
	for _, p := range h.src.Status().Peers {
		names[p.Device.String()] = p.Name
	}
	dir := path.Dir(fr.path)
	if dir == "." {
		dir = ""
	}
	hd := &historyData{Crumbs: crumbs(fr.folder, fr.label, dir, gitstore.Hash{}), File: path.Base(fr.path)}
	for _, c := range changes {
		row := versionRow{
			When:   c.Time.Local().Format("2006-01-02 15:04 MST"),
			Action: string(c.Action),
			Who:    authorName(c.Author),
			Rev:    c.Commit.String()[:10],
		}
		if c.From != "" {
			row.Via = names[c.From]
			if row.Via == "" {
				row.Via = c.From
			}
		}
		if c.Action != gitstore.ActionDelete && c.Path == fr.path {
			row.URL = rawURL(fr.folder, c.Path, c.Commit)
			row.TreeURL = treeURL(fr.folder, path.Dir(c.Path), c.Commit)
		}
		hd.Versions = append(hd.Versions, row)
	}
	h.render(w, http.StatusOK, page{User: fr.user.Name, Heading: "History of " + path.Base(fr.path), History: hd})
}

// authorName returns the name part of "Name <email>".
func authorName(a string) string {
	if n, _, ok := strings.Cut(a, " <"); ok {
		return n
	}
	return a
}

func escapePath(p string) string {
	if p == "" {
		return ""
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

func withRev(u string, rev gitstore.Hash) string {
	if rev.IsZero() {
		return u
	}
	return u + "?rev=" + rev.String()
}

func treeURL(folder, dir string, rev gitstore.Hash) string {
	if dir == "." {
		dir = ""
	}
	return withRev("/f/"+url.PathEscape(folder)+"/tree/"+escapePath(dir), rev)
}

func rawURL(folder, p string, rev gitstore.Hash) string {
	return withRev("/f/"+url.PathEscape(folder)+"/raw/"+escapePath(p), rev)
}

func historyURL(folder, p string) string {
	return "/f/" + url.PathEscape(folder) + "/history/" + escapePath(p)
}

// crumbs are the links from the folder's root (called name) down to p.
func crumbs(folder, name, p string, rev gitstore.Hash) []crumb {
	out := []crumb{{Name: name, URL: treeURL(folder, "", rev)}}
	if p == "" {
		return out
	}
	parts := strings.Split(p, "/")
	for i := range parts {
		out = append(out, crumb{Name: parts[i], URL: treeURL(folder, strings.Join(parts[:i+1], "/"), rev)})
	}
	return out
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
