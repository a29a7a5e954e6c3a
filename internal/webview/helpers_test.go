package webview

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// fixture is an engine with two folders, "docs" (two versions of
// notes/todo.txt, and a.txt) and "secret", a users file where ann may read
// docs only, and the web view served over TLS on loopback.
type fixture struct {
	e      *sync.Engine
	docs   string
	users  *Users
	clock  *testutil.Clock
	h      *Handler
	srv    *httptest.Server
	oldRev string // the commit of todo.txt's first version
}

func writeFile(t testing.TB, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	e, err := sync.New(sync.Config{Home: t.TempDir(), Identity: id})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	f := &fixture{e: e, docs: t.TempDir(), clock: testutil.NewClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))}
	secret := t.TempDir()
	require.NoError(t, e.AddFolder(ctx, sync.FolderConfig{ID: "docs", Path: f.docs, Label: "My <docs>"}))
	require.NoError(t, e.AddFolder(ctx, sync.FolderConfig{ID: "secret", Path: secret}))
	writeFile(t, f.docs, "notes/todo.txt", "version one")
	writeFile(t, f.docs, "a.txt", "alpha")
	writeFile(t, secret, "keys.txt", "do not show")
	_, err = e.Scan(ctx, "")
	require.NoError(t, err)
	hist, err := e.History(ctx, "docs", "notes/todo.txt", 0)
	require.NoError(t, err)
	f.oldRev = hist[0].Commit.String()
	writeFile(t, f.docs, "notes/todo.txt", "version two")
	_, err = e.Scan(ctx, "docs")
	require.NoError(t, err)

	f.users = OpenUsers(filepath.Join(t.TempDir(), "users.json"))
	_, err = f.users.Add("ann", "correct horse", []string{"docs"})
	require.NoError(t, err)
	f.h = New(e, Options{Users: f.users, Secure: true, Now: f.clock.Now})
	f.srv = httptest.NewTLSServer(f.h)
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a browser-like client: a cookie jar, redirects followed.
func (f *fixture) client(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := f.srv.Client()
	c.Jar = jar
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// noRedirect is client without following redirects.
func noRedirect(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

func (f *fixture) login(t testing.TB, c *http.Client, user, pass string) *http.Response {
	t.Helper()
	resp, err := c.PostForm(f.srv.URL+"/login", url.Values{"user": {user}, "password": {pass}})
	require.NoError(t, err)
	return resp
}

func get(t testing.TB, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func body(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func contains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
