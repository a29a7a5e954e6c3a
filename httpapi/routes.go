package httpapi

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/sync"
)

// route is one operation of the API; the OpenAPI document lists exactly
// these (TestOpenAPIMatchesRoutes).
type route struct {
	method, pattern string
	handler         http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/rest/status", s.getStatus},
		{"GET", "/rest/events", s.serveEvents},
		{"GET", "/rest/openapi.json", s.getOpenAPI},
		{"GET", "/rest/device", s.getDevice},
		{"PATCH", "/rest/device", s.patchDevice},
		{"GET", "/rest/folders", s.getFolders},
		{"POST", "/rest/folders", s.postFolder},
		{"POST", "/rest/folders/{id}/scan", s.scanFolder},
		{"GET", "/rest/folders/{id}/history", s.getHistory},
		{"POST", "/rest/folders/{id}/restore", s.postRestore},
		{"GET", "/rest/folders/{id}/conflicts", s.getConflicts},
		{"POST", "/rest/folders/{id}/conflicts/resolve", s.resolveConflict},
		{"GET", "/rest/peers", s.getPeers},
		{"PUT", "/rest/peers/{device}", s.putPeer},
		{"DELETE", "/rest/peers/{device}", s.deletePeer},

		{"DELETE", "/rest/folders/{id}", s.deleteFolder},
		{"POST", "/rest/folders/{id}/pause", s.pauseFolder(true)},
		{"POST", "/rest/folders/{id}/resume", s.pauseFolder(false)},
		{"POST", "/rest/folders/{id}/revert", s.revertFolder},
		{"GET", "/rest/folders/{id}/files", s.getFiles},
		{"GET", "/rest/folders/{id}/file", s.getFile},
		{"POST", "/rest/peers/{device}/pause", s.pausePeer(true)},
		{"POST", "/rest/peers/{device}/resume", s.pausePeer(false)},
		{"GET", "/rest/pending", s.getPending},
		{"POST", "/rest/pending/devices/{device}/accept", s.acceptDevice},
		{"DELETE", "/rest/pending/devices/{device}", s.ignoreDevice},
		{"POST", "/rest/pending/folders/{id}/accept", s.acceptFolder},
		{"DELETE", "/rest/pending/folders/{id}", s.ignoreFolder},

		{"GET", "/rest/schedule", s.getSchedule},
		{"PUT", "/rest/schedule", s.putSchedule},
		{"PUT", "/rest/peers/{device}/schedule", s.putPeerSchedule},
		{"GET", "/rest/limits", s.getLimits},
		{"PUT", "/rest/limits", s.putLimits},
		{"PUT", "/rest/peers/{device}/limits", s.putLimits},
		{"POST", "/rest/sync-now", s.postSyncNow},

		{"GET", "/rest/settings", s.getSettings},
		{"PUT", "/rest/settings", s.putSettings},
	}
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.e.Status())
}

func (s *Server) getOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}

// Device is this device as GET /rest/device shows it.
type Device struct {
	Device crypto.DeviceID `json:"device"`
	Name   string          `json:"name"`
	// PubKey is the ssh-ed25519 public-key line (what `desktop id` prints
	// on its second line).
	PubKey string `json:"pubkey"`
}

func (s *Server) device() Device {
	d := s.e.DeviceID()
	return Device{Device: d, Name: s.e.Name(), PubKey: crypto.AuthorizedKey(d)}
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.device())
}

func (s *Server) patchDevice(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name *string `json:"name"`
	}
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if in.Name != nil {
		if err := s.e.SetName(*in.Name); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s.device())
}

func (s *Server) getFolders(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.e.Status().Folders)
}

// folderStatus returns the status of folder id, or writes a 404.
func (s *Server) folderStatus(w http.ResponseWriter, id string) (sync.FolderStatus, bool) {
	for _, f := range s.e.Status().Folders {
		if f.ID == id {
			return f, true
		}
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("%w %q", sync.ErrUnknownFolder, id))
	return sync.FolderStatus{}, false
}

// NewFolder is the body of POST /rest/folders.
type NewFolder struct {
	ID    string `json:"id"`
	Path  string `json:"path"`
	Label string `json:"label,omitempty"`
}

func (s *Server) postFolder(w http.ResponseWriter, r *http.Request) {
	var in NewFolder
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if in.ID == "" || in.Path == "" {
		writeError(w, http.StatusBadRequest, errors.New(`want {"id","path"}`))
		return
	}
	if err := s.e.AddFolder(r.Context(), sync.FolderConfig{ID: in.ID, Path: in.Path, Label: in.Label}); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if f, ok := s.folderStatus(w, in.ID); ok {
		writeJSON(w, http.StatusCreated, f)
	}
}

// engineError writes err with the status it calls for: 404 for an unknown
// folder, 409 for a deletion the mass-delete guard refused, else status.
func engineError(w http.ResponseWriter, err error, status int) {
	switch {
	case errors.Is(err, sync.ErrUnknownFolder), errors.Is(err, sync.ErrUnknownPeer), errors.Is(err, crypto.ErrUnknownPeer),
		errors.Is(err, fs.ErrNotExist):
		status = http.StatusNotFound
	case errors.Is(err, gitstore.ErrMassDelete):
		status = http.StatusConflict
	case errors.Is(err, sync.ErrClosed):
		status = http.StatusServiceUnavailable
	}
	writeError(w, status, err)
}

// Changes is the answer of the routes that commit: the commits made.
type Changes struct {
	Changes []gitstore.Change `json:"changes"`
}

func (s *Server) scanFolder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.folderStatus(w, id); !ok {
		return
	}
	var changes []gitstore.Change
	var err error
	if r.URL.Query().Get("allow-mass-delete") == "true" {
		changes, err = s.e.AllowMassDelete(r.Context(), id)
	} else {
		var res map[string][]gitstore.Change
		res, err = s.e.Scan(r.Context(), id)
		changes = res[id]
	}
	if err != nil {
		engineError(w, err, http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, Changes{Changes: nonNil(changes)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want a number >= 0", v))
			return
		}
		limit = n
	}
	changes, err := s.e.History(r.Context(), r.PathValue("id"), q.Get("path"), limit)
	if err != nil {
		engineError(w, err, http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, Changes{Changes: nonNil(changes)})
}

// RestoreRequest is the body of POST /rest/folders/{id}/restore.
type RestoreRequest struct {
	Path string        `json:"path"`
	Rev  gitstore.Hash `json:"rev"`
}

func (s *Server) postRestore(w http.ResponseWriter, r *http.Request) {
	var in RestoreRequest
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if in.Path == "" || in.Rev.IsZero() {
		writeError(w, http.StatusBadRequest, errors.New(`want {"path","rev"} (rev: a 40-hex commit ID from the history)`))
		return
	}
	c, err := s.e.Restore(r.Context(), r.PathValue("id"), in.Path, in.Rev)
	if err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	changes := []gitstore.Change{}
	if !c.Commit.IsZero() {
		changes = append(changes, c)
	}
	writeJSON(w, http.StatusOK, Changes{Changes: changes})
}

func (s *Server) getPeers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.e.Status().Peers)
}

// pathDevice parses the {device} of the path, or writes a 400.
func pathDevice(w http.ResponseWriter, r *http.Request) (crypto.DeviceID, bool) {
	d, err := crypto.ParseDeviceID(r.PathValue("device"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("device %q: %w", r.PathValue("device"), err))
		return d, false
	}
	return d, true
}

// peerStatus returns the status of peer d, or writes a 404.
func (s *Server) peerStatus(w http.ResponseWriter, d crypto.DeviceID) (sync.PeerStatus, bool) {
	for _, p := range s.e.Status().Peers {
		if p.Device == d {
			return p, true
		}
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("no peer %s", d))
	return sync.PeerStatus{}, false
}

func (s *Server) putPeer(w http.ResponseWriter, r *http.Request) {
	d, ok := pathDevice(w, r)
	if !ok {
		return
	}
	var p sync.PeerConfig
	if err := readJSON(r, &p); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if !p.Device.IsZero() && p.Device != d {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body names device %s, the path %s", p.Device, d))
		return
	}
	p.Device = d
	if err := s.e.SetPeer(p); err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	if ps, ok := s.peerStatus(w, d); ok {
		writeJSON(w, http.StatusOK, ps)
	}
}

func (s *Server) deletePeer(w http.ResponseWriter, r *http.Request) {
	d, ok := pathDevice(w, r)
	if !ok {
		return
	}
	if _, ok := s.peerStatus(w, d); !ok {
		return
	}
	if err := s.e.RemovePeer(d); err != nil {
		engineError(w, err, http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
