package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/peersync/peersync/gitstore"
)

// The routes of conflict copies: list them, keep one side.

// Conflicts is GET /rest/folders/{id}/conflicts: the folder's conflict
// copies, each with the file it is a copy of and who made each side, when.
type Conflicts struct {
	Conflicts []gitstore.Conflict `json:"conflicts"`
}

// ResolveRequest is the body of POST /rest/folders/{id}/conflicts/resolve:
// the copy's path and the side to keep, "copy" (its content goes to the
// original path) or "original". Either way the copy is deleted.
type ResolveRequest struct {
	Copy string        `json:"copy"`
	Keep gitstore.Keep `json:"keep"`
}

func (s *Server) getConflicts(w http.ResponseWriter, r *http.Request) {
	cs, err := s.e.Conflicts(r.Context(), r.PathValue("id"))
	if err != nil {
		engineError(w, err, http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, Conflicts{Conflicts: nonNil(cs)})
}

func (s *Server) resolveConflict(w http.ResponseWriter, r *http.Request) {
	var in ResolveRequest
	if err := readJSON(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if in.Copy == "" || (in.Keep != gitstore.KeepCopy && in.Keep != gitstore.KeepOriginal) {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`want {"copy": PATH, "keep": %q|%q}`, gitstore.KeepCopy, gitstore.KeepOriginal))
		return
	}
	out, err := s.e.ResolveConflict(r.Context(), r.PathValue("id"), in.Copy, in.Keep)
	switch {
	case errors.Is(err, gitstore.ErrNotConflictCopy):
		writeError(w, http.StatusNotFound, err)
		return
	case errors.Is(err, gitstore.ErrLocalEdit):
		writeError(w, http.StatusConflict, err)
		return
	case err != nil:
		engineError(w, err, http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, Changes{Changes: nonNil(out)})
}

// Conflicts is GET /rest/folders/{id}/conflicts.
func (c *Client) Conflicts(ctx context.Context, folder string) ([]gitstore.Conflict, error) {
	var out Conflicts
	err := c.Do(ctx, "GET", "/rest/folders/"+url.PathEscape(folder)+"/conflicts", nil, &out)
	return out.Conflicts, err
}

// ResolveConflict is POST /rest/folders/{id}/conflicts/resolve: the
// commits made.
func (c *Client) ResolveConflict(ctx context.Context, folder, copy string, keep gitstore.Keep) ([]gitstore.Change, error) {
	var out Changes
	err := c.Do(ctx, "POST", "/rest/folders/"+url.PathEscape(folder)+"/conflicts/resolve", ResolveRequest{Copy: copy, Keep: keep}, &out)
	return out.Changes, err
}
