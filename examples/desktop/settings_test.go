package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/internal/cli"
	"github.com/peersync/peersync/internal/testutil"
	"github.com/peersync/peersync/sync"
)

// desktopCall sends a request to the UI at base with key ("" = none) and
// returns the status and the decoded JSON body.
func desktopCall(t *testing.T, base, key, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	require.NoError(t, json.Unmarshal(b, &out), "%s %s: %s", method, path, b)
	return res.StatusCode, out
}

// postLogin posts the phone view's login form and reports whether it
// gave a session.
func postLogin(t *testing.T, view, user, pass string) bool {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(view+"/login", url.Values{"user": {user}, "password": {pass}})
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode == http.StatusSeeOther && len(res.Cookies()) > 0
}

// TestDesktopPhoneViewRoutes: the desktop's /desktop/ routes need the API
// key; they turn the real phone view on at an address (a bad one is a 400
// naming "addr"), add an account whose password then logs in on the view
// (a short one is a 400 naming "password"), change it (the old one is
// refused), remove it, and turn the view off (its port closes).
func TestDesktopPhoneViewRoutes(t *testing.T) {
	e := newEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	home := t.TempDir()
	env := cli.Env{Engine: e, Home: home, Log: slog.New(slog.DiscardHandler), Stdout: io.Discard}
	view, err := startPhoneView(ctx, env, "")
	require.NoError(t, err)
	defer view.Close()
	stop, addr, err := serveUI(ctx, e, uiOptions{Addr: "127.0.0.1:0", Key: "k", Desktop: desktopRoutes("k", view, nil)})
	require.NoError(t, err)
	defer stop()
	ui := "http://" + addr

	code, _ := desktopCall(t, ui, "", "GET", "/desktop/lanview", "")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, got := desktopCall(t, ui, "k", "GET", "/desktop/lanview", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, false, got["enabled"])
	assert.Equal(t, "", got["url"])

	code, got = desktopCall(t, ui, "k", "PUT", "/desktop/lanview", `{"enabled":true,"addr":"phone.example:80"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "addr", got["field"])
	code, got = desktopCall(t, ui, "k", "PUT", "/desktop/lanview", `{"enabled":true,"addr":"127.0.0.1:0"}`)
	require.Equal(t, http.StatusOK, code, got)
	phone, _ := got["url"].(string)
	require.True(t, strings.HasPrefix(phone, "http://127.0.0.1:"), phone)

	code, got = desktopCall(t, ui, "k", "PUT", "/desktop/lanview/users/mom", `{"password":"short"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "password", got["field"])
	code, got = desktopCall(t, ui, "k", "PUT", "/desktop/lanview/users/mom", `{"password":"correct horse battery"}`)
	require.Equal(t, http.StatusOK, code, got)
	assert.Equal(t, []any{"mom"}, got["users"])
	assert.True(t, postLogin(t, phone, "mom", "correct horse battery"), "the password set on the page logs in")
	assert.False(t, postLogin(t, phone, "mom", "wrong password"), "a wrong one is refused")

	code, _ = desktopCall(t, ui, "k", "PUT", "/desktop/lanview/users/mom", `{"password":"a new password"}`)
	require.Equal(t, http.StatusOK, code)
	assert.False(t, postLogin(t, phone, "mom", "correct horse battery"), "the old password no longer works")
	assert.True(t, postLogin(t, phone, "mom", "a new password"))

	code, got = desktopCall(t, ui, "k", "DELETE", "/desktop/lanview/users/mom", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, []any{}, got["users"])
	code, _ = desktopCall(t, ui, "k", "DELETE", "/desktop/lanview/users/mom", "")
	assert.Equal(t, http.StatusNotFound, code)

	code, got = desktopCall(t, ui, "k", "PUT", "/desktop/lanview", `{"enabled":false,"addr":"127.0.0.1:0"}`)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "", got["url"])
	_, err = http.Get(phone + "/login")
	require.Error(t, err, "the view's port is closed")

	// Saved: a new start follows lanview.json, not the flag.
	v2, err := startPhoneView(ctx, env, "127.0.0.1:0")
	require.NoError(t, err)
	defer v2.Close()
	st, err := v2.status()
	require.NoError(t, err)
	assert.False(t, st.Enabled)
}

// TestEngineRestart: "Restart to apply" runs the engine again in the
// process, on the listen address saved meanwhile; a port another program
// holds is an error naming listenAddr that leaves the desktop answering,
// and the next restart on a free port works.
func TestEngineRestart(t *testing.T) {
	e := newEngine(t)
	require.NoError(t, e.SetSettings(sync.Settings{ListenAddr: "127.0.0.1:0"}))
	runner := newEngineRunner(e)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- runner.run(ctx) }()
	defer func() {
		cancel()
		<-ran
	}()
	stop, addr, err := serveUI(ctx, e, uiOptions{Addr: "127.0.0.1:0", Key: "k", Desktop: desktopRoutes("k", nil, runner)})
	require.NoError(t, err)
	defer stop()
	ui := "http://" + addr
	require.Eventually(t, func() bool { return e.Addr() != nil }, 30*time.Second, 10*time.Millisecond, "the first Run listens")

	held, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	require.NoError(t, e.SetSettings(sync.Settings{ListenAddr: held.LocalAddr().String()}))
	code, got := desktopCall(t, ui, "k", "POST", "/desktop/restart", "")
	assert.Equal(t, http.StatusInternalServerError, code, got)
	assert.Equal(t, "listenAddr", got["field"])
	assert.Nil(t, e.Addr(), "not running")

	port := testutil.FreeUDPPort(t)
	want := fmt.Sprintf("127.0.0.1:%d", port)
	require.NoError(t, e.SetSettings(sync.Settings{ListenAddr: want}))
	require.True(t, e.RestartNeeded() || e.Addr() == nil)
	code, got = desktopCall(t, ui, "k", "POST", "/desktop/restart", "")
	require.Equal(t, http.StatusOK, code, got)
	assert.Equal(t, want, got["addr"])
	assert.Equal(t, want, e.Addr().String())
	assert.False(t, e.RestartNeeded())

	// A runner that ended (its context) answers at once.
	cancel()
	<-ran
	ran <- nil // for the deferred wait
	code, got = desktopCall(t, ui, "k", "POST", "/desktop/restart", "")
	assert.Equal(t, http.StatusInternalServerError, code, got)
}

// BenchmarkEngineRestart times the Settings page's "Restart to apply"
// (POST /desktop/restart: Run stopped and started again in the process,
// answered once the engine listens) against the reference of the same
// engine closed and opened anew (Close, sync.New, Run until it listens),
// the least a restart that ends the process would cost before its exec.
// Both wait for Engine.Addr with the same 5 ms polling.
func BenchmarkEngineRestart(b *testing.B) {
	home := b.TempDir()
	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	require.NoError(b, err)
	cfg := sync.Config{Home: home, Identity: id, Network: sync.NetworkConfig{ListenAddr: "127.0.0.1:0"}}
	b.Run("in-process", func(b *testing.B) {
		e, err := sync.New(cfg)
		require.NoError(b, err)
		defer e.Close()
		runner := newEngineRunner(e)
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- runner.run(ctx) }()
		defer func() { cancel(); <-ran }()
		stop, addr, err := serveUI(ctx, e, uiOptions{Addr: "127.0.0.1:0", Key: "k", Desktop: desktopRoutes("k", nil, runner)})
		require.NoError(b, err)
		defer stop()
		b.ResetTimer()
		for b.Loop() {
			req, _ := http.NewRequest("POST", "http://"+addr+"/desktop/restart", nil)
			req.Header.Set("X-API-Key", "k")
			res, err := http.DefaultClient.Do(req)
			require.NoError(b, err)
			res.Body.Close()
			require.Equal(b, http.StatusOK, res.StatusCode)
		}
	})
	b.Run("new-engine", func(b *testing.B) {
		for b.Loop() {
			e, err := sync.New(cfg)
			require.NoError(b, err)
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() { ran <- e.Run(ctx) }()
			for e.Addr() == nil {
				time.Sleep(5 * time.Millisecond) // the same polling as engineRunner.started
			}
			cancel()
			<-ran
			require.NoError(b, e.Close())
		}
	})
}
