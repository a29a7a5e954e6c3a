package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/peersync/peersync/sync"
)

// The routes of the network settings (sync.Settings).

// SettingsBody is GET /rest/settings and the answer of PUT: the network
// settings in force (TURN passwords left out: each entry's hasPass says
// one is saved) and whether the running engine listens elsewhere than
// they say, so that a restart is needed (sync.Engine.RestartNeeded).
type SettingsBody struct {
	sync.Settings
	RestartNeeded bool `json:"restartNeeded"`
}

// SettingsError is the body of PUT /rest/settings' 400 for a value that is
// not valid: the error and the field it is about, in the settings' JSON
// spelling ("listenAddr", "rendezvousAddr", "rendezvousDevice", "stun",
// "turn"); "" for a body that is not JSON of the settings.
type SettingsError struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, SettingsBody{Settings: s.e.Settings(), RestartNeeded: s.e.RestartNeeded()})
}

// putSettings saves the settings (a TURN entry without "pass" keeps the
// saved password) and answers them as GET does.
func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) {
	var in sync.Settings
	if err := readJSON(r, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, SettingsError{Error: err.Error()})
		return
	}
	if err := s.e.SetSettings(in); err != nil {
		var se *sync.SettingsError
		if errors.As(err, &se) {
			writeJSON(w, http.StatusBadRequest, SettingsError{Error: se.Err.Error(), Field: se.Field})
			return
		}
		engineError(w, err, http.StatusInternalServerError)
		return
	}
	s.getSettings(w, r)
}

// Settings is GET /rest/settings.
func (c *Client) Settings(ctx context.Context) (SettingsBody, error) {
	var out SettingsBody
	err := c.Do(ctx, "GET", "/rest/settings", nil, &out)
	return out, err
}

// SetSettings is PUT /rest/settings. A value that is not valid is a
// *StatusError with Code 400 whose Message names the reason (the field is
// in the body's "field": see SettingsError).
func (c *Client) SetSettings(ctx context.Context, s sync.Settings) (SettingsBody, error) {
	var out SettingsBody
	err := c.Do(ctx, "PUT", "/rest/settings", s, &out)
	return out, err
}
