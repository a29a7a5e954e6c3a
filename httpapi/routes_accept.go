package httpapi

import (
	"fmt"
	"net/http"

	"github.com/peersync/peersync/crypto"
)

// AcceptDeviceRequest is the body of POST
// /rest/pending/devices/{device}/accept: the folders to share with it.
type AcceptDeviceRequest struct {
	Folders []string `json:"folders"`
}

func (s *Server) acceptDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := pathDevice(w, r)
	if !ok {
		return
	}
	var in AcceptDeviceRequest
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.e.AcceptDevice(d, in.Folders); err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	if ps, ok := s.peerStatus(w, d); ok {
		writeJSON(w, http.StatusOK, ps)
	}
}

// AcceptFolderRequest is the body of POST
// /rest/pending/folders/{id}/accept: where to put the folder ("": a folder
// named after its label under the default parent) and, when several
// devices offer it, which one's offer (the others may be accepted later
// with the same call).
type AcceptFolderRequest struct {
	Path string `json:"path,omitempty"`
	From string `json:"from,omitempty"`
}

func (s *Server) acceptFolder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var in AcceptFolderRequest
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var from crypto.DeviceID
	if in.From != "" {
		var err error
		if from, err = crypto.ParseDeviceID(in.From); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("from %q: %w", in.From, err))
			return
		}
	}
	offered := false
	for _, o := range s.e.Pending().Folders {
		offered = offered || (o.ID == id && (from.IsZero() || o.From == from))
	}
	if !offered {
		writeError(w, http.StatusNotFound, fmt.Errorf("no offer of folder %q%s: GET /rest/pending lists them", id, fromText(in.From)))
		return
	}
	f, err := s.e.AcceptFolder(r.Context(), id, in.Path)
	if err != nil {
		engineError(w, err, http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func fromText(from string) string {
	if from == "" {
		return ""
	}
	return " from " + from
}
