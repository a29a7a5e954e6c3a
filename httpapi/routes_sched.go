package httpapi

import (
	"errors"
	"net/http"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

// The routes of schedules, bandwidth limits and sync-now.

// WindowBody is the body of PUT /rest/schedule and
// PUT /rest/peers/{device}/schedule: a window, or null (the global one:
// always; a peer's: follow the global one).
type WindowBody struct {
	Window *sync.Window `json:"window"`
}

// PeerSchedule is one peer's row of GET /rest/schedule.
type PeerSchedule struct {
	Device crypto.DeviceID `json:"device"`
	Name   string          `json:"name,omitempty"`
	// Window is the peer's own window; null follows the global one.
	Window *sync.Window `json:"window"`
	// State is the window's state now: "open", "closed until 22:00".
	State string `json:"state,omitempty"`
}

// Schedule is GET /rest/schedule: the global window and every peer's row.
type Schedule struct {
	Window *sync.Window   `json:"window"`
	Peers  []PeerSchedule `json:"peers"`
}

// PeerLimits is one peer's row of GET /rest/limits.
type PeerLimits struct {
	Device crypto.DeviceID `json:"device"`
	Name   string          `json:"name,omitempty"`
	Up     int64           `json:"up"`
	Down   int64           `json:"down"`
}

// Limits is GET /rest/limits: the global limits (bytes/s, 0 = none) and
// every peer's. (Not embedding sync.RateLimit: its UnmarshalJSON would
// decode the whole value.)
type Limits struct {
	Up    int64        `json:"up"`
	Down  int64        `json:"down"`
	Peers []PeerLimits `json:"peers"`
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	out := Schedule{Window: s.e.Schedule(), Peers: []PeerSchedule{}}
	for _, p := range s.e.Status().Peers {
		out.Peers = append(out.Peers, PeerSchedule{Device: p.Device, Name: p.Name, Window: p.Schedule, State: p.Window})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) putSchedule(w http.ResponseWriter, r *http.Request) {
	var in WindowBody
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.e.SetSchedule(in.Window); err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	s.getSchedule(w, r)
}

func (s *Server) putPeerSchedule(w http.ResponseWriter, r *http.Request) {
	d, ok := pathDevice(w, r)
	if !ok || !s.peerExists(w, d) {
		return
	}
	var in WindowBody
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.e.SetPeerSchedule(d, in.Window); err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	s.getSchedule(w, r)
}

func (s *Server) getLimits(w http.ResponseWriter, r *http.Request) {
	global := s.e.Limits()
	out := Limits{Up: global.Up, Down: global.Down, Peers: []PeerLimits{}}
	for _, p := range s.e.Peers() {
		out.Peers = append(out.Peers, PeerLimits{Device: p.Device, Name: p.Name, Up: p.Limits.Up, Down: p.Limits.Down})
	}
	writeJSON(w, http.StatusOK, out)
}

// putLimits serves PUT /rest/limits and PUT /rest/peers/{device}/limits.
func (s *Server) putLimits(w http.ResponseWriter, r *http.Request) {
	var d crypto.DeviceID
	if r.PathValue("device") != "" {
		var ok bool
		if d, ok = pathDevice(w, r); !ok || !s.peerExists(w, d) {
			return
		}
	}
	var in sync.RateLimit
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.e.SetLimits(d, in); err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	s.getLimits(w, r)
}

// SyncNowRequest is the body of POST /rest/sync-now: "" / absent = all.
type SyncNowRequest struct {
	Peer   string `json:"peer,omitempty"`
	Folder string `json:"folder,omitempty"`
}

func (s *Server) postSyncNow(w http.ResponseWriter, r *http.Request) {
	var in SyncNowRequest
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var d crypto.DeviceID
	if in.Peer != "" {
		var err error
		if d, err = crypto.ParseDeviceID(in.Peer); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if !s.peerExists(w, d) {
			return
		}
	}
	err := s.e.SyncNow(d, in.Folder)
	if errors.Is(err, sync.ErrNotRunning) {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	if err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
