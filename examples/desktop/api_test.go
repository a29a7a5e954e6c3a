package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/httpapi"
)

// TestUIRefusesCrossSiteWrites: through the UI's listener, the API takes a
// state change only with the key in its header. A cross-site form or fetch
// cannot set that header (the key is the CSRF token), and a page that
// rebinds its name to this machine sends a foreign Host: both are refused
// and change nothing; the same request from the page works.
func TestUIRefusesCrossSiteWrites(t *testing.T) {
	e := newEngine(t)
	key, err := httpapi.LoadOrCreateKey(t.TempDir())
	require.NoError(t, err)
	api := httpapi.New(e, httpapi.Options{Key: key})
	t.Cleanup(func() { api.Close() })
	addr := startUI(t, e, api, key)
	body := `{"id":"docs","path":` + js(t.TempDir()) + `}`
	post := func(host string, header map[string]string) int {
		req, err := http.NewRequest("POST", "http://"+addr+"/rest/folders", strings.NewReader(body))
		require.NoError(t, err)
		req.Host = host
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	_, port, _ := strings.Cut(addr, ":")
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}
	assert.Equal(t, http.StatusUnauthorized, post(addr, form), "a cross-site form: no key")
	assert.Equal(t, http.StatusUnauthorized, post(addr, map[string]string{"X-API-Key": "guess"}), "a wrong key")
	assert.Equal(t, http.StatusForbidden, post("evil.example:"+port, map[string]string{"X-API-Key": key}), "DNS rebinding")
	assert.Empty(t, e.Status().Folders, "nothing changed")
	assert.Equal(t, http.StatusCreated, post(addr, map[string]string{"X-API-Key": key, "Content-Type": "application/json"}))
	assert.Len(t, e.Status().Folders, 1)
}
