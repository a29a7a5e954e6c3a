package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/sync"
)

// The routes of the sharing model: removing and pausing folders and
// peers, reverting a receive-only folder, browsing a folder's files, and
// the pending devices and folder offers.

func (s *Server) deleteFolder(w http.ResponseWriter, r *http.Request) {
	if err := s.e.RemoveFolder(r.PathValue("id")); err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pauseFolder serves POST /rest/folders/{id}/pause and .../resume.
func (s *Server) pauseFolder(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := s.e.PauseFolder(id, paused); err != nil {
			engineError(w, err, http.StatusBadRequest)
			return
		}
		if f, ok := s.folderStatus(w, id); ok {
			writeJSON(w, http.StatusOK, f)
		}
	}
}

func (s *Server) revertFolder(w http.ResponseWriter, r *http.Request) {
	changes, err := s.e.RevertFolder(r.Context(), r.PathValue("id"))
	if err != nil {
		engineError(w, err, http.StatusConflict)
		return
	}
	writeJSON(w, http.StatusOK, Changes{Changes: nonNil(changes)})
}

// queryRev parses the optional ?rev= (zero: the head), or writes a 400.
func queryRev(w http.ResponseWriter, r *http.Request) (gitstore.Hash, bool) {
	var rev gitstore.Hash
	if v := r.URL.Query().Get("rev"); v != "" {
		if err := rev.UnmarshalText([]byte(v)); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("rev %q: want a 40-hex commit ID", v))
			return rev, false
		}
	}
	return rev, true
}

func (s *Server) getFiles(w http.ResponseWriter, r *http.Request) {
	rev, ok := queryRev(w, r)
	if !ok {
		return
	}
	list, err := s.e.ListFiles(r.Context(), r.PathValue("id"), rev, r.URL.Query().Get("dir"))
	if err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(list))
}

// getFile sends a file's bytes as an attachment of type
// application/octet-stream (never rendered by a browser in the API's
// origin, whatever the file holds).
func (s *Server) getFile(w http.ResponseWriter, r *http.Request) {
	rev, ok := queryRev(w, r)
	if !ok {
		return
	}
	path := r.URL.Query().Get("path")
	if path == "" {
		writeError(w, http.StatusBadRequest, errors.New("want ?path=P"))
		return
	}
	rc, size, err := s.e.OpenFile(r.Context(), r.PathValue("id"), rev, path)
	if err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Content-Disposition", attachment(path))
	h.Set("Content-Security-Policy", "sandbox")
	w.WriteHeader(http.StatusOK)
	if _, err := copyN(w, rc, size); err != nil {
		s.log.Warn("file download cut short", "folder", r.PathValue("id"), "path", path, "err", err)
	}
}

// peerExists writes a 404 unless d is in the sync table.
func (s *Server) peerExists(w http.ResponseWriter, d crypto.DeviceID) bool {
	if _, ok := s.e.Peer(d); !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w %s", sync.ErrUnknownPeer, d))
		return false
	}
	return true
}

// pausePeer serves POST /rest/peers/{device}/pause and .../resume.
func (s *Server) pausePeer(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, ok := pathDevice(w, r)
		if !ok || !s.peerExists(w, d) {
			return
		}
		if err := s.e.PausePeer(d, paused); err != nil {
			engineError(w, err, http.StatusBadRequest)
			return
		}
		if ps, ok := s.peerStatus(w, d); ok {
			writeJSON(w, http.StatusOK, ps)
		}
	}
}

func (s *Server) getPending(w http.ResponseWriter, r *http.Request) {
	p := s.e.Pending()
	p.Devices, p.Folders = nonNil(p.Devices), nonNil(p.Folders)
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) ignoreDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := pathDevice(w, r)
	if !ok {
		return
	}
	if err := s.e.IgnoreDevice(d); err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) ignoreFolder(w http.ResponseWriter, r *http.Request) {
	from, err := crypto.ParseDeviceID(r.URL.Query().Get("from"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("want ?from=DEVICEID (the device that offers the folder): %w", err))
		return
	}
	if err := s.e.IgnoreFolder(r.PathValue("id"), from); err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// attachment is a Content-Disposition for downloading path under its
// base name (RFC 6266 with an RFC 5987 UTF-8 form).
func attachment(path string) string {
	name := path[strings.LastIndex(path, "/")+1:]
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii, url.PathEscape(name))
}

// copyN copies exactly n bytes (the size the store gave) from r to w.
func copyN(w io.Writer, r io.Reader, n int64) (int64, error) {
	return io.CopyN(w, r, n)
}
