package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/sync"
)

// openAPIDoc is the part of the OpenAPI document the tests read.
type openAPIDoc struct {
	OpenAPI string                                 `json:"openapi"`
	Paths   map[string]map[string]openAPIOperation `json:"paths"`
}

type openAPIOperation struct {
	Summary    string `json:"summary"`
	Parameters []struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
	} `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
	RequestBody *struct {
		Content map[string]struct {
			Example json.RawMessage `json:"example"`
		} `json:"content"`
	} `json:"requestBody"`
}

func readOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(OpenAPI(), &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "an OpenAPI 3 document")
	return doc
}

// operations lists "METHOD PATH" of the document, sorted.
func (d openAPIDoc) operations() []string {
	var ops []string
	for path, methods := range d.Paths {
		for m := range methods {
			ops = append(ops, strings.ToUpper(m)+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

// TestOpenAPIMatchesRoutes: every route the handler serves is in the
// document, and the document lists no route the handler lacks; every
// operation documents 401 and 403 and has a summary.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := readOpenAPI(t)
	var routes []string
	for _, rt := range (&Server{}).routes() {
		routes = append(routes, rt.method+" "+rt.pattern)
	}
	sort.Strings(routes)
	assert.Equal(t, routes, doc.operations())
	for path, methods := range doc.Paths {
		for m, op := range methods {
			assert.NotEmpty(t, op.Summary, "%s %s", m, path)
			assert.Contains(t, op.Responses, "401", "%s %s", m, path)
			assert.Contains(t, op.Responses, "403", "%s %s", m, path)
		}
	}
}

// needsPending are the operations whose success needs a device that
// tried to connect or a folder offer: TestAcceptDeviceAndFolder calls them
// with those; here they must answer a documented error.
var needsPending = map[string]bool{
	"POST /rest/pending/devices/{device}/accept": true,
	"POST /rest/pending/folders/{id}/accept":     true,
}

// TestOpenAPIRoutesAnswer: every documented operation, called on a real
// Engine with its documented example body, answers with one of its
// documented statuses (and JSON where it answers JSON); the same call
// without the key is a 401.
func TestOpenAPIRoutesAnswer(t *testing.T) {
	f := newFixture(t, Options{})
	f.run(t) // sync-now needs a running engine
	ctx := context.Background()
	dir := t.TempDir()
	_, err := f.client.AddFolder(ctx, NewFolder{ID: "docs", Path: dir})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
	changes, err := f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)
	require.Len(t, changes, 1)
	peer, received := receivedFrom(t, f)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "local.txt"), []byte("not sent"), 0o644))
	f.api.Publish(sync.Event{Kind: sync.EventError})

	doc := readOpenAPI(t)
	ops := doc.operations()
	// Destructive calls last, so the others find the folder and the peer.
	last := func(op string) int {
		if strings.HasPrefix(op, "DELETE") {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(ops, func(a, b string) int { return last(a) - last(b) })
	for _, o := range ops {
		method, path, _ := strings.Cut(o, " ")
		op := doc.Paths[path][strings.ToLower(method)]
		url := strings.NewReplacer("{id}", "docs", "{device}", peer.String()).Replace(path)
		query := map[string]string{"from": peer.String(), "path": received}
		sep := "?"
		for _, p := range op.Parameters {
			if p.In == "query" && p.Required {
				url += sep + p.Name + "=" + query[p.Name]
				sep = "&"
			}
		}
		var body string
		if op.RequestBody != nil {
			ex := op.RequestBody.Content["application/json"].Example
			require.NotEmpty(t, ex, "%s: the request body needs an example", o)
			body = string(ex)
			if strings.HasSuffix(path, "/restore") {
				body = fmt.Sprintf(`{"path":"notes.txt","rev":%q}`, changes[0].Commit)
			}
			if method == "POST" && path == "/rest/folders" {
				body = fmt.Sprintf(`{"id":"photos","path":%q,"label":"Photos"}`, t.TempDir())
			}
		}
		t.Run(o, func(t *testing.T) {
			if path == "/rest/events" {
				url += "?since=0" // the stream's headers come at once
			}
			if path == "/rest/folders/{id}/conflicts/resolve" { // the example's copy
				require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.sync-conflict-20260301-120000-AAAAAAA.txt"), []byte("y"), 0o644))
				_, err := f.client.Scan(ctx, "docs", false)
				require.NoError(t, err)
			}
			if path == "/rest/folders/{id}/revert" {
				_, err := f.client.Scan(ctx, "docs", false) // a local change to revert
				require.NoError(t, err)
			}
			req, err := http.NewRequest(method, f.url+url, strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("X-API-Key", f.client.Key)
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			res, err := http.DefaultClient.Do(req.WithContext(rctx))
			require.NoError(t, err)
			defer res.Body.Close()
			code := strconv.Itoa(res.StatusCode)
			assert.Contains(t, op.Responses, code, "%s answered %d, not documented", o, res.StatusCode)
			if !needsPending[o] {
				assert.Less(t, res.StatusCode, 300, "the example call succeeds")
			}
			if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				var v any
				assert.NoError(t, json.NewDecoder(res.Body).Decode(&v))
			}

			req, err = http.NewRequest(method, f.url+url, strings.NewReader(body))
			require.NoError(t, err)
			res2, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			res2.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, res2.StatusCode)
		})
	}
}
