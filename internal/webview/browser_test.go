package webview

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newPhone starts headless Chromium with a 390×844 touch viewport (a phone
// held upright) that accepts the test server's certificate.
func newPhone(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/chromium"); serr != nil {
			t.Skip("chromium is not installed (Debian: apt-get install chromium)")
		}
		path = "/usr/bin/chromium"
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("ignore-certificate-errors", true), chromedp.WindowSize(390, 844))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, tcancel := context.WithTimeout(ctx, 2*time.Minute) // bounds a hang
	t.Cleanup(tcancel)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch)))
	return ctx
}

// submitLogin fills the login form and sends it; it returns the status of
// the page that comes back.
func submitLogin(t *testing.T, ctx context.Context, user, pass string) int64 {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.Clear(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), pass)))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#login")))
	require.NoError(t, err)
	return resp.Status
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	require.NoError(t, err)
	return s
}

// download clicks the link and returns the downloaded file's content.
func download(t *testing.T, ctx context.Context, dir, css string) string {
	t.Helper()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true)})
			return err
		}),
		chromedp.Click(chromedp.CSS(css))))
	for ev, err := range progress {
		require.NoError(t, err)
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatalf("download of %s cancelled", css)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			require.NoError(t, err)
			return string(b)
		}
	}
	t.Fatalf("no download from %s", css)
	return ""
}

// TestPhoneBrowser drives the view with real Chromium at a phone's size:
// a wrong password refused, repeated attempts slowed, login, browse,
// download of a file and of its old version, a folder not granted answering
// 404, and nothing wider than the screen.
func TestPhoneBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium")
	}
	f := newFixture(t)
	ctx := newPhone(t)
	base := f.srv.URL

	// Not logged in: the login page.
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/f/docs/tree/notes"))
	require.NoError(t, err)
	assert.EqualValues(t, 200, resp.Status)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(loc, base+"/login?next="), loc)

	// Wrong password refused; after freeFails failures even the right one
	// waits.
	for i := 0; i < freeFails; i++ {
		assert.EqualValues(t, 401, submitLogin(t, ctx, "ann", "not the password"))
		assert.Equal(t, "Wrong user name or password.", text(t, ctx, "#error"))
	}
	assert.EqualValues(t, 429, submitLogin(t, ctx, "ann", "correct horse"))
	assert.Equal(t, "Too many failed attempts. Try again in 1 seconds.", text(t, ctx, "#error"))
	f.clock.Advance(time.Second)

	// Logged in, back where the user wanted to go.
	assert.EqualValues(t, 200, submitLogin(t, ctx, "ann", "correct horse"))
	loc, err = chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.Equal(t, base+"/f/docs/tree/notes", loc)

	// The folder list: docs only.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/")))
	folders := text(t, ctx, "#folders")
	assert.Contains(t, folders, "docs")
	assert.NotContains(t, folders, "secret")
	// Browse by tapping.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#folders a[href="/f/docs/tree/"]`)), chromedp.WaitVisible(chromedp.CSS("#entries"))))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/f/docs/tree/notes"]`)), chromedp.WaitVisible(chromedp.CSS(`a[href="/f/docs/history/notes/todo.txt"]`))))
	assert.Contains(t, text(t, ctx, "#entries"), "todo.txt")
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth"))
	require.NoError(t, err)
	assert.LessOrEqual(t, width, 390, "no sideways scrolling on a phone")

	// Download the file, then its old version from the history page.
	dl := t.TempDir()
	assert.Equal(t, "version two", download(t, ctx, dl, `a[href="/f/docs/raw/notes/todo.txt"]`))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/f/docs/history/notes/todo.txt"]`)), chromedp.WaitVisible(chromedp.CSS("#versions"))))
	versions := text(t, ctx, "#versions")
	assert.Contains(t, versions, "modify by ")
	assert.Contains(t, versions, "add by ")
	assert.Equal(t, "version one", download(t, ctx, dl, `#versions a[href="/f/docs/raw/notes/todo.txt?rev=`+f.oldRev+`"]`))

	// A folder not granted: 404, nothing of it shown.
	for _, u := range []string{"/f/secret/tree/", "/f/secret/raw/keys.txt"} {
		resp, err = chromedp.Run(ctx, chromedp.NavigateResponse(base+u))
		require.NoError(t, err)
		assert.EqualValues(t, 404, resp.Status, u)
		body := text(t, ctx, "main")
		assert.Contains(t, body, "Nothing here")
		assert.NotContains(t, body, "keys")
	}
}
