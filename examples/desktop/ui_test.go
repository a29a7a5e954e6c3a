package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

// newEngine opens an engine in a fresh home.
func newEngine(t *testing.T) *sync.Engine {
	t.Helper()
	home := t.TempDir()
	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	require.NoError(t, err)
	e, err := sync.New(sync.Config{Home: home, Identity: id})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// startUI serves the UI of e with api under /rest/ until the test ends.
func startUI(t *testing.T, e *sync.Engine, api http.Handler, key string) string {
	t.Helper()
	stop, addr, err := serveUI(context.Background(), e, uiOptions{Addr: "127.0.0.1:0", LANName: "laptop", API: api, Key: key, DefaultParent: "/home/me/PeerSync"})
	require.NoError(t, err)
	t.Cleanup(stop)
	return addr
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	return res, string(body)
}

// TestUIServesPages: the page carries the API key for its script, every
// answer carries the strict CSP, the assets and the QR code are served
// from the binary, and /rest/ reaches the API.
func TestUIServesPages(t *testing.T) {
	e := newEngine(t)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "api "+r.URL.Path)
	})
	addr := startUI(t, e, api, `k"<&>`)

	res, page := get(t, "http://"+addr+"/")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, `<meta name="peersync-key" content="k&#34;&lt;&amp;&gt;">`, "the key is escaped as an attribute")
	assert.Contains(t, page, `<script src="/app.js" defer></script>`)
	assert.NotContains(t, page, "<script>", "no inline script")
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	csp := res.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'none'")
	assert.Contains(t, csp, "script-src 'self';")
	assert.NotContains(t, csp, "unsafe")
	assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))

	res, js := get(t, "http://"+addr+"/app.js")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Type"), "javascript")
	assert.NotContains(t, js, "innerHTML", "data goes into the page as text only")
	res, _ = get(t, "http://"+addr+"/app.css")
	assert.Contains(t, res.Header.Get("Content-Type"), "text/css")
	res, png := get(t, "http://"+addr+"/qr.png")
	assert.Equal(t, "image/png", res.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(png, "\x89PNG"))
	res, body := get(t, "http://"+addr+"/rest/status")
	assert.Equal(t, "api /rest/status", body)
	assert.NotEmpty(t, res.Header.Get("Content-Security-Policy"))
	res, _ = get(t, "http://"+addr+"/nothing-here")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

// TestUIPageWeight logs what a browser loads for the UI (the page, its
// style and its script; nothing else exists), raw and gzipped.
func TestUIPageWeight(t *testing.T) {
	var raw, gz int
	for _, name := range []string{"index.html", "app.css", "app.js"} {
		b, err := fs.ReadFile(web, name)
		require.NoError(t, err)
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write(b)
		require.NoError(t, w.Close())
		t.Logf("%-10s %6d bytes, %5d gzipped", name, len(b), z.Len())
		raw, gz = raw+len(b), gz+z.Len()
	}
	t.Logf("page weight %d bytes, %d gzipped (go test -run TestUIPageWeight -v ./examples/desktop)", raw, gz)
}

// TestUIKeyOnlyForThisMachine: a browser elsewhere on the LAN (the UI
// served on a LAN address) gets the page without the API key.
func TestUIKeyOnlyForThisMachine(t *testing.T) {
	h := uiHandler(newEngine(t), uiOptions{Key: "secret-key"})
	for remote, want := range map[string]bool{"127.0.0.1:5000": true, "[::1]:5000": true, "192.168.1.7:5000": false} {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, want, strings.Contains(rec.Body.String(), "secret-key"), remote)
	}
}

// TestUIWithoutAPI: a UI server without an API answers /rest/ with a JSON
// error the page can show.
func TestUIWithoutAPI(t *testing.T) {
	addr := startUI(t, newEngine(t), nil, "")
	res, body := get(t, "http://"+addr+"/rest/status")
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	var v struct{ Error string }
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	assert.NotEmpty(t, v.Error)
}

// TestUIRefusesForeignHost: a page on another site that rebinds its name to
// 127.0.0.1 cannot read the UI, its key or the API.
func TestUIRefusesForeignHost(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "api") })
	addr := startUI(t, newEngine(t), api, "secret-key")
	_, port, _ := strings.Cut(addr, ":")
	for _, path := range []string{"/", "/rest/status"} {
		for host, want := range map[string]int{
			"evil.example:" + port: http.StatusForbidden,
			"evil.local:" + port:   http.StatusForbidden,
			"laptop.local:" + port: http.StatusOK,
			"localhost:" + port:    http.StatusOK,
			addr:                   http.StatusOK,
		} {
			req, err := http.NewRequest("GET", "http://"+addr+path, nil)
			require.NoError(t, err)
			req.Host = host
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			assert.Equal(t, want, res.StatusCode, host+path)
			if want != http.StatusOK {
				assert.NotContains(t, string(body), "secret-key", host+path)
			}
		}
	}
}

// TestFirstRun: the first start shares ~/PeerSync as folder "default"; a
// second start changes nothing.
func TestFirstRun(t *testing.T) {
	e := newEngine(t)
	home := t.TempDir()
	dir := filepath.Join(t.TempDir(), "PeerSync")
	created, err := firstRun(context.Background(), e, home, dir)
	require.NoError(t, err)
	assert.True(t, created)
	st := e.Status()
	require.Len(t, st.Folders, 1)
	assert.Equal(t, defaultFolderID, st.Folders[0].ID)
	assert.Equal(t, dir, st.Folders[0].Path)
	assert.Equal(t, "PeerSync", st.Folders[0].Label)
	assert.DirExists(t, filepath.Join(dir, ".peersync"))

	created, err = firstRun(context.Background(), e, home, filepath.Join(t.TempDir(), "other"))
	require.NoError(t, err)
	assert.False(t, created, "a second start keeps what the first made")
	assert.Len(t, e.Status().Folders, 1)

	// A home that already shares folders gets no default one.
	e2 := newEngine(t)
	require.NoError(t, e2.AddFolder(context.Background(), sync.FolderConfig{ID: "docs", Path: t.TempDir()}))
	created, err = firstRun(context.Background(), e2, t.TempDir(), filepath.Join(t.TempDir(), "PeerSync"))
	require.NoError(t, err)
	assert.False(t, created)
}

func TestWithRun(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"--open":                   "run --open",
		"--home h --open":          "--home h run --open",
		"--home=h --ui none":       "--home=h run --ui none",
		"--home h status":          "--home h status",
		"status":                   "status",
		"--help":                   "--help",
		"--home h run --open":      "--home h run --open",
		"-home h --default-folder": "-home h run --default-folder",
	} {
		assert.Equal(t, want, strings.Join(withRun(strings.Fields(in)), " "), in)
	}
}

// hostile is a file name that is also HTML: the pages must show it as text.
const hostile = `<img src=x onerror=alert(1)>.txt`

// stubAPI answers the routes the pages read with data full of names that
// are also HTML, and checks the key on every request.
func stubAPI(t *testing.T, key string, self, peer crypto.DeviceID) http.Handler {
	now := time.Now().UTC().Format(time.RFC3339)
	routes := map[string]any{
		"/rest/status": map[string]any{
			"Device": self, "Name": `<b>laptop</b>`, "Addr": "0.0.0.0:44996",
			"Folders": []any{map[string]any{"id": "docs", "label": `<img src=x onerror=alert(2)>`, "path": `/home/<i>me</i>/docs`,
				"Head": strings.Repeat("ab", 20), "NotSent": 2}},
			"Peers": []any{map[string]any{"device": peer, "name": `<script>alert(3)</script>`, "folders": []string{"docs"},
				"Connected": true, "Path": "lan tcp", "Window": "closed until 22:00", "Waiting": 1,
				"Progress": []any{map[string]any{"Folder": "docs", "Direction": "receive", "Bytes": 500, "Total": 1000, "Rate": 2048, "ETA": 3e9}}}},
		},
		"/rest/pending": map[string]any{
			"Devices": []any{map[string]any{"Device": peer, "Name": `<img src=x onerror=alert(4)>`, "Addr": "192.0.2.7:44996"}},
			"Folders": []any{map[string]any{"ID": "photos", "Label": `<img src=x onerror=alert(5)>`, "From": peer}},
		},
		"/rest/folders/docs/history": []any{
			map[string]any{"Commit": strings.Repeat("cd", 20), "Action": "add", "Path": hostile, "Time": now, "Author": "laptop <laptop@peersync>", "From": peer.String()},
			map[string]any{"Commit": strings.Repeat("ef", 20), "Action": "delete", "Path": "a.sync-conflict-20260101-120000-ABCDEFG.txt", "Time": now},
		},
		"/rest/device":   map[string]any{"device": self, "name": `<b>laptop</b>`, "pubkey": crypto.AuthorizedKey(self)},
		"/rest/peers":    []any{map[string]any{"device": peer, "name": `<script>alert(3)</script>`, "folders": []string{"docs"}, "schedule": map[string]any{"days": []string{"sat"}, "from": "01:00", "to": "05:00"}}},
		"/rest/schedule": map[string]any{"window": map[string]any{"days": []string{"mon", "fri"}, "from": "22:00", "to": "06:00"}},
		"/rest/limits":   map[string]any{"up": 102400, "down": 0},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != key {
			http.Error(w, `{"error":"wrong key"}`, http.StatusUnauthorized)
			return
		}
		v, ok := routes[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			http.Error(w, `{"error":"not in the stub"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	})
}

// TestPagesShowNamesAsText: every page renders data whose names are HTML
// as text: no element is made from them, no script runs, nothing throws.
func TestPagesShowNamesAsText(t *testing.T) {
	e := newEngine(t)
	peerID, _, err := crypto.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "identity"))
	require.NoError(t, err)
	addr := startUI(t, e, stubAPI(t, "k3y", e.DeviceID(), peerID.DeviceID()), "k3y")
	base := "http://" + addr
	b := newBrowser(t, 1280, 900)

	noInjected := `document.querySelectorAll('img:not(#set-qr), script:not([src]), b, i').length === 0`
	for _, tc := range []struct{ page, text string }{
		{"status", `<img src=x onerror=alert(2)>`},
		{"status", `<script>alert(3)</script>`},
		{"status", hostile},
		{"status", "2 local changes not sent"},
		{"status", "Receiving docs · 50% · 2.0 KB/s · 3 s left"},
		{"send", `<script>alert(3)</script>`},
		{"receive", `<img src=x onerror=alert(4)> wants to connect`},
		{"receive", `offers the folder "<img src=x onerror=alert(5)>"`},
		{"schedule", `<script>alert(3)</script>`},
		{"history", hostile},
		{"history", "conflict copy"},
		{"settings", e.DeviceID().String()},
	} {
		b.page(t, base, tc.page)
		b.wait(t, tc.text, fmt.Sprintf(`document.getElementById('page-%s').textContent.includes(%q)`, tc.page, tc.text), 10*time.Second)
		assert.True(t, eval[bool](t, b, noInjected), "page %s made elements from data", tc.page)
	}
	b.page(t, base, "status")
	b.wait(t, "the first paint", `performance.getEntriesByName('first-contentful-paint').length > 0`, 10*time.Second)
	t.Logf("first contentful paint %.0f ms, data shown %s ms after navigation start (go test -run TestPagesShowNamesAsText -v ./examples/desktop)",
		eval[float64](t, b, `performance.getEntriesByName('first-contentful-paint')[0].startTime`),
		eval[string](t, b, `document.body.dataset.firstDataMs`))
	assert.Equal(t, "<b>laptop</b>", eval[string](t, b, `document.getElementById('nav-device').textContent`))
	assert.Equal(t, "2", eval[string](t, b, `document.getElementById('nav-pending').textContent`), "a device and a folder wait")
	b.clean(t)
}

// TestSendChecksKeysAsTyped: the Send page checks a Device ID's check
// characters and reads ssh-ed25519 lines as the engine does.
func TestSendChecksKeysAsTyped(t *testing.T) {
	e := newEngine(t)
	peerID, _, err := crypto.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "identity"))
	require.NoError(t, err)
	addr := startUI(t, e, stubAPI(t, "k", e.DeviceID(), peerID.DeviceID()), "k")
	b := newBrowser(t, 1280, 900)
	b.page(t, "http://"+addr, "send")

	id := peerID.DeviceID().String()
	typo := []byte(id)
	typo[3] = map[bool]byte{true: 'B', false: 'A'}[typo[3] == 'A']
	msg := func(text string) string {
		eval[bool](t, b, `(document.querySelector('#send-form textarea[name=key]').value = '') === ''`)
		b.do(t, chromedp.SendKeys(chromedp.CSS(`#send-form textarea[name=key]`), text))
		return eval[string](t, b, `document.getElementById('send-key-msg').textContent`)
	}
	assert.Equal(t, "Device "+id, msg(id))
	assert.Equal(t, "Device "+id, msg(strings.ToLower(strings.ReplaceAll(id, "-", ""))))
	assert.Contains(t, msg(string(typo)), "Check character of group 1 does not match")
	assert.Contains(t, msg(id[:20]), "56 characters")
	assert.Equal(t, "Device "+id, msg(crypto.AuthorizedKey(peerID.DeviceID())+" laptop"))
	assert.Contains(t, msg(crypto.AuthorizedKey(peerID.DeviceID())[:52]), "damaged or cut short")
	assert.Contains(t, msg("ssh-rsa AAAAB3NzaC1yc2E"), "Only ssh-ed25519")
	b.clean(t)
}
