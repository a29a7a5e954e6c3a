package webview

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
)

//go:embed assets/page.html assets/style.css
var assets embed.FS

var pageTmpl = template.Must(template.ParseFS(assets, "assets/page.html"))

var styleCSS, _ = assets.ReadFile("assets/style.css")

// page is what the one template renders; exactly one of Login, Folders
// (ShowFolders), Tree and History is set, or only Error.
type page struct {
	Title       string
	User        string // logged-in user; "" on the login page
	Heading     string
	Error       string
	Login       *loginData
	ShowFolders bool
	Folders     []folderRow
	Tree        *treeData
	History     *historyData
}

type loginData struct{ Next, User string }

type folderRow struct{ Name, ID, URL, Stopped string } // ID only when it differs from the label

type crumb struct{ Name, URL string }

type treeData struct {
	Crumbs                    []crumb
	Rev, RevShort, CurrentURL string // set when showing an old version
	Entries                   []entryRow
	Empty                     bool
}

type entryRow struct {
	Name, URL, Size, HistoryURL string
	Dir                         bool
}

type historyData struct {
	Crumbs   []crumb
	File     string
	Versions []versionRow
}

type versionRow struct {
	When, Action, Who, Via, Rev string
	URL, TreeURL                string // "" for a deletion
}

// render writes the page (html/template escapes every name in it).
func (h *Handler) render(w http.ResponseWriter, status int, p page) {
	p.Title = h.opts.Title
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, p); err != nil {
		h.opts.Log.Error("webview: render", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func serveCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(styleCSS)
}
