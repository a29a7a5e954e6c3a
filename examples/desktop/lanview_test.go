package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// phoneLogin opens the phone view at view in a 390×844 browser, logs in
// as user with a wrong password (refused), then with the right one, and
// returns the browser showing the folder list.
func phoneLogin(t *testing.T, view, user, wrong, right string) *browser {
	t.Helper()
	b := newBrowser(t, 1280, 900)
	b.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.do(t, chromedp.Navigate(view+"/"))
	b.wait(t, "the login form", `!!document.getElementById('login')`, 10*time.Second)
	login := func(password string) {
		b.set(t, "#user", user)
		b.set(t, "#password", password)
		eval[bool](t, b, `document.getElementById('login').click() === undefined`)
	}
	login(wrong)
	b.waitLoad(t, "the refusal", `document.body.textContent.includes('Wrong user name or password.')`, 10*time.Second)
	login(right)
	b.waitLoad(t, "the folder list", `!!document.querySelector('#folders a')`, 10*time.Second)
	return b
}

// TestLANViewPhone: `run --lan-view` serves the read-only phone view; on a
// 390×844 screen a wrong password is refused, the right one shows the
// folder, and a file downloads with its content. The view has no
// configuration pages and never the API key.
func TestLANViewPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a desktop process and a browser")
	}
	chromiumPath(t)
	bin := testutil.BuildBinary(t, "./examples/desktop")
	home, folder := filepath.Join(t.TempDir(), "state"), t.TempDir()
	desktop := func(stdin string, args ...string) {
		cmd := exec.Command(bin, append([]string{"--home", home}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "desktop %v: %s", args, out)
	}
	desktop("", "init", "--name", "laptop")
	desktop("", "folder", "add", "--id", "docs", folder)
	writeFile(t, folder, "recipes/soup.txt", []byte("leeks, potatoes\n"))
	desktop("", "scan")
	desktop("correct horse battery\n", "user", "add", "mom", "--folders", "docs")

	logs := &testutil.SyncBuffer{}
	cmd := exec.Command(bin, "--home", home, "run", "--listen", fmt.Sprintf("127.0.0.1:%d", testutil.FreeUDPPort(t)),
		"--ui", "none", "--no-discovery", "--lan-view", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	view := startPrinting(t, cmd, "laptop", logs, "LAN view ")

	b := phoneLogin(t, view, "mom", "wrong", "correct horse battery")
	assert.Equal(t, "docs", eval[string](t, b, `document.querySelector('#folders a').textContent`))
	b.screenshot(t, "lan-view-phone")
	eval[bool](t, b, `document.querySelector('#folders a').click() === undefined`)
	b.waitLoad(t, "the recipes folder", `[...document.querySelectorAll('#entries a.dir')].some(a => a.textContent === 'recipes')`, 10*time.Second)
	eval[bool](t, b, `[...document.querySelectorAll('#entries a.dir')].find(a => a.textContent === 'recipes').click() === undefined`)
	b.waitLoad(t, "soup.txt", `[...document.querySelectorAll('#entries a.file')].some(a => a.textContent === 'soup.txt')`, 10*time.Second)
	// The download, with the browser's session (the view's CSP lets no
	// script of the page fetch anything, so the test takes the cookie).
	href := eval[string](t, b, `[...document.querySelectorAll('#entries a.file')].find(a => a.textContent === 'soup.txt').href`)
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	cancel()
	require.NoError(t, err)
	req, err := http.NewRequest("GET", href, nil)
	require.NoError(t, err)
	for _, c := range cookies.Cookies {
		assert.True(t, c.HTTPOnly, "the session cookie is HttpOnly")
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, "leeks, potatoes\n", string(body), "the download")
	key, err := os.ReadFile(filepath.Join(home, "apikey"))
	require.NoError(t, err)
	assert.NotContains(t, eval[string](t, b, `document.documentElement.outerHTML`), strings.TrimSpace(string(key)))
	res, err = http.Get(view + "/rest/status") // without a session: the login page
	require.NoError(t, err)
	res.Body.Close()
	assert.NotContains(t, res.Header.Get("Content-Type"), "json", "no API on the phone view")
	b.clean(t)
}
