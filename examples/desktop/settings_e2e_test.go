package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/internal/testutil"
	"github.com/peersync/peersync/sync"
)

// TestSettingsPageTakesEffect drives a real desktop process's Settings
// page in Chromium: a listen address that is not HOST:PORT is refused
// beside its field; a TURN relay's password is saved but never comes back
// to the page; a new listen port asks for "Restart to apply", after which
// the engine listens there and a device that knows only the new port
// syncs with it; the phone view turned on with an account lets that
// account log in on a phone-sized screen and refuses a wrong password, and
// turned off it closes its port.
func TestSettingsPageTakesEffect(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a desktop process and a browser")
	}
	chromiumPath(t)
	bin := testutil.BuildBinary(t, "./examples/desktop")
	a := startUIDevice(t, bin, "alpha")
	firstFolder := filepath.Join(filepath.Dir(a.home), "user", "PeerSync") // the first run shares ~/PeerSync
	br := newBrowser(t, 1280, 1100)
	br.page(t, a.url, "settings")
	listen := `#set-net-form [name=listenAddr]`
	br.wait(t, "the listen address in the form", fmt.Sprintf(`document.querySelector(%s).value === %s`, js(listen), js(a.addr)), 10*time.Second)

	// A value that is not valid: the error beside the field.
	br.set(t, listen, "no-port-here")
	br.press(t, "#set-net-form", "Save")
	br.wait(t, "the error beside the listen address",
		`(e => !e.hidden && e.textContent.includes('HOST:PORT'))(document.querySelector('.field-error[data-field=listenAddr]'))`, 10*time.Second)

	// A new port and a TURN relay with a password.
	newAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreeUDPPort(t))
	const turnPass = "relay-secret-4711"
	br.set(t, listen, newAddr)
	eval[bool](t, br, `document.getElementById('set-turn-add').click() === undefined`)
	br.set(t, "#set-turn .turn-row [name=turn-addr]", "turn.example.net:3478")
	br.set(t, "#set-turn .turn-row [name=turn-user]", "ann")
	br.set(t, "#set-turn .turn-row [name=turn-pass]", turnPass)
	br.press(t, "#set-net-form", "Save")
	br.wait(t, "Restart to apply offered", `!document.getElementById('set-restart').hidden`, 10*time.Second)
	assert.True(t, eval[bool](t, br, `document.querySelector('.field-error[data-field=listenAddr]').hidden`), "the error is gone")
	br.page(t, a.url, "settings") // a fresh load: what the page is sent back
	br.wait(t, "the relay, its password saved", `(i => !!i && i.placeholder.startsWith('saved') && i.value === '')(document.querySelector('#set-turn [name=turn-pass]'))`, 10*time.Second)
	assert.NotContains(t, eval[string](t, br, `document.documentElement.outerHTML`), turnPass, "the password never comes back")
	conf, err := os.ReadFile(filepath.Join(a.home, "config.json"))
	require.NoError(t, err)
	assert.Contains(t, string(conf), turnPass, "saved in config.json")
	br.screenshot(t, "settings-network")

	// Restart to apply: the engine listens on the new port, in the same process.
	br.press(t, "#set-restart", "Restart to apply")
	br.has(t, "listening on the new port", "#set-net", newAddr, 30*time.Second)
	br.wait(t, "no restart needed any more", `document.getElementById('set-restart').hidden`, 10*time.Second)

	// A device that knows only the new port syncs with A.
	b := inProcessPeer(t, newAddr, a)
	writeFile(t, firstFolder, "moved.txt", []byte("reached on the new port\n"))
	waitFile(t, filepath.Join(b.dir, "moved.txt"), "reached on the new port\n", 60*time.Second)

	// The phone view: on, with an account (a short password refused
	// beside its field).
	eval[bool](t, br, `(f => { f.enabled.checked = true; f.dispatchEvent(new Event('input', {bubbles: true})); return true })(document.getElementById('set-lan'))`)
	br.set(t, "#set-lan [name=addr]", "127.0.0.1:0")
	br.press(t, "#set-lan", "Save")
	br.has(t, "the phone view's address", "#set-lan-url", "Serving at http://127.0.0.1:", 10*time.Second)
	br.set(t, "#set-lan-add [name=name]", "mom")
	br.set(t, "#set-lan-add [name=password]", "short")
	br.press(t, "#set-lan-add", "Add account")
	br.wait(t, "the error beside the password", `!document.querySelector('.field-error[data-field=password]').hidden`, 10*time.Second)
	br.set(t, "#set-lan-add [name=name]", "mom")
	br.set(t, "#set-lan-add [name=password]", "correct horse battery")
	br.press(t, "#set-lan-add", "Add account")
	br.has(t, "the account listed", "#set-lan-users", "mom", 10*time.Second)
	br.screenshot(t, "settings-phone-view")
	view := strings.TrimPrefix(eval[string](t, br, `document.getElementById('set-lan-url').textContent`), "Serving at ")

	phone := phoneLogin(t, view, "mom", "not the password", "correct horse battery")

	// Off: the view's port closes.
	eval[bool](t, br, `(f => { f.enabled.checked = false; f.dispatchEvent(new Event('input', {bubbles: true})); return true })(document.getElementById('set-lan'))`)
	br.press(t, "#set-lan", "Save")
	br.has(t, "the phone view off", "#set-lan-url", "Off", 10*time.Second)
	_, err = http.Get(view + "/login")
	require.Error(t, err, "the phone view's port is closed")
	br.clean(t)
	phone.clean(t)
}

// inProcessPeer is a device in the test process that shares the folder
// "default" with the desktop a, whose engine it knows only at addr; a is
// told about it through its API.
func inProcessPeer(t *testing.T, addr string, a *uiDevice) *node {
	t.Helper()
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	e, err := sync.New(sync.Config{Home: t.TempDir(), Identity: id, DialInterval: 200 * time.Millisecond,
		Network: sync.NetworkConfig{ListenAddr: "127.0.0.1:0"}})
	require.NoError(t, err)
	n := &node{e: e, dir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t.Cleanup(func() {
		cancel()
		<-done
		_ = e.Close()
	})
	require.NoError(t, e.AddFolder(ctx, sync.FolderConfig{ID: defaultFolderID, Path: n.dir}))
	key, err := os.ReadFile(filepath.Join(a.home, "apikey"))
	require.NoError(t, err)
	c := &httpapi.Client{BaseURL: a.url, Key: strings.TrimSpace(string(key))}
	aStatus, err := c.Status(ctx)
	require.NoError(t, err)
	_, err = c.SetPeer(ctx, sync.PeerConfig{Device: e.DeviceID(), Name: "beta", Folders: []string{defaultFolderID}})
	require.NoError(t, err)
	require.NoError(t, e.AddPeer(sync.PeerConfig{Device: aStatus.Device, Addrs: []string{addr}, Folders: []string{defaultFolderID}}))
	go func() { done <- e.Run(ctx) }()
	return n
}

// node is an engine of the test process and its folder.
type node struct {
	e   *sync.Engine
	dir string
}
